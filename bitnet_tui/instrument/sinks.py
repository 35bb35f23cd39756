"""Where a Monitor's events go on rank 0: the session log, the control socket, and mirrors in other tools."""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bitnet_tui.instrument.checkpoints import CheckpointStore
from bitnet_tui.instrument.emitter import Subscriber
from bitnet_tui.instrument.server import Steerable
from bitnet_tui.session.log.events import SCHEMA_VERSION, Alert, EvalDone, Event, RunStarted, StepDone, WeightsSnapshot
from bitnet_tui.session.log.paths import new_session_path, sessions_dir
from bitnet_tui.version import __version__


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


def claim_files(path: Path, store: CheckpointStore | None, header_extra: dict[str, Any], *, control: bool) -> Path:
    """Claim a run's files before anything starts: the checkpoint directory (0700, refused when it is not safely
    ours; stale partial checkpoints removed and named in ``header_extra``) and the socket's place."""
    from bitnet_tui.session.control.peer import check_socket_path, control_path
    from bitnet_tui.session.log.paths import checkpoint_dir

    if store is not None:
        store.directory = checkpoint_dir(path)
        removed = store.prepare()
        if removed:
            header_extra.setdefault("cleaned", [str(p) for p in removed])
    if control:
        check_socket_path(control_path(path))
    return path


def _slug(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_.+" else "-" for c in name)[:80].strip("-.")
    return keep or "run"


def open_sinks(session_path: Path, subscribe: Callable[[Subscriber], None],
               consumer_failed: Callable[[Subscriber, BaseException], None], *, control: Steerable | None,
               tensorboard: str | None, trackio: tuple[str, str, dict[str, Any]] | None,
               ) -> tuple[Subscriber, list[Callable[[], Any]]]:
    """Rank 0's sinks: the session writer, the control server for ``control`` (a run that takes commands),
    mirrors (``trackio``: project, run name, config). Returns the writer and the close functions, in the order
    to call them (the socket first, the log last but for mirrors)."""
    from bitnet_tui.session.control.peer import control_path
    from bitnet_tui.session.log.writer import SessionWriter

    writer = SessionWriter(session_path, on_error=lambda e: consumer_failed(writer, e))
    subscribe(writer)
    closers: list[Callable[[], Any]] = [writer.close]
    if control is not None:
        from bitnet_tui.instrument.server import ControlServer

        closers.insert(0, ControlServer(control, control_path(session_path)).close)
    mirrors: list[TensorBoardMirror | TrackioMirror] = []
    if tensorboard:
        mirrors.append(TensorBoardMirror(tensorboard))
    if trackio:
        mirrors.append(TrackioMirror(*trackio))
    for m in mirrors:
        subscribe(m)
        closers.append(m.close)
    return writer, closers


def close_all(closers: list[Callable[[], Any]]) -> None:
    """Close each sink in turn; one that fails (a log that cannot be completed) is a warning on stderr."""
    for close in closers:
        try:
            close()
        except Exception as e:  # never raise here: the run is ending
            print(f"warning: {e}", file=sys.stderr)


def build_header(*, step: int, run_name: str, config: dict[str, Any], argv: tuple[str, ...], device: Any,
                 model: Any, optimizer: Any, audit: list[dict[str, Any]],
                 baselines: tuple[int | None, float | None, float | None], total_steps: int | None,
                 parent: dict[str, Any] | None, world: dict[str, Any], source: str,
                 extra: dict[str, Any], detector: dict[str, Any]) -> RunStarted:
    """The ``run_started`` event of a run (``baselines``: vocabulary, ln(vocab), unigram entropy; ``detector``: its
    thresholds and the state it starts from)."""
    from bitnet_tui.instrument.audit import describe
    from bitnet_tui.instrument.weights import unwrap

    vocab, ln_vocab, unigram_entropy = baselines
    kept = {k: v for k, v in extra.items() if k in ("corpus", "tokenizer")}
    return RunStarted(
        step=step, time=time.time(), schema=SCHEMA_VERSION, run_name=run_name, config=config,
        versions=versions(), argv=argv, device=str(device),
        params=sum(p.numel() for p in unwrap(model).parameters()), vocab_size=vocab,
        ln_vocab=ln_vocab, unigram_entropy=unigram_entropy, total_steps=total_steps, parent=parent,
        optimizer=describe(optimizer, model) if optimizer is not None else {}, audit=tuple(audit),
        world=world, source=source, detector=detector, **kept)


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
