"""What the dashboard knows about a run, built from the event stream alone.

Nothing here imports textual: the live app, replay, watch, the benches and the
tests all push the same events through :meth:`Feed.apply` and read the same
series back. Three pieces:

- :class:`EventBuffer`: the producer side of the live and watch paths. The
  training (or polling) thread calls it for each event; it appends to a deque
  (O(1), never blocks) and the UI drains it on a timer.
- :class:`Series`: a bounded, incrementally downsampled series. Points fall into
  buckets of ``width`` consecutive samples; when there are more than
  ``capacity`` buckets, neighbours merge and ``width`` doubles. Drawing cost
  stays flat whether the run has 100 steps or 100,000.
- :class:`Feed`: the run's state (header, latest eval, latest weights, timeline,
  series) with a version counter per panel, so a panel redraws only when its
  data changed. :class:`Player` walks a logged event list for replay.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import PurePath
from typing import Any

from bitnet_model.log.events import (
    Alert,
    CheckpointSaved,
    EvalDone,
    Event,
    Intervention,
    RunEnded,
    RunStarted,
    StepDone,
    WeightsSnapshot,
)
from bitnet_model.log.text import safe_text


def printable(text: Any, limit: int = 2000) -> str:
    """One line of untrusted text, safe to put in a Rich ``Text``.

    Control characters (ESC included, so ANSI CSI and OSC sequences), newlines and
    bidi overrides become visible ``\\x1b``-style escapes via ``safe_text``. Rich
    markup is never parsed because callers build ``Text`` objects, never markup strings.
    """
    return safe_text(text, newlines=False, limit=limit)


CAPACITY = 512
"""Buckets per series: between 256 and 512 points drawn, more than a 200-column braille plot can show."""


class EventBuffer:
    """Thread-safe hand-off from a producer thread to the UI: append now, drain later."""

    def __init__(self) -> None:
        self._events: deque[Event] = deque()

    def __call__(self, event: Event) -> None:
        self._events.append(event)

    def __len__(self) -> int:
        return len(self._events)

    def drain(self, limit: int | None = None) -> list[Event]:
        """Everything appended so far (at most ``limit``), oldest first."""
        out: list[Event] = []
        pop = self._events.popleft
        n = len(self._events) if limit is None else min(limit, len(self._events))
        for _ in range(n):
            out.append(pop())
        return out


class Series:
    """Bounded min/mean/max buckets over (x, y) samples, appended in x order."""

    __slots__ = ("capacity", "width", "x", "mean", "lo", "hi", "_n", "_sum", "count", "last_x", "last_y")

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = max(2, capacity)
        self.width = 1
        self.x: list[float] = []
        self.mean: list[float] = []
        self.lo: list[float] = []
        self.hi: list[float] = []
        self._n: list[int] = []
        self._sum: list[float] = []
        self.count = 0
        self.last_x: float | None = None
        self.last_y: float | None = None

    def __len__(self) -> int:
        return len(self.x)

    def append(self, x: float, y: float) -> None:
        if not math.isfinite(y):
            return
        self.count += 1
        self.last_x, self.last_y = x, y
        if self._n and self._n[-1] < self.width:
            i = len(self._n) - 1
            self._n[i] += 1
            self._sum[i] += y
            self.mean[i] = self._sum[i] / self._n[i]
            if y < self.lo[i]:
                self.lo[i] = y
            if y > self.hi[i]:
                self.hi[i] = y
            return
        self.x.append(x)
        self.mean.append(y)
        self.lo.append(y)
        self.hi.append(y)
        self._n.append(1)
        self._sum.append(y)
        if len(self.x) > self.capacity:
            self._merge()

    def _merge(self) -> None:
        """Halve the bucket count: each pair becomes one bucket twice as wide."""
        n = len(self.x) // 2 * 2
        x, lo, hi, cnt, sm = [], [], [], [], []
        for i in range(0, n, 2):
            x.append(self.x[i])
            lo.append(min(self.lo[i], self.lo[i + 1]))
            hi.append(max(self.hi[i], self.hi[i + 1]))
            cnt.append(self._n[i] + self._n[i + 1])
            sm.append(self._sum[i] + self._sum[i + 1])
        if n < len(self.x):  # odd tail: a partly filled bucket stays as it is
            x.append(self.x[-1])
            lo.append(self.lo[-1])
            hi.append(self.hi[-1])
            cnt.append(self._n[-1])
            sm.append(self._sum[-1])
        self.width *= 2
        self.x, self.lo, self.hi, self._n, self._sum = x, lo, hi, cnt, sm
        self.mean = [s / c for s, c in zip(sm, cnt, strict=True)]


STATE_LABELS = {
    "": "no eval yet",
    "not_learning": "not learning yet",
    "unigram": "unigram phase",
    "healthy": "healthy",
    "collapsing": "collapsing",
    "collapsed": "collapsed",
    "recovering": "recovering",
    "recovered": "recovered",
}

PANELS = ("header", "loss", "unique", "weights", "lr", "timeline", "samples")


@dataclass
class TimelineEntry:
    step: int
    time: float
    kind: str
    """alert, intervention, checkpoint, end."""
    level: str
    """info, warning, error."""
    text: str
    """Already made printable."""
    short: str = ""
    """A few words for the header (printable)."""


@dataclass
class Feed:
    """The run as the panels see it. Apply events in order; read series and versions."""

    capacity: int = CAPACITY
    header: RunStarted | None = None
    step: int = 0
    total_steps: int = 0
    loss: float = math.nan
    lr: float = math.nan
    weight_decay: float = math.nan
    tokens_per_s: float = math.nan
    stage: int = 1
    state: str = ""
    paused: bool = False
    ended: RunEnded | None = None
    last_time: float | None = None
    first_time: float | None = None
    last_eval: EvalDone | None = None
    last_weights: WeightsSnapshot | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    interventions: list[tuple[int, str]] = field(default_factory=list)
    """(step, action) of every LR intervention, for markers on the LR plot."""
    last_alert: TimelineEntry | None = None
    last_intervention: TimelineEntry | None = None
    alerts: int = 0
    events: int = 0
    versions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PANELS, 0))

    def __post_init__(self) -> None:
        c = self.capacity
        self.train_loss = Series(c)
        self.val_loss = Series(c)
        self.unique = Series(c)
        self.lr_series = Series(c)
        self.wd_series = Series(c)
        self.zero_mean = Series(c)
        self.zero_lo = Series(c)
        self.zero_hi = Series(c)
        self.flip_mean = Series(c)
        self.flip_hi = Series(c)
        self._rate: deque[tuple[int, float]] = deque(maxlen=64)

    # -- reading ---------------------------------------------------------------

    @property
    def run_name(self) -> str:
        return printable(self.header.run_name, 200) if self.header else "(no run_started yet)"

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
    def fork_step(self) -> int | None:
        """The step this session starts from when it continues another: marked on the loss and LR plots."""
        parent = self.parent
        return parent[2] if parent is not None else None

    @property
    def device(self) -> str:
        return printable(self.header.device, 100) if self.header else "?"

    @property
    def ln_vocab(self) -> float | None:
        return self.header.ln_vocab if self.header else None

    @property
    def unigram_entropy(self) -> float | None:
        return self.header.unigram_entropy if self.header else None

    def thresholds(self) -> dict[str, int]:
        """Detector thresholds from the run's config, with DiagConfig's defaults."""
        out = {"collapse_unique": 5, "collapsing_unique": 10, "recovered_unique": 15}
        diag = (self.header.config or {}).get("diag", {}) if self.header else {}
        if isinstance(diag, dict):
            for k in out:
                v = diag.get(k)
                if isinstance(v, int) and not isinstance(v, bool):
                    out[k] = v
        return out

    def steps_per_s(self) -> float | None:
        """Recent step rate from logged times (no wall clock: replays render the same)."""
        if len(self._rate) < 2:
            return None
        (s0, t0), (s1, t1) = self._rate[0], self._rate[-1]
        if t1 <= t0 or s1 <= s0:
            return None
        return (s1 - s0) / (t1 - t0)

    def eta_s(self) -> float | None:
        rate = self.steps_per_s()
        if rate is None or self.ended is not None or not self.total_steps:
            return None
        return max(0.0, (self.total_steps - self.step) / rate)

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, printable(self.state, 40))

    # -- writing ---------------------------------------------------------------

    def _touch(self, *panels: str) -> None:
        v = self.versions
        for p in panels:
            v[p] += 1

    def apply_all(self, events: Iterable[Event]) -> None:
        for e in events:
            self.apply(e)

    def apply(self, e: Event) -> None:
        self.events += 1
        self.last_time = e.time
        if self.first_time is None:
            self.first_time = e.time
        if isinstance(e, StepDone):
            self.step = e.step
            self.loss = e.loss
            self.lr = e.lr
            self.weight_decay = e.weight_decay
            self.tokens_per_s = e.tokens_per_s
            self.stage = e.stage
            self.train_loss.append(e.step, e.loss)
            self.lr_series.append(e.step, e.lr)
            self.wd_series.append(e.step, e.weight_decay)
            self._rate.append((e.step, e.time))
            v = self.versions
            v["header"] += 1
            v["loss"] += 1
            v["lr"] += 1
        elif isinstance(e, EvalDone):
            self.step = max(self.step, e.step)
            self.last_eval = e
            self.val_loss.append(e.step, e.val_loss)
            self.unique.append(e.step, float(e.unique_tokens))
            if e.state:
                self.state = e.state
            self._touch("header", "loss", "unique", "samples")
        elif isinstance(e, WeightsSnapshot):
            self.last_weights = e
            layers = e.layers
            if layers:
                zeros = [lw.zero for lw in layers]
                self.zero_mean.append(e.step, sum(zeros) / len(zeros))
                self.zero_lo.append(e.step, min(zeros))
                self.zero_hi.append(e.step, max(zeros))
                flips = [lw.flip_rate for lw in layers if math.isfinite(lw.flip_rate)]
                if flips:
                    self.flip_mean.append(e.step, sum(flips) / len(flips))
                    self.flip_hi.append(e.step, max(flips))
            self._touch("weights")
        elif isinstance(e, Alert):
            self.alerts += 1
            if e.state_to:
                self.state = e.state_to
            text = short = printable(e.message, 300)
            if e.state_from or e.state_to:
                short = f"{printable(e.state_from, 40) or 'start'} → {printable(e.state_to, 40) or '?'}"
                text = f"{short}: {text}"
            entry = TimelineEntry(e.step, e.time, "alert", printable(e.level, 20), text, short[:80])
            self.timeline.append(entry)
            self.last_alert = entry
            self._touch("header", "timeline")
        elif isinstance(e, Intervention):
            action = printable(e.action, 40)
            if action == "pause":
                self.paused = True
            elif action == "resume":
                self.paused = False
            if action in ("set_lr", "scale_lr", "undo_lr"):
                self.interventions.append((e.step, action))
                self._touch("lr")
            short = f"{action} {_fmt_value(e.old)} → {_fmt_value(e.new)}"
            text = f"{short} (by {printable(e.source, 40)})"
            entry = TimelineEntry(e.step, e.time, "intervention", "info", text, short)
            self.timeline.append(entry)
            self.last_intervention = entry
            self._touch("header", "timeline")
        elif isinstance(e, CheckpointSaved):
            text = f"checkpoint {printable(e.path, 300)}"
            self.timeline.append(TimelineEntry(e.step, e.time, "checkpoint", "info", text))
            self._touch("timeline")
        elif isinstance(e, RunEnded):
            self.ended = e
            self.paused = False
            text = f"run ended: {printable(e.reason, 40)}"
            if e.error:
                text += f": {printable(e.error, 300)}"
            level = "error" if e.reason == "error" else "info"
            self.timeline.append(TimelineEntry(e.step, e.time, "end", level, text))
            self._touch("header", "timeline")
        elif isinstance(e, RunStarted):
            self.header = e
            self.total_steps = e.total_steps
            self.step = max(self.step, e.step)
            self._touch(*PANELS)


def _fmt_value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}"
    return printable(v, 60)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


SPEEDS: dict[str, float] = {"1": 1.0, "2": 10.0, "3": 100.0, "0": math.inf}


class Player:
    """A cursor over a logged event list: what replay has shown so far.

    ``cursor`` is how many events have been applied to ``feed``. Moving backwards
    rebuilds the feed from the start (the feed is append-only by design).
    """

    MAX_GAP_S = 2.0
    """A pause in the log longer than this (in replay seconds) is skipped."""

    def __init__(self, events: Sequence[Event], *, speed: float = 1.0, capacity: int = CAPACITY) -> None:
        self.events = list(events)
        self.speed = speed
        self.capacity = capacity
        self.playing = True
        self.feed = Feed(capacity=capacity)
        self.cursor = 0
        self.clock: float | None = None
        """Logged time the replay has reached."""
        self.steps = list(accumulate((e.step for e in self.events), max))
        """Running maximum of the logged steps: sorted, so seeking can bisect."""
        self.alert_idx = [i for i, e in enumerate(self.events) if isinstance(e, Alert)]

    @property
    def at_end(self) -> bool:
        return self.cursor >= len(self.events)

    def reset(self) -> None:
        self.feed = Feed(capacity=self.capacity)
        self.cursor = 0
        self.clock = None

    def apply_to(self, index: int) -> None:
        """Apply events until ``cursor == index`` (rebuilding if ``index`` is behind)."""
        index = max(0, min(index, len(self.events)))
        if index < self.cursor:
            self.reset()
        apply = self.feed.apply
        evs = self.events
        for i in range(self.cursor, index):
            apply(evs[i])
        self.cursor = index
        if index:
            self.clock = evs[index - 1].time

    def tick(self, wall_dt: float, budget_events: int = 20_000) -> int:
        """Advance by ``wall_dt`` seconds of replay time; returns events applied."""
        if not self.playing or self.at_end:
            return 0
        start = self.cursor
        if math.isinf(self.speed):
            self.apply_to(self.cursor + budget_events)
            return self.cursor - start
        evs = self.events
        if self.clock is None:
            self.clock = evs[0].time
        self.clock += wall_dt * self.speed
        nxt = evs[self.cursor].time
        if nxt - self.clock > self.MAX_GAP_S * self.speed:
            self.clock = nxt
        end = self.cursor
        n = len(evs)
        limit = min(n, self.cursor + budget_events)
        while end < limit and evs[end].time <= self.clock:
            end += 1
        clock = self.clock
        self.apply_to(end)
        self.clock = clock
        return self.cursor - start

    def seek_step(self, step: int) -> None:
        """Show everything logged up to and including ``step``."""
        idx = bisect.bisect_right(self.steps, step)
        self.apply_to(max(idx, 1 if self.events else 0))

    def to_start(self) -> None:
        self.apply_to(1 if self.events else 0)

    def to_end(self) -> None:
        self.apply_to(len(self.events))

    def next_alert(self) -> bool:
        for i in self.alert_idx:
            if i >= self.cursor:
                self.apply_to(i + 1)
                return True
        return False

    def prev_alert(self) -> bool:
        for i in reversed(self.alert_idx):
            if i < self.cursor - 1:
                self.apply_to(i + 1)
                return True
        return False
