"""What the dashboard knows about a run: the one fold of its events, plus bounded series to plot.

Nothing here imports textual: the live app, replay, watch, the benches and the tests push the same events
through :meth:`Feed.apply` and read the same series back. :class:`Series` is a bounded, incrementally
downsampled series (points fall into buckets; when there are too many, neighbours merge and the bucket
width doubles), so drawing costs the same at 100 steps or 100,000. A version counter per panel lets a
panel redraw only when its data changed.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bitnet_model.analysis.detector import DetectorConfig
from bitnet_model.analysis.fold import RunFold
from bitnet_model.analysis.summary import detector_config
from bitnet_model.control.commands import LR_ACTIONS
from bitnet_model.log.events import EvalDone, Event, Intervention, RunStarted, StepDone, WeightsSnapshot
from bitnet_model.log.text import printable

CAPACITY = 512
"""Buckets per series: between 256 and 512 points drawn, more than a 200-column braille plot can show."""
HISTORY = 160
"""Columns kept of the per-layer history (heatmap); older snapshots merge pairwise."""


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

    def append(self, x: float, y: float | None) -> None:
        if y is None or not math.isfinite(y) or abs(y) > 1e300:
            return
        self.count += 1
        self.last_x, self.last_y = x, y
        if self._n and self._n[-1] < self.width:
            i = len(self._n) - 1
            self._n[i] += 1
            self._sum[i] += y
            self.mean[i] = self._sum[i] / self._n[i]
            self.lo[i] = min(self.lo[i], y)
            self.hi[i] = max(self.hi[i], y)
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
        """Halve the bucket count: each pair becomes one bucket twice as wide (an odd tail stays)."""
        n = len(self.x) // 2 * 2
        pairs = range(0, n, 2)
        x = [self.x[i] for i in pairs]
        lo = [min(self.lo[i], self.lo[i + 1]) for i in pairs]
        hi = [max(self.hi[i], self.hi[i + 1]) for i in pairs]
        cnt = [self._n[i] + self._n[i + 1] for i in pairs]
        sm = [self._sum[i] + self._sum[i + 1] for i in pairs]
        if n < len(self.x):
            x.append(self.x[-1])
            lo.append(self.lo[-1])
            hi.append(self.hi[-1])
            cnt.append(self._n[-1])
            sm.append(self._sum[-1])
        self.width *= 2
        self.x, self.lo, self.hi, self._n, self._sum = x, lo, hi, cnt, sm
        self.mean = [s / c for s, c in zip(sm, cnt)]


@dataclass
class LayerHistory:
    """Per-layer values over time for the heatmap: columns are snapshots (merged pairwise past ``HISTORY``)."""

    names: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    zero: list[list[float]] = field(default_factory=list)
    flip: list[list[float]] = field(default_factory=list)
    scale: list[list[float]] = field(default_factory=list)

    def add(self, ev: WeightsSnapshot) -> None:
        names = [printable(lw.name, 120) for lw in ev.layers]
        if names != self.names:
            self.names, self.steps, self.zero, self.flip, self.scale = names, [], [], [], []
        self.steps.append(ev.step)
        self.zero.append([lw.zero for lw in ev.layers])
        self.flip.append([lw.flip_rate for lw in ev.layers])
        self.scale.append([lw.scale for lw in ev.layers])
        if len(self.steps) > HISTORY:
            for col in (self.zero, self.flip, self.scale):
                col[:] = [_nanmean_cols(col[i], col[i + 1]) for i in range(0, len(col) - 1, 2)] + \
                    ([col[-1]] if len(col) % 2 else [])
            self.steps[:] = self.steps[1::2] + ([self.steps[-1]] if len(self.steps) % 2 else [])


def _nanmean_cols(a: list[float], b: list[float]) -> list[float]:
    out = []
    for x, y in zip(a, b):
        vals = [v for v in (x, y) if math.isfinite(v)]
        out.append(sum(vals) / len(vals) if vals else math.nan)
    return out


PANELS = ("header", "loss", "unique", "weights", "lr", "timeline", "samples", "metrics")


class Feed(RunFold):
    """The run as the panels see it: the fold, bounded series, per-layer history and a version per panel."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        super().__init__()
        self.capacity = capacity
        c = capacity
        self.train_loss, self.val_loss, self.unique, self.unique_share = Series(c), Series(c), Series(c), Series(c)
        self.lr_series, self.wd_series, self.grad_norm_series = Series(c), Series(c), Series(c)
        self.zero_mean, self.flip_mean, self.scale_mean = Series(c), Series(c), Series(c)
        self.report_unique = Series(c)
        self.metrics: dict[str, Series] = {}
        """User metrics (``Monitor.step(**metrics)`` and eval extras), by name."""
        self.layers = LayerHistory()
        self.versions: dict[str, int] = dict.fromkeys(PANELS, 0)
        self._rate: deque[tuple[int, float]] = deque(maxlen=64)
        self.detector: DetectorConfig = DetectorConfig()
        self.history: Feed | None | bool = None
        """The parent run up to the fork (drawn dimmed); False once looked for and absent."""

    def _touch(self, *panels: str) -> None:
        for p in panels:
            self.versions[p] += 1

    def apply(self, e: Event) -> None:
        super().apply(e)
        if isinstance(e, StepDone):
            s = e.step
            self.train_loss.append(s, e.loss)
            self.lr_series.append(s, e.lr)
            self.wd_series.append(s, e.weight_decay)
            self.grad_norm_series.append(s, e.grad_norm)
            for k, v in e.extra.items():
                self._metric(k).append(s, v)
            if e.tokens_per_s is not None:
                self._rate.append((s, e.time))
            v = self.versions
            v["header"] += 1
            v["loss"] += 1
            v["lr"] += 1
            if e.extra:
                v["metrics"] += 1
        elif isinstance(e, EvalDone):
            self.val_loss.append(e.step, e.val_loss)
            self.unique.append(e.step, float(e.unique_tokens))
            if e.generated_tokens:
                self.unique_share.append(e.step, e.unique_tokens / e.generated_tokens)
            if e.report_unique is not None:
                self.report_unique.append(e.step, float(e.report_unique))
            for k, val in e.extra.items():
                self._metric(k).append(e.step, val)
            self._touch("header", "loss", "unique", "samples", *(("metrics",) if e.extra else ()))
        elif isinstance(e, WeightsSnapshot):
            layers = e.layers
            if layers:
                zeros = [lw.zero for lw in layers if math.isfinite(lw.zero)]
                flips = [lw.flip_rate for lw in layers if math.isfinite(lw.flip_rate)]
                scales = [lw.scale for lw in layers if math.isfinite(lw.scale)]
                for series, vals in ((self.zero_mean, zeros), (self.flip_mean, flips), (self.scale_mean, scales)):
                    if vals:
                        series.append(e.step, sum(vals) / len(vals))
                self.layers.add(e)
            self._touch("weights")
        elif isinstance(e, RunStarted):
            self.detector = detector_config(e.config if isinstance(e.config, dict) else {})
            self._touch(*PANELS)
        else:
            self._touch("header", "timeline")
            if isinstance(e, Intervention):
                if e.action in LR_ACTIONS:
                    self._touch("lr")
                elif e.action == "resume":
                    self._rate.clear()  # the ETA must not count the pause


    def _metric(self, name: str) -> Series:
        key = printable(name, 60)
        s = self.metrics.get(key)
        if s is None:
            s = self.metrics[key] = Series(self.capacity)
        return s

    # -- reading -------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        return printable(self.header.device, 100) if self.header else "?"

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

    def detail(self) -> dict[str, Any]:
        """Figures of the latest eval for a header line: share, repetition, thresholds."""
        e = self.last_eval
        if e is None:
            return {}
        c = self.detector
        return {"unique": e.unique_tokens, "generated": e.generated_tokens,
                "share": e.unique_tokens / e.generated_tokens if e.generated_tokens else 0.0,
                "repetition": e.repetition, "collapse": c.collapse_share, "collapsing": c.collapsing_share,
                "recovered": c.recovered_share}
