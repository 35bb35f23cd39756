"""The one fold of an event stream: what a run has done so far, as every reader needs it.

The dashboard's feed (which adds plot series), ``summary`` and ``diagnose``, ``sessions``, ``export`` and the
headless status line all apply events to a :class:`RunFold`; so "the last loss", "the detector state", "the
timeline" and "the evals the verdict reads" mean the same thing on every screen. The state is the fold's own:
it runs the detector over the log's evals and weight snapshots in log order, with the thresholds and the
starting state the header recorded (a fork or a resume starts from its parent's), exactly as the live
detector did; so a live header, a ``summary`` of the log cut at that point and an export agree by
construction. What the run logged at the time stays beside it (:attr:`EvalPoint.logged_state`). Text taken
from events is made printable here, once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any

from bitnet_tui.session.analysis.detector import CollapseDetector, DetectorConfig, EvalFigures
from bitnet_tui.session.log.events import (
    FAILED_ENDS,
    Alert,
    CheckpointSaved,
    EvalDone,
    Event,
    Intervention,
    RunEnded,
    RunStarted,
    StepDone,
    SystemSample,
    WeightsSnapshot,
)
from bitnet_tui.session.text import fmt_value, printable


@dataclass(frozen=True)
class EvalPoint:
    """The figures of one eval that verdicts and diagnoses read."""

    step: int
    val_loss: float | None
    unique_tokens: int
    generated_tokens: int = 256
    state: str = ""
    distinct2: float | None = None
    repetition: float | None = None
    entropy: float | None = None
    report_unique: int | None = None
    unigram_entropy: float | None = None
    """The figure this eval was judged against, when counted from training batches (None: the header's)."""
    logged_state: str = ""
    """The state the run logged with this eval (``state`` is the fold's judgment, which equals it for a log
    written by a Monitor)."""

    def figures(self) -> EvalFigures:
        """What the detector reads of this eval."""
        return EvalFigures(step=self.step, unique=self.unique_tokens, generated=self.generated_tokens,
                           val_loss=self.val_loss, entropy=self.entropy, distinct2=self.distinct2,
                           repetition=self.repetition)


@dataclass(frozen=True)
class TimelineItem:
    step: int
    time: float
    kind: str
    """alert, intervention, checkpoint, end."""
    level: str
    """info, warning, error ("" for non-alerts)."""
    text: str
    """One line, printable (still never markup)."""
    short: str = ""
    """A few words for a header."""
    code: str = ""
    """An alert's code or an intervention's action."""
    source: str = ""
    """Who made an intervention (dashboard, remote, auto, ...); printable."""


def timeline_item(ev: Event) -> TimelineItem | None:
    """How an alert, intervention, checkpoint or end of run reads in a timeline."""
    if isinstance(ev, Alert):
        first, *more = str(ev.message).split("\n")  # a crash's traceback stays in the log (and --json)
        text = short = printable(first, 300) + (f" (+{len(more)} lines in the log)" if more else "")
        if ev.code == "detector" and ev.state_from and ev.state_from == ev.state_to:  # a state that lasts
            short = text.split(":")[0]
        elif ev.code == "detector" and (ev.state_from or ev.state_to):
            short = f"{printable(ev.state_from, 40) or 'start'} → {printable(ev.state_to, 40) or '?'}"
            text = f"{short}: {text}"
        return TimelineItem(ev.step, ev.time, "alert", printable(ev.level, 20), text, short[:80],
                            printable(ev.code, 40))
    if isinstance(ev, Intervention):
        action = printable(ev.action, 40)
        blank = all(v is None or v in ("", "-") for v in (ev.old, ev.new))  # pause, checkpoint...: no values
        full = action if blank else f"{action} {_value(ev.old)} → {_value(ev.new)}"
        short = full if blank or not (isinstance(ev.old, str) and isinstance(ev.new, str)) else \
            f"{action} {changed(_value(ev.old), _value(ev.new))}"
        by = printable(ev.source, 60)
        return TimelineItem(ev.step, ev.time, "intervention", "info", f"{full} (by {by})", short, action, by)
    if isinstance(ev, CheckpointSaved):
        what = "checkpoint (kept)" if ev.pinned else "checkpoint"
        text = f"{what} {printable(ev.path, 300)}"
        if ev.removed:
            text += f"; pruned {len(ev.removed)} older"
        return TimelineItem(ev.step, ev.time, "checkpoint", "info", text, "checkpoint")
    if isinstance(ev, RunEnded):
        text = f"run ended: {printable(ev.reason, 40)}" + (f": {printable(ev.error, 300)}" if ev.error else "")
        level = "error" if ev.reason in FAILED_ENDS else "info"
        return TimelineItem(ev.step, ev.time, "end", level, text, text[:80])
    return None


def changed(old: str, new: str) -> str:
    """``old → new`` cut to the words that differ ("all parameters: wd 0.1, coupled L2" → "... wd 0, coupled
    L2" reads ``0.1 → 0``): what a header has room for."""
    a, b = old.split(), new.split()
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    j = 0
    while j < min(len(a), len(b)) - i and a[-1 - j] == b[-1 - j]:
        j += 1
    da, db = " ".join(a[i:len(a) - j]).strip(",;:"), " ".join(b[i:len(b) - j]).strip(",;:")
    return f"{da or '—'} → {db or '—'}" if (da or db) else f"{old} → {new}"


def _value(v: Any) -> str:
    """An intervention's old or new value: numbers in the project's one format (``4.91e-4``)."""
    return fmt_value(v) if v is None or isinstance(v, float) else printable(v, 60)


@dataclass
class RunFold:
    """Apply events in order (:meth:`apply`); read what the run has done."""

    header: RunStarted | None = None
    step: int = 0
    total_steps: int = 0
    loss: float = math.nan
    lr: float = math.nan
    weight_decay: float = math.nan
    tokens_per_s: float = math.nan
    grad_norm: float = math.nan
    stage: int = 1
    state: str = ""
    paused: bool = False
    ended: RunEnded | None = None
    first_time: float | None = None
    last_time: float | None = None
    last_step_event: StepDone | None = None
    last_eval: EvalDone | None = None
    last_weights: WeightsSnapshot | None = None
    first_weights: WeightsSnapshot | None = None
    """The first snapshot: where the norm gains and the embedding started."""
    evals: list[EvalPoint] = field(default_factory=list)
    scales: list[tuple[int, float]] = field(default_factory=list)
    """(step, mean ternary scale) of every weight snapshot."""
    transitions: list[tuple[int, str]] = field(default_factory=list)
    """(step, state) of every change of the fold's detector state."""
    judge: CollapseDetector | None = None
    """The fold's detector (built at the header)."""
    timeline: list[TimelineItem] = field(default_factory=list)
    last_alert: TimelineItem | None = None
    last_intervention: TimelineItem | None = None
    lr_changes: list[tuple[int, str]] = field(default_factory=list)
    """(step, action) of every LR intervention."""
    alerts: int = 0
    events: int = 0
    last_system: SystemSample | None = None
    """The latest ``system`` sample: what the process costs the machine now."""

    def apply_all(self, events: Any) -> None:
        for e in events:
            self.apply(e)

    def apply(self, e: Event) -> None:
        self.events += 1
        self.last_time = e.time
        if self.first_time is None:
            self.first_time = e.time
        if isinstance(e, StepDone):
            self.step = e.step
            self.loss, self.lr, self.weight_decay, self.stage = e.loss, e.lr, e.weight_decay, e.stage
            self.tokens_per_s = math.nan if e.tokens_per_s is None else e.tokens_per_s
            self.grad_norm = math.nan if e.grad_norm is None else e.grad_norm
            self.last_step_event = e
        elif isinstance(e, EvalDone):
            self.step = max(self.step, e.step)
            self.last_eval = e
            self.judge_eval(EvalPoint(e.step, e.val_loss, e.unique_tokens, e.generated_tokens, "", e.distinct2,
                                  e.repetition, e.entropy, e.report_unique, e.unigram_entropy, printable(e.state, 40)))
        elif isinstance(e, WeightsSnapshot):
            self.last_weights = e
            if self.first_weights is None:
                self.first_weights = e
            scales = [lw.scale for lw in e.layers if math.isfinite(lw.scale)]
            if scales:
                self.scales.append((e.step, sum(scales) / len(scales)))
                self.detector().observe_scale(e.step, sum(scales) / len(scales))
        elif isinstance(e, SystemSample):
            self.last_system = e
        elif isinstance(e, RunStarted):
            self.header = e
            self.total_steps = e.total_steps or 0
            self.step = max(self.step, e.step)
            self.judge = start_detector(e)
        else:
            self._timeline(e)

    def _timeline(self, e: Event) -> None:
        item = timeline_item(e)
        if item is None:
            return
        self.timeline.append(item)
        if isinstance(e, Alert):
            self.alerts += 1
            self.last_alert = item
        elif isinstance(e, Intervention):
            self.last_intervention = item
            if e.action == "pause":
                self.paused = True
            elif e.action == "resume":
                self.paused = False
            if e.action in ("set_lr", "scale_lr", "undo_lr"):
                self.lr_changes.append((e.step, item.code))
        elif isinstance(e, RunEnded):
            self.ended = e
            self.paused = False

    def detector(self) -> CollapseDetector:
        """The fold's detector: what it has judged of the run so far."""
        if self.judge is None:  # events without a header: default thresholds, no baselines
            self.judge = CollapseDetector(DetectorConfig(), None, None)
        return self.judge

    def judge_eval(self, p: EvalPoint) -> None:
        """Judge one eval with the fold's detector (the rule every reader and :func:`~.verdict.replay` share)."""
        d = self.detector()
        if p.unigram_entropy is not None:  # counted from the training batches: as the live detector judged it
            d.unigram_entropy = p.unigram_entropy
        before = d.state
        d.observe(p.figures())
        self.evals.append(replace(p, state=d.state))
        self.state = d.state
        if d.state != before:
            self.transitions.append((p.step, d.state))

    # -- reading ------------------------------------------------------------------------------
    @property
    def run_name(self) -> str:
        return printable(self.header.run_name, 200) if self.header else "(no run_started yet)"

    @property
    def thresholds(self) -> DetectorConfig:
        """The detector thresholds this run is judged by (its header's)."""
        return self.detector().cfg

    @property
    def config(self) -> dict[str, Any]:
        return self.header.config if self.header and isinstance(self.header.config, dict) else {}

    @property
    def parent(self) -> tuple[str, str, int] | None:
        """(relation, name, step) of the session this one was forked or resumed from (printable), else None."""
        parent = self.header.parent if self.header else None
        if not isinstance(parent, dict):
            return None
        step = parent.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            return None
        name = parent.get("name")
        if not isinstance(name, str) or not name:
            session = parent.get("session")
            name = PurePath(session).name.removesuffix(".jsonl") if isinstance(session, str) and session else "?"
        relation = "resumed" if parent.get("relation") == "resume" else "forked"
        return relation, printable(name, 120), step

    @property
    def ln_vocab(self) -> float | None:
        return self.header.ln_vocab if self.header else None

    @property
    def unigram_entropy(self) -> float | None:
        """The latest figure: the last eval's, when counted from training batches as they passed; else the header's."""
        counted = [e.unigram_entropy for e in self.evals if e.unigram_entropy is not None]
        if counted:
            return counted[-1]
        return self.header.unigram_entropy if self.header else None

    @property
    def min_unique(self) -> tuple[int, int] | None:
        """(unique tokens, step) of the eval with the fewest."""
        if not self.evals:
            return None
        e = min(self.evals, key=lambda p: (p.unique_tokens, p.step))
        return e.unique_tokens, e.step


def detector_config(config: Any) -> DetectorConfig:
    """The detector thresholds an old log's header config records (``diag.detector``, as our trainer writes it);
    defaults where it has none or bad ones."""
    diag = config.get("diag") if isinstance(config, dict) else None
    return DetectorConfig.from_dict(diag.get("detector") if isinstance(diag, dict) else None)


def start_detector(h: RunStarted) -> CollapseDetector:
    """The detector a log's reader judges with: the thresholds and starting state its header recorded (older
    logs: the config's ``diag.detector`` and a fresh state)."""
    rec = h.detector if isinstance(h.detector, dict) else {}
    cfg = DetectorConfig.from_dict(rec["config"]) if isinstance(rec.get("config"), dict) else \
        detector_config(h.config)
    d = CollapseDetector(cfg, h.ln_vocab, h.unigram_entropy)
    d.load_state_dict(rec.get("state"))
    return d
