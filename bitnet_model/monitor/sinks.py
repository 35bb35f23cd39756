"""Where a Monitor's events go on rank 0: the session log, the control socket, and mirrors in other tools."""

from __future__ import annotations

import math
import os
import platform
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bitnet_model import __version__
from bitnet_model.log.events import SCHEMA_VERSION, Alert, EvalDone, Event, RunStarted, StepDone, WeightsSnapshot
from bitnet_model.log.paths import new_session_path, sessions_dir


def versions() -> dict[str, str]:
    import torch

    out = {"bitnet-tui": __version__, "python": platform.python_version(), "torch": torch.__version__,
           "platform": platform.platform(terse=True)}
    for mod in ("numpy", "tokenizers", "transformers", "lightning"):
        m = __import__("sys").modules.get(mod)
        if m is not None and getattr(m, "__version__", None):
            out[mod] = str(m.__version__)
    return out


def open_session(session_path: str | os.PathLike[str] | None, sessions: str | os.PathLike[str] | None,
                 run_name: str | None) -> Path:
    """The log file to write: the one given (created empty by whoever named it), or a new one in the sessions
    directory named after the run (start time and ``run_name``; never an existing name)."""
    if session_path is not None:
        return Path(session_path)
    stem = datetime.now().strftime("%Y-%m-%dT%H-%M-%S") + "_" + _slug(run_name or "run")
    return new_session_path(sessions_dir(sessions), stem)


def _slug(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_.+" else "-" for c in name)[:80].strip("-.")
    return keep or "run"


def open_sinks(mon: Any) -> tuple[Any, list[Any]]:
    """Rank 0's sinks for a started Monitor: the session writer, the control server, mirrors. Returns the writer
    and the close functions, in the order to call them (the socket first, the log last but for mirrors)."""
    from bitnet_model.control.peer import control_path
    from bitnet_model.log.writer import SessionWriter

    writer = SessionWriter(mon.session_path, on_error=lambda e: mon.emitter.consumer_failed(writer, e))
    mon.subscribe(writer)
    closers: list[Any] = [writer.close]
    if mon.control:
        from bitnet_model.control.server import ControlServer

        closers.insert(0, ControlServer(mon, control_path(mon.session_path)).close)
    mirrors = []
    if mon.tensorboard:
        mirrors.append(TensorBoardMirror(mon.tensorboard))
    if mon.trackio:
        mirrors.append(TrackioMirror(mon.trackio, mon.run_name, mon.config))
    for m in mirrors:
        mon.subscribe(m)
        closers.append(m.close)
    return writer, closers


def build_header(mon: Any, audit: list[dict[str, Any]]) -> RunStarted:
    """The ``run_started`` event of a Monitor's run."""
    from bitnet_model.monitor.audit import describe
    from bitnet_model.monitor.weights import unwrap

    extra = {k: v for k, v in mon.header_extra.items() if k in ("corpus", "tokenizer")}
    return RunStarted(
        step=mon.step_count, time=time.time(), schema=SCHEMA_VERSION, run_name=mon.run_name, config=mon.config,
        versions=versions(), argv=mon.argv, device=str(mon.device),
        params=sum(p.numel() for p in unwrap(mon.model).parameters()), vocab_size=mon.vocab_size,
        ln_vocab=mon.ln_vocab, unigram_entropy=mon.unigram_entropy, total_steps=mon.total_steps, parent=mon.parent,
        optimizer=describe(mon.optimizer, mon.model) if mon.optimizer is not None else {}, audit=tuple(audit),
        world=mon.world.describe(mon.device), source=mon.source, **extra)


class TensorBoardMirror:
    """Also writes the run's figures to TensorBoard, with its own ``SummaryWriter`` (``pip install tensorboard``)."""

    def __init__(self, logdir: str | os.PathLike[str]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(logdir))

    def __call__(self, ev: Event) -> None:
        for tag, value, step in scalars(ev):
            self.writer.add_scalar(tag, value, step, walltime=ev.time)
        if isinstance(ev, Alert):
            self.writer.add_text("alerts", f"[{ev.level}] {ev.code}: {ev.message}", ev.step, walltime=ev.time)

    def close(self) -> None:
        self.writer.close()


class TrackioMirror:
    """Also logs the run's figures to trackio (local, offline), with trackio's own ``log``."""

    def __init__(self, project: str, name: str, config: dict[str, Any]) -> None:
        import trackio

        self.trackio = trackio
        trackio.init(project=project, name=name, config=config)

    def __call__(self, ev: Event) -> None:
        by_step: dict[int, dict[str, float]] = {}
        for tag, value, step in scalars(ev):
            by_step.setdefault(step, {})[tag] = value
        for step, metrics in by_step.items():
            self.trackio.log(metrics, step=step)

    def close(self) -> None:
        self.trackio.finish()


def scalars(ev: Event) -> list[tuple[str, float, int]]:
    """The numbers of an event as (tag, value, step): what mirrors and ``export`` write."""
    out: list[tuple[str, float, int]] = []

    def add(tag: str, v: Any) -> None:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append((tag, float(v), ev.step))

    if isinstance(ev, StepDone):
        for k in ("loss", "lr", "weight_decay", "grad_norm", "tokens_per_s", "lr_spread", "mfu", "peak_mem_mb"):
            add(f"train/{k}", getattr(ev, k))
        for k, v in ev.extra.items():
            add(f"user/{k}", v)
    elif isinstance(ev, EvalDone):
        for k in ("val_loss", "entropy", "kl_unigram", "unique_tokens", "distinct2", "top_share", "repetition",
                  "report_unique"):
            add(f"eval/{k}", getattr(ev, k))
        for k, v in ev.extra.items():
            add(f"user/{k}", v)
    elif isinstance(ev, WeightsSnapshot) and ev.layers:
        for k in ("zero", "flip_rate", "scale"):
            vals = [getattr(lw, k) for lw in ev.layers if math.isfinite(getattr(lw, k))]
            if vals:
                add(f"weights/{k}_mean", sum(vals) / len(vals))
        add("weights/norm_gain", ev.norm_gain)
        add("weights/embed_rms", ev.embed_norm)
    return out
