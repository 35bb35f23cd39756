"""A run before anything heavy (no torch): its configuration, its parent, its session name.

:func:`plan_run` resolves the configuration, a resumed or forked parent and its checkpoint, and refuses
what cannot work with one sentence, before anything heavy starts. :func:`claim_session` creates the run's
empty log file (``O_EXCL``), so a parent process (``run --detach``, ``sweep``) knows its child's session
before starting it and passes the path down (``run --session-file``). Building the run is
:mod:`bitnet_tui.app.runs.build`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bitnet_model.train.config import RunConfig, TrainConfig, build_config
from bitnet_tui.session.errors import ConfigError
from bitnet_tui.session.log.paths import (
    SUFFIX,
    checkpoint_dir,
    list_checkpoints,
    new_session_path,
    resolve_session,
    sessions_dir,
)
from bitnet_tui.session.log.reader import read_session
from bitnet_tui.session.log.writer import writer_lock_held
from bitnet_tui.session.safefs import check_writable_dir, remove_stale_tmp
from bitnet_tui.session.text import fmt_num


def parse_lr(value: str | None) -> float | str | None:
    if value is None:
        return None
    if value.strip().lower() == "auto":
        return "auto"
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"--lr must be a number or 'auto', got {value[:40]!r}") from None


def run_label(cfg: RunConfig) -> str:
    """What a run is, for its session name: width, peak LR, then whatever differs from the defaults.

    ``h256_lr1.5e-3``; suffixes ``_nq`` (full precision), ``_adam``, ``_wd0``, ``_decayall``, ``_ls0.1``,
    ``_clip0.1``, ``_stage1`` (a non-default schedule), ``_relu2``, ``_seed3``.
    """
    t, m, dflt = cfg.train, cfg.model, TrainConfig()
    parts = [f"h{m.hidden}", f"lr{fmt_num(t.peak_lr)}"]
    if not m.quant:
        parts.append("nq")
    if t.optimizer != dflt.optimizer:
        parts.append(t.optimizer)
    if t.weight_decay != dflt.weight_decay:
        parts.append(f"wd{fmt_num(t.weight_decay)}")
    if t.decay_all:
        parts.append("decayall")
    if t.label_smoothing != dflt.label_smoothing:
        parts.append(f"ls{fmt_num(t.label_smoothing)}")
    if t.grad_clip != dflt.grad_clip:
        parts.append(f"clip{fmt_num(t.grad_clip)}")
    if t.schedule != dflt.schedule:
        parts.append(t.schedule)
    if m.ffn_act != "swiglu":
        parts.append(m.ffn_act)
    if t.seed != dflt.seed:
        parts.append(f"seed{t.seed}")
    return "_".join(parts)


@dataclass
class RunPlan:
    """A run before anything heavy: its configuration, and where it comes from."""

    cfg: RunConfig
    sessions: Path
    parent: dict[str, Any] | None = None
    checkpoints: list[Path] = field(default_factory=list)
    """Checkpoints to continue from, the preferred one first (older ones are the fallback if it will not load)."""
    notes: list[str] = field(default_factory=list)
    """What the user should be told before the run starts."""

    @property
    def label(self) -> str:
        return run_label(self.cfg)


def _split_spec(spec: str) -> tuple[str, int | None]:
    name, sep, step_s = spec.rpartition("@")
    if not sep:
        return spec, None
    try:
        step = int(step_s)
    except ValueError:
        raise ConfigError(f"--from takes SESSION or SESSION@STEP with a whole step number, got {spec[:80]!r}") \
            from None
    if step < 0:
        raise ConfigError(f"--from step must be >= 0, got {step}")
    return name, step


def plan_run(knobs: dict[str, Any], *, sessions: str | None = None, resume: str | None = None,
             fork: str | None = None, base: RunConfig | None = None) -> RunPlan:
    """Resolve the configuration (and the parent's checkpoint for ``resume``/``fork``); ConfigError otherwise."""
    sdir = sessions_dir(sessions)
    if resume and fork:
        raise ConfigError("--resume and --from cannot be used together")
    if not (resume or fork):
        cfg = build_config(base, knobs)
        check_writable_dir(sdir, "sessions directory")  # before any data or model is loaded
        return RunPlan(cfg=cfg, sessions=sdir)
    name, step = _split_spec(fork) if fork else (resume, None)
    if resume and "@" in resume:
        raise ConfigError("--resume takes a session, not SESSION@STEP; use --from to fork at a step")
    ppath = resolve_session(name, sdir)  # type: ignore[arg-type]
    pdata = read_session(ppath, skip=("step", "weights", "eval"))
    shown = ppath.name.removesuffix(SUFFIX)
    if resume and pdata.status == "running" and writer_lock_held(ppath):
        raise ConfigError(f"{shown} is still running; stop it first (bitnet-tui ctl {shown} stop) or fork it "
                          "with --from")
    pcfg = RunConfig.from_dict(pdata.header.config)
    with contextlib.suppress(OSError):
        if checkpoint_dir(ppath).stat().st_uid == os.geteuid():
            remove_stale_tmp(checkpoint_dir(ppath))  # a killed run's partial checkpoint
    cks = list_checkpoints(checkpoint_dir(ppath))
    if not cks:
        raise ConfigError(f"{shown} has no checkpoints (looked in {checkpoint_dir(ppath)})")
    notes: list[str] = []
    if step is not None:
        exact = [p for s, p in cks if s == step]
        if not exact:
            earlier = [s for s, _ in cks if s <= step]
            offer = f"; the nearest earlier is {earlier[-1]}: --from {shown}@{earlier[-1]}" if earlier else ""
            steps = ", ".join(str(s) for s, _ in cks[-8:])
            raise ConfigError(f"{shown} has no checkpoint at step {step} (it has {steps}){offer}")
        candidates = exact
    else:
        candidates = [p for _, p in reversed(cks)]
    if resume:
        extra = {k: v for k, v in knobs.items() if v is not None and k not in ("steps", "warmup_steps")}
        if extra:
            raise ConfigError(f"--resume continues a run unchanged; to change {', '.join(sorted(extra))} "
                              "fork it with --from SESSION@STEP")
    cfg = build_config(pcfg, knobs)
    parent = {"session": str(ppath), "name": shown, "relation": "resume" if resume else "fork"}
    return RunPlan(cfg=cfg, sessions=sdir, parent=parent, checkpoints=candidates, notes=notes)


def claim_session(plan: RunPlan, now: datetime | None = None) -> Path:
    """Create the run's (empty) session log; its name is then the run's for good."""
    stamp = (now or datetime.now()).strftime("%Y-%m-%dT%H-%M-%S")
    return new_session_path(plan.sessions, f"{stamp}_{plan.label}")


