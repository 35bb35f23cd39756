"""One session at a glance (``summary``, ``sessions``, ``compare``): a read log reduced to plain data.

Pure: no I/O beyond what :mod:`bitnet_tui.session.log.reader` read, no textual, no rich, no torch. The events go
through the one fold (:class:`~bitnet_tui.session.analysis.fold.RunFold`) and the verdict is the fold's detector's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bitnet_tui.session.analysis.fold import RunFold, TimelineItem
from bitnet_tui.session.analysis.verdict import judged
from bitnet_tui.session.log.events import jsonable
from bitnet_tui.session.log.reader import SessionData, read_session
from bitnet_tui.session.text import printable

KEY_CONFIG = (
    ("hidden", ("model", "hidden")),
    ("lr", ("train", "lr")),
    ("optimizer", ("train", "optimizer")),
    ("schedule", ("train", "schedule")),
    ("ls", ("train", "label_smoothing")),
    ("clip", ("train", "grad_clip")),
    ("quant", ("model", "quant")),
)
"""Short label and config path of the settings the report varied."""


def config_at(cfg: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` (our nested form, ``train.lr``), else at its last key alone: the flat form a user's
    loop passes (``config={"lr": 1.5e-3}``)."""
    cur = cfg
    for k in path:
        if not isinstance(cur, dict):
            cur = None
            break
        cur = cur.get(k)
    if cur is None and isinstance(cfg, dict) and not isinstance(cfg.get(path[-1]), dict):
        return cfg.get(path[-1])
    return cur


@dataclass
class LayerSummary:
    name: str
    zero: float
    scale: float
    rms: float | None
    flip_rate: float


@dataclass
class Summary:
    """One session at a glance. Metrics are None where the log has none."""

    path: str
    name: str
    status: str
    end_reason: str | None
    config: dict[str, Any]
    key_config: dict[str, Any]
    started: float
    total_steps: int
    ln_vocab: float | None
    unigram_entropy: float | None
    last_step: int
    last_loss: float | None
    last_val_loss: float | None
    last_unique: int | None
    generated: int | None
    min_unique: int | None
    min_unique_step: int | None
    detector_state: str
    collapse_step: int | None
    recovery_step: int | None
    verdict: str
    evals: int
    verdict_since: int | None = None
    min_loss: float | None = None
    min_loss_step: int | None = None
    scale_fall: float | None = None
    evidence: str = ""
    optimizer: dict[str, Any] = field(default_factory=dict)
    audit: list[dict[str, Any]] = field(default_factory=list)
    weights: list[LayerSummary] = field(default_factory=list)
    norm_gain: float | None = None
    embed_norm: float | None = None
    user_metrics: dict[str, float] = field(default_factory=dict)
    source: str = ""
    world: dict[str, Any] = field(default_factory=dict)
    timeline: list[TimelineItem] = field(default_factory=list)
    parent: str | None = None
    """"name@step (fork|resume)" for a session that started from another one's checkpoint."""
    first_step: int = 0
    """The step this session started at (a forked or resumed session starts at its checkpoint)."""
    malformed_lines: int = 0
    damaged_values: int = 0
    truncated_last_line: bool = False
    warnings: list[str] = field(default_factory=list)
    argv: tuple[str, ...] = ()
    """The command line that started the run, as the header recorded it."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite floats as "NaN"/"Infinity", like the log)."""
        return jsonable(asdict(self))


def summarize(data: SessionData, fold: RunFold | None = None) -> Summary:
    """Reduce a read session (and its fold, when the caller already made one) to its :class:`Summary`."""
    if fold is None:
        fold = RunFold()
        fold.apply(data.header)
        fold.apply_all(data.events)
    for ev in data.last_skipped.values():  # the final step of a summary read that skipped step lines
        if ev.step >= fold.step:
            fold.apply(ev)
    h = data.header
    cfg = fold.config
    v = judged(fold.detector(), [(e.step, e.state) for e in fold.evals], fold.evals[-1] if fold.evals else None,
               ended=fold.ended is not None)
    last = fold.evals[-1] if fold.evals else None
    mu = fold.min_unique
    w = fold.last_weights
    return Summary(
        path=str(data.path), name=data.name, status=data.status, end_reason=data.end_reason, config=cfg,
        key_config={label: config_at(cfg, path) for label, path in KEY_CONFIG}, started=h.time,
        total_steps=h.total_steps or 0, ln_vocab=h.ln_vocab, unigram_entropy=fold.unigram_entropy, last_step=fold.step,
        last_loss=fold.loss if fold.last_step_event is not None else None,
        last_val_loss=last.val_loss if last else None, last_unique=last.unique_tokens if last else None,
        generated=last.generated_tokens if last else None,
        min_unique=mu[0] if mu else None, min_unique_step=mu[1] if mu else None,
        detector_state=v.state or fold.state, collapse_step=v.collapse_step, recovery_step=v.recovery_step,
        verdict=v.label, evals=len(fold.evals), verdict_since=v.since, min_loss=v.min_loss, min_loss_step=v.min_step,
        scale_fall=v.scale_fall, evidence=v.evidence, optimizer=dict(h.optimizer),
        audit=[dict(a) for a in h.audit],
        weights=[LayerSummary(printable(lw.name, 200), lw.zero, lw.scale, lw.rms, lw.flip_rate)
                 for lw in (w.layers if w else ())],
        norm_gain=w.norm_gain if w else None, embed_norm=w.embed_norm if w else None,
        user_metrics=dict(fold.last_step_event.extra) if fold.last_step_event else {},
        source=printable(h.source, 100), world=dict(h.world), timeline=list(fold.timeline),
        parent=parent_label(h.parent), first_step=h.step, malformed_lines=data.malformed,
        damaged_values=data.damage, truncated_last_line=data.truncated_last_line, warnings=list(data.warnings),
        argv=tuple(h.argv),
    )


def parent_label(parent: Any) -> str | None:
    if not isinstance(parent, dict):
        return None
    name = printable(str(parent.get("name") or parent.get("session") or "?"), 200)
    step = parent.get("step")
    rel = parent.get("relation", "fork")
    return f"{name}@{step if isinstance(step, int) else '?'} ({printable(str(rel), 20)})"


SUMMARY_SKIP = ("step",)
"""Kinds a summary does not need one by one (only the last step): pass as ``read_session(skip=...)``."""


def read_summary(path: Any) -> Summary:
    """Read a log the fast way and summarize it. Raises :class:`~bitnet_tui.session.log.errors.SessionError`."""
    return summarize(read_session(path, skip=SUMMARY_SKIP))
