"""What a session log says: per-session summaries and the compare table, as plain data.

Everything here is pure (no I/O beyond what :mod:`bitnet_model.session` read,
no textual, no rich), so the CLI, the dashboard and scripts share it.

The verdict on a run (:func:`verdict`) reads the eval stream the way the
report did: did greedy decoding collapse to a handful of tokens, and did it
come back? Detector states in the log win; logs without them fall back to
:class:`~bitnet_model.config.DiagConfig`'s unique-token thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bitnet_model.config import ConfigError, DiagConfig, RunConfig
from bitnet_model.events import (
    SCHEMA_VERSION,
    Alert,
    CheckpointSaved,
    EvalDone,
    Event,
    Intervention,
    LayerWeights,
    RunEnded,
    RunStarted,
    StepDone,
    WeightsSnapshot,
)
from bitnet_model.session import SessionData, read_session, safe_text

NEVER_COLLAPSED = "never collapsed"
COLLAPSE_THEN_RECOVERY = "collapse then recovery"
COLLAPSED_AND_STUCK = "collapsed and stuck"
COLLAPSED_RECOVERING = "collapsed, recovering"
"""Collapsed, and diversity is coming back but has not reached the recovered threshold yet."""
COLLAPSED_AGAIN = "recovered, then collapsed again"
NOT_LEARNING = "not learning"
DIVERGED = "diverged"
"""The last held-out loss is NaN or infinite."""
NO_EVALS = "no evals yet"

COLLAPSED_STATE = "collapsed"
RECOVERED_STATE = "recovered"

KEY_CONFIG = (
    ("hidden", ("model", "hidden")),
    ("lr", ("train", "lr")),
    ("schedule", ("train", "schedule")),
    ("ls", ("train", "label_smoothing")),
    ("clip", ("train", "grad_clip")),
    ("quant", ("model", "quant")),
)
"""Short label and config path of the settings the report varied."""

SHORT_NAMES = {
    "model.hidden": "hidden", "train.lr": "lr", "train.label_smoothing": "ls", "train.grad_clip": "clip",
    "train.schedule": "schedule", "model.quant": "quant", "train.steps": "steps", "train.seed": "seed",
    "model.layers": "layers", "model.heads": "heads", "model.ffn": "ffn", "model.context": "context",
    "train.batch_size": "batch", "train.weight_decay": "wd", "data.data": "data",
}


def fmt_value(v: Any) -> str:
    """Compact text for a config or metric value (floats as ``1.5e-3``, ``0.1``)."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "NaN" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        if v != 0 and (abs(v) < 0.01 or abs(v) >= 1e5):
            mant, exp = f"{v:.3e}".split("e")
            return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"
        return f"{v:.4g}"
    return safe_text(v, newlines=False)


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


# --------------------------------------------------------------------------- verdict

@dataclass(frozen=True)
class EvalPoint:
    """The part of an eval the verdict reads."""

    step: int
    val_loss: float
    unique_tokens: int
    state: str = ""


@dataclass(frozen=True)
class Verdict:
    label: str
    collapse_step: int | None = None
    """First eval whose detector state was collapsed (or a detector alert into collapsed)."""
    recovery_step: int | None = None
    """First recovered state after the collapse."""


def verdict(
    evals: Sequence[EvalPoint],
    *,
    ln_vocab: float,
    diag: DiagConfig | None = None,
    transitions: Iterable[tuple[int, str]] = (),
) -> Verdict:
    """Classify a run from its evals (and detector alerts as ``(step, state_to)`` transitions).

    - not learning: the last held-out loss is within ``diag.not_learning_margin``
      of ln(vocab) (or above it);
    - collapse: the first eval in state ``collapsed`` or the first transition
      into it, whichever comes first; without any detector states, the first eval
      at or below ``diag.collapse_unique`` unique tokens;
    - recovery: the first ``recovered`` state after the collapse; without
      detector states, the first eval at or above ``diag.recovered_unique``.
    """
    diag = diag or DiagConfig()
    if not evals:
        return Verdict(NO_EVALS)
    transitions = list(transitions)
    last = evals[-1]
    collapse, recovery = collapse_and_recovery(evals, diag=diag, transitions=transitions)
    if not math.isfinite(last.val_loss):
        return Verdict(DIVERGED, collapse, recovery)
    if last.val_loss >= ln_vocab * (1 - diag.not_learning_margin):
        return Verdict(NOT_LEARNING, collapse, recovery)
    if collapse is None:
        return Verdict(NEVER_COLLAPSED)
    uses_states = any(e.state for e in evals) or bool(transitions)
    final_state = _final_state(evals, transitions) if uses_states else ""
    if recovery is not None:
        relapsed = (
            final_state == COLLAPSED_STATE if uses_states else last.unique_tokens <= diag.collapse_unique
        )
        return Verdict(COLLAPSED_AGAIN if relapsed else COLLAPSE_THEN_RECOVERY, collapse, recovery)
    recovering = (
        final_state == "recovering" if uses_states else last.unique_tokens > diag.collapsing_unique
    )
    return Verdict(COLLAPSED_RECOVERING if recovering else COLLAPSED_AND_STUCK, collapse, recovery)


def _final_state(evals: Sequence[EvalPoint], transitions: Sequence[tuple[int, str]]) -> str:
    """The detector state in force at the end: the later of the last eval state and the last transition."""
    state, at = "", -1
    for e in evals:
        if e.state:
            state, at = e.state, e.step
    for step, to in transitions:
        if to and step >= at:
            state, at = to, step
    return state


def collapse_and_recovery(
    evals: Sequence[EvalPoint], *, diag: DiagConfig | None = None, transitions: Iterable[tuple[int, str]] = ()
) -> tuple[int | None, int | None]:
    """(collapse step, recovery step) as :func:`verdict` defines them; None where it did not happen."""
    diag = diag or DiagConfig()
    transitions = list(transitions)
    if any(e.state for e in evals) or transitions:
        marks = sorted([(e.step, e.state) for e in evals if e.state] + [(s, t) for s, t in transitions if t])
        collapse = next((s for s, st in marks if st == COLLAPSED_STATE), None)
        if collapse is None:
            return None, None
        recovery = next((s for s, st in marks if st == RECOVERED_STATE and s > collapse), None)
        return collapse, recovery
    collapse = next((e.step for e in evals if e.unique_tokens <= diag.collapse_unique), None)
    if collapse is None:
        return None, None
    recovery = next((e.step for e in evals if e.step > collapse and e.unique_tokens >= diag.recovered_unique), None)
    return collapse, recovery


# --------------------------------------------------------------------------- summary

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
        return _jsonable(asdict(self))


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
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
    state = _final_state(evals, transitions)
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


# --------------------------------------------------------------------------- compare

def flatten_config(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-3}}`` -> ``{"train.lr": 1e-3}``."""
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten_config(v, key + "."))
        else:
            out[key] = v
    return out


_MISSING = object()


def differing_keys(configs: Sequence[dict[str, Any]]) -> list[str]:
    """Dotted config keys whose values are not the same in all ``configs`` (a missing key differs).

    Keys that only locate files on the machine (``data.cache_dir``) are left out.
    Sorted with the settings the report varied first.
    """
    if len(configs) < 2:
        return []
    flat = [flatten_config(c) for c in configs]
    keys: set[str] = set().union(*flat)
    keys.discard("data.cache_dir")
    out = [k for k in keys if len({repr(f.get(k, _MISSING)) for f in flat}) > 1]
    order = {f"{a}.{b}": i for i, (_, (a, b)) in enumerate(KEY_CONFIG)}
    return sorted(out, key=lambda k: (order.get(k, len(order)), k))


def short_key(key: str) -> str:
    return SHORT_NAMES.get(key, key)


@dataclass(frozen=True)
class CompareRow:
    name: str
    path: str
    status: str
    differs: dict[str, Any]
    """The differing keys' values for this session, by dotted key."""
    min_unique: int | None
    min_unique_step: int | None
    collapse_step: int | None
    recovery_step: int | None
    final_unique: int | None
    final_loss: float | None
    final_val_loss: float | None
    last_step: int
    verdict: str
    parent: str | None = None
    first_step: int = 0


@dataclass(frozen=True)
class CompareTable:
    keys: list[str]
    """Config keys that differ across the sessions (dotted), in display order."""
    rows: list[CompareRow]

    def to_json(self) -> dict[str, Any]:
        return _jsonable({"differing_keys": self.keys, "sessions": [asdict(r) for r in self.rows]})


def compare(summaries: Sequence[Summary]) -> CompareTable:
    """One row per session, showing only the configuration that differs among them.

    Parents and children line up by step: sessions are ordered by the step they start at, so a fork
    sits below its parent, and its collapse and recovery steps are on the parent's step axis.
    """
    keys = differing_keys([s.config for s in summaries])
    rows = []
    for s in sorted(summaries, key=lambda s: (s.first_step, s.started)):
        flat = flatten_config(s.config)
        rows.append(
            CompareRow(
                name=s.name, path=s.path, status=s.status, differs={k: flat.get(k) for k in keys},
                min_unique=s.min_unique, min_unique_step=s.min_unique_step, collapse_step=s.collapse_step,
                recovery_step=s.recovery_step, final_unique=s.last_unique, final_loss=s.last_loss,
                final_val_loss=s.last_val_loss, last_step=s.last_step, verdict=s.verdict,
                parent=s.parent, first_step=s.first_step,
            )
        )
    return CompareTable(keys=keys, rows=rows)


# --------------------------------------------------------------------------- scripted runs

def scripted_run(
    unique: Sequence[int],
    *,
    states: Sequence[str] | None = None,
    val_losses: Sequence[float] | None = None,
    config: RunConfig | None = None,
    eval_every: int = 100,
    steps_per_eval: int | None = None,
    layers: int = 4,
    ln_vocab: float = math.log(4096),
    unigram_entropy: float = 6.5,
    end: str | None = "finished",
    start_time: float = 1_790_000_000.0,
) -> list[Event]:
    """A realistic event stream with the given eval trajectory, for demos, tests and benchmarks.

    One ``step`` event per step, an ``eval`` and a ``weights`` snapshot (``layers``
    x 7 BitLinears) every ``eval_every`` steps, a detector alert at each state
    change, and a ``run_ended`` with reason ``end`` (None: the run crashed).
    """
    cfg = config or RunConfig()
    n = len(unique)
    every = steps_per_eval or eval_every
    total = n * every
    states = list(states) if states is not None else [""] * n
    vals = list(val_losses) if val_losses is not None else [
        unigram_entropy - 1.5 * (i + 1) / n for i in range(n)
    ]
    t = start_time
    events: list[Event] = [
        RunStarted(
            step=0, time=t, schema=SCHEMA_VERSION, run_name="scripted", config=cfg.to_dict(),
            corpus={"name": "scripted", "sha256": "0" * 64}, tokenizer={"kind": "bpe", "vocab_size": 4096},
            versions={"bitnet-tui": "0"}, argv=("bitnet-tui", "run"), device="cpu", params=1_000_000,
            ln_vocab=ln_vocab, unigram_entropy=unigram_entropy, total_steps=total,
        )
    ]
    names = ("q", "k", "v", "o", "gate", "up", "down")
    prev_state = ""
    for i in range(n):
        for s in range(i * every + 1, (i + 1) * every + 1):
            t += 0.05
            loss = ln_vocab - (ln_vocab - vals[i]) * s / total
            events.append(StepDone(step=s, time=t, loss=loss, lr=5e-4, weight_decay=0.1, grad_norm=0.8,
                                   tokens_per_s=40_000.0, stage=1))
        step = (i + 1) * every
        u = unique[i]
        events.append(EvalDone(
            step=step, time=t, val_loss=vals[i], unique_tokens=u, generated_tokens=256, distinct2=u / 256,
            top_share=1 / max(u, 1), top_tokens=(("the", 40), (" of", 20)), entropy=3.2,
            samples=("the the the", "of the of"), prompts=("Once", "It was"), state=states[i],
        ))
        events.append(WeightsSnapshot(step=step, time=t, layers=tuple(
            LayerWeights(name=f"blocks.{b}.{nm}", neg=0.3, zero=0.4, pos=0.3, scale=0.02,
                         flip_rate=math.nan if i == 0 else 0.01, near_boundary=0.05)
            for b in range(layers) for nm in names
        )))
        if states[i] and states[i] != prev_state:
            events.append(Alert(step=step, time=t, level="warning", code="detector",
                                message=f"{u} unique tokens", state_from=prev_state, state_to=states[i],
                                unique_tokens=u, val_loss=vals[i]))
            prev_state = states[i]
    if end is not None:
        events.append(RunEnded(step=total, time=t + 0.1, reason=end))
    return events
