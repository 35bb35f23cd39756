"""Where a Monitor's events go on rank 0: the session log, the control socket, and mirrors in other tools."""

from __future__ import annotations

import math
import os
import platform
from datetime import datetime
from pathlib import Path
from typing import Any

from bitnet_model import __version__
from bitnet_model.log.events import Alert, EvalDone, Event, StepDone, WeightsSnapshot
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
