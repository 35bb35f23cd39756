"""From command-line knobs to a ready Trainer and its session log (shared by run, sweep and attach)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from bitnet_model.data.corpus import DataError
from bitnet_model.log.errors import SessionError
from bitnet_model.log.paths import checkpoint_dir, new_session_path, resolve_session, sessions_dir
from bitnet_model.log.reader import read_session
from bitnet_model.log.writer import SessionWriter
from bitnet_model.train.checkpoint import CheckpointError, list_checkpoints
from bitnet_model.train.config import ConfigError, DataConfig, DiagConfig, ModelConfig, RunConfig, TrainConfig
from bitnet_model.train.trainer import Trainer

USER_ERRORS = (ConfigError, DataError, SessionError, CheckpointError)
"""Errors whose message is one sentence for the user: printed alone, exit code 2."""

_SECTIONS = {"model": ModelConfig, "train": TrainConfig, "diag": DiagConfig, "data": DataConfig}


def parse_lr(value: str | None) -> float | str | None:
    if value is None:
        return None
    if value.strip().lower() == "auto":
        return "auto"
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"--lr must be a number or 'auto', got {value!r}") from None


def build_config(base: RunConfig | None, knobs: dict[str, Any]) -> RunConfig:
    """``base`` (defaults when None) with every knob that is not None applied. Knob names are field names."""
    knobs = {k: v for k, v in knobs.items() if v is not None}
    base_d = base.to_dict() if base is not None else {}
    out: dict[str, Any] = {}
    for section, klass in _SECTIONS.items():
        names = {f.name for f in fields(klass)}
        sec = dict(base_d.get(section, {}))
        if base is not None and "hidden" in knobs and section == "model":
            # a new width re-derives the shape unless the shape knobs are given too
            for k in ("layers", "heads", "ffn", "context"):
                sec.pop(k, None)
        if base is not None and section == "train" and base.lr_auto and "lr" not in knobs:
            sec["lr"] = "auto"
        sec.update({k: v for k, v in knobs.items() if k in names})
        out[section] = sec
    unknown = set(knobs) - {f.name for k in _SECTIONS.values() for f in fields(k)}
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return RunConfig.from_dict(out)


@dataclass
class PreparedRun:
    trainer: Trainer
    writer: SessionWriter
    path: Path


def _parent_of(spec: str, sdir: Path) -> tuple[Path, RunConfig, int | None]:
    """SESSION or SESSION@STEP -> (log path, its config, step)."""
    name, _, step_s = spec.rpartition("@") if "@" in spec else (spec, "", "")
    step = None
    if step_s:
        try:
            step = int(step_s)
        except ValueError:
            raise ConfigError(f"--from takes SESSION@STEP with a whole step number, got {spec!r}") from None
        if step < 0:
            raise ConfigError(f"--from step must be >= 0, got {step}")
    path = resolve_session(name, sdir)
    data = read_session(path)
    return path, RunConfig.from_dict(data.header.config), step


def prepare_run(
    knobs: dict[str, Any],
    *,
    sessions: str | None = None,
    resume: str | None = None,
    fork: str | None = None,
    checkpoint_every: int = 0,
    on_nonfinite: str = "pause",
    base: RunConfig | None = None,
    argv: list[str] | None = None,
) -> PreparedRun:
    """Build the config, load data and model (errors surface here, before any log exists), then open the log."""
    sdir = sessions_dir(sessions)
    parent = None
    init_from = None
    if resume and fork:
        raise ConfigError("--resume and --from cannot be used together")
    if resume or fork:
        ppath, pcfg, step = _parent_of(resume or fork, sdir)  # type: ignore[arg-type]
        if resume and step is not None:
            raise ConfigError("--resume takes a session, not SESSION@STEP; use --from to fork at a step")
        cks = list_checkpoints(checkpoint_dir(ppath))
        if step is not None:
            cks = [c for c in cks if c[0] <= step]
        if not cks:
            where = f" at or before step {step}" if step is not None else ""
            raise CheckpointError(f"{ppath.name} has no checkpoint{where} (looked in {checkpoint_dir(ppath)})")
        ck_step, init_from = cks[-1]
        if resume:
            extra = {k: v for k, v in knobs.items() if v is not None and k != "steps"}
            if extra:
                raise ConfigError(f"--resume continues a run unchanged; to change {', '.join(sorted(extra))} "
                                  "fork it with --from SESSION@STEP")
        cfg = build_config(pcfg, knobs)
        parent = {"session": str(ppath), "name": ppath.name.removesuffix(".jsonl"), "step": ck_step,
                  "relation": "resume" if resume else "fork", "checkpoint": str(init_from)}
    else:
        cfg = build_config(base, knobs)
    trainer = Trainer(cfg, argv=argv if argv is not None else sys.argv, parent=parent, init_from=init_from,
                      checkpoint_every=checkpoint_every, on_nonfinite=on_nonfinite)
    trainer.setup()
    path = new_session_path(sdir, cfg)
    trainer.run_name = path.name.removesuffix(".jsonl")
    trainer.checkpoint_dir = checkpoint_dir(path)
    writer = SessionWriter(path, on_error=lambda e: trainer.consumer_failed(writer, e))
    trainer.subscribe(writer)
    return PreparedRun(trainer=trainer, writer=writer, path=path)


__all__ = ["USER_ERRORS", "PreparedRun", "build_config", "parse_lr", "prepare_run", "replace"]
