"""One session at a glance (``summary``, ``sessions``): a read log reduced to plain data.

Pure: no I/O beyond what :mod:`bitnet_model.log.reader` read, no textual, no rich, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bitnet_model.analysis.verdict import EvalPoint, final_state, verdict
from bitnet_model.log.events import Alert, CheckpointSaved, EvalDone, Event, Intervention, RunEnded, StepDone
from bitnet_model.log.reader import SessionData, read_session
from bitnet_model.log.text import fmt_value, safe_text
from bitnet_model.train.config import ConfigError, DiagConfig, RunConfig

KEY_CONFIG = (
    ("hidden", ("model", "hidden")),
    ("lr", ("train", "lr")),
    ("schedule", ("train", "schedule")),
    ("ls", ("train", "label_smoothing")),
    ("clip", ("train", "grad_clip")),
    ("quant", ("model", "quant")),
)
"""Short label and config path of the settings the report varied."""


@dataclass(frozen=True)
class TimelineItem:
    step: int
    time: float
    kind: str
    """alert, intervention, checkpoint, run_ended."""
    text: str
    """One line, control characters escaped (still escape Rich markup before printing)."""
    level: str = ""


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
    ln_vocab: float
    unigram_entropy: float
    last_step: int
    last_loss: float | None
    last_val_loss: float | None
    last_unique: int | None
    min_unique: int | None
    min_unique_step: int | None
    detector_state: str
    collapse_step: int | None
    recovery_step: int | None
    verdict: str
    evals: int
    timeline: list[TimelineItem] = field(default_factory=list)
    parent: str | None = None
    """"name@step (fork|resume)" for a session that started from another one's checkpoint."""
    first_step: int = 0
    """The step this session started at (a forked or resumed session starts at its checkpoint)."""
    malformed_lines: int = 0
    truncated_last_line: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite floats as "NaN"/"Infinity", like the log)."""
        return jsonable(asdict(self))


def jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v


def _config_path(cfg: dict[str, Any], path: Sequence[str]) -> Any:
    cur: Any = cfg
    for k in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(k)
    return cur


def diag_config(cfg: dict[str, Any]) -> DiagConfig:
    """The run's detector thresholds from its header config; defaults where it has none or bad ones."""
    try:
        return RunConfig.from_dict(cfg).diag
    except (ConfigError, TypeError, ValueError):
        return DiagConfig()


def _timeline_text(ev: Event) -> str:
    if isinstance(ev, Alert):
        if ev.code == "detector" and ev.state_to:
            head = f"detector {ev.state_from or 'start'} → {ev.state_to}"
        else:
            head = f"{ev.level} {ev.code}"
        return f"{head}: {ev.message}" if ev.message else head
    if isinstance(ev, Intervention):
        return f"{ev.action} {fmt_value(ev.old)} → {fmt_value(ev.new)} ({ev.source})"
    if isinstance(ev, CheckpointSaved):
        return f"checkpoint {ev.path}"
    if isinstance(ev, RunEnded):
        return f"run ended: {ev.reason}" + (f" ({ev.error})" if ev.error else "")
    return ev.kind


def summarize(data: SessionData) -> Summary:
    """Reduce a read session to its :class:`Summary`."""
    h = data.header
    cfg = h.config if isinstance(h.config, dict) else {}
    diag = diag_config(cfg)
    last_step = 0
    last_loss: float | None = None
    evals: list[EvalPoint] = []
    transitions: list[tuple[int, str]] = []
    timeline: list[TimelineItem] = []
    min_unique: int | None = None
    min_step: int | None = None
    for ev in data.events:
        last_step = max(last_step, ev.step)
        k = ev.kind
        if k == "step":
            last_loss = ev.loss  # type: ignore[attr-defined]
        elif k == "eval":
            assert isinstance(ev, EvalDone)
            evals.append(EvalPoint(ev.step, ev.val_loss, ev.unique_tokens, ev.state))
            if min_unique is None or ev.unique_tokens < min_unique:
                min_unique, min_step = ev.unique_tokens, ev.step
        elif k in ("alert", "intervention", "checkpoint", "run_ended"):
            if isinstance(ev, Alert) and ev.code == "detector" and ev.state_to:
                transitions.append((ev.step, ev.state_to))
            level = ev.level if isinstance(ev, Alert) else ""
            timeline.append(TimelineItem(ev.step, ev.time, k, safe_text(_timeline_text(ev), newlines=False, limit=300),
                                         level))
    for ev in data.last_skipped.values():
        last_step = max(last_step, ev.step)
        if isinstance(ev, StepDone) and (last_loss is None or ev.step >= last_step):
            last_loss = ev.loss
    v = verdict(evals, ln_vocab=h.ln_vocab, diag=diag, transitions=transitions)
    state = final_state(evals, transitions)
    return Summary(
        path=str(data.path),
        name=data.name,
        status=data.status,
        end_reason=data.end_reason,
        config=cfg,
        key_config={label: _config_path(cfg, path) for label, path in KEY_CONFIG},
        started=h.time,
        total_steps=h.total_steps,
        ln_vocab=h.ln_vocab,
        unigram_entropy=h.unigram_entropy,
        last_step=last_step,
        last_loss=last_loss,
        last_val_loss=evals[-1].val_loss if evals else None,
        last_unique=evals[-1].unique_tokens if evals else None,
        min_unique=min_unique,
        min_unique_step=min_step,
        detector_state=state,
        collapse_step=v.collapse_step,
        recovery_step=v.recovery_step,
        verdict=v.label,
        evals=len(evals),
        timeline=timeline,
        parent=_parent_label(h.parent),
        first_step=h.step,
        malformed_lines=data.malformed,
        truncated_last_line=data.truncated_last_line,
        warnings=list(data.warnings),
    )


def _parent_label(parent: Any) -> str | None:
    if not isinstance(parent, dict):
        return None
    name = safe_text(str(parent.get("name") or parent.get("session") or "?"), newlines=False, limit=200)
    step = parent.get("step")
    rel = parent.get("relation", "fork")
    return f"{name}@{step if isinstance(step, int) else '?'} ({safe_text(str(rel), newlines=False, limit=20)})"


SUMMARY_SKIP = ("step", "weights")
"""Kinds a summary does not need one by one (only the last step): pass as ``read_session(skip=...)``."""


def read_summary(path: Any) -> Summary:
    """Read a log the fast way and summarize it. Raises :class:`~bitnet_model.session.SessionError`."""
    return summarize(read_session(path, skip=SUMMARY_SKIP))
