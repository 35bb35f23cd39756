"""Bounded series for plots and pictures: :class:`Series` (min/mean/max buckets over steps), :class:`LayerHistory`
(per-layer values over snapshots, for the weights heatmap) and :func:`ema` (loss smoothing over buckets).

Nothing here imports textual: the dashboard, the ``plot`` command and the tests read the same objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bitnet_tui.session.log.events import WeightsSnapshot
from bitnet_tui.session.text import printable

CAPACITY = 512
"""Buckets per series: between 256 and 512 points drawn, more than a 200-column braille plot can show."""
HISTORY = 160
"""Columns kept of the per-layer history (heatmap); older snapshots merge pairwise."""
LAYER_STATS = ("flip", "zero", "scale", "rms")
"""What :class:`LayerHistory` keeps per layer and snapshot."""


class Series:
    """Bounded min/mean/max buckets over (x, y) samples, appended in x order.

    Points fall into buckets; when there are too many, neighbours merge and the bucket width doubles, so
    drawing costs the same at 100 steps or 100,000.
    """

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

    @property
    def counts(self) -> list[int]:
        """Samples in each bucket."""
        return self._n

    def append(self, x: float, y: float | None) -> None:
        if y is None or not -1e300 <= y <= 1e300:  # NaN fails both comparisons, as do the infinities
            return
        self.count += 1
        self.last_x, self.last_y = x, y
        n = self._n
        if n and n[-1] < self.width:  # the hot path (a replay appends every step): no calls, last items only
            c = n[-1] = n[-1] + 1
            total = self._sum[-1] = self._sum[-1] + y
            self.mean[-1] = total / c
            if y < self.lo[-1]:
                self.lo[-1] = y
            elif y > self.hi[-1]:
                self.hi[-1] = y
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


def ema(series: Series, weight: float) -> list[float]:
    """The exponential moving average of ``series`` (``weight`` per step, e.g. 0.9), one value per bucket.

    A bucket of n samples weighs ``weight ** n`` against its mean, so the smoothing means the same number of
    steps however far the series has been downsampled. ``weight`` 0 is the series itself.
    """
    if weight <= 0 or not series.mean:
        return list(series.mean)
    out: list[float] = []
    cur = series.mean[0]
    for m, n in zip(series.mean, series.counts):
        a = weight ** n
        cur = a * cur + (1 - a) * m
        out.append(cur)
    return out


def short_layer_name(name: str) -> str:
    """``blocks.3.attn.q`` -> ``3.attn.q``; ``model.layers.0.self_attn.q_proj`` -> ``0.self_attn.q_proj``:
    the block number first, so blocks and projections tell apart in a narrow column."""
    parts = name.split(".")
    for i, p in enumerate(parts):
        if p.isdigit():
            return ".".join(parts[i:])
    return name


@dataclass
class LayerHistory:
    """Per-layer values over time for the heatmap: one column per snapshot (merged pairwise past ``HISTORY``)."""

    names: list[str] = field(default_factory=list)
    """Short, printable layer names (``3.attn.q``)."""
    steps: list[int] = field(default_factory=list)
    values: dict[str, list[list[float]]] = field(default_factory=lambda: {k: [] for k in LAYER_STATS})
    """stat -> one list per snapshot, one value per layer (NaN where not logged)."""

    def add(self, ev: WeightsSnapshot) -> None:
        names = [printable(short_layer_name(lw.name), 80) for lw in ev.layers]
        if names != self.names:  # another model (or a log that changed its layers): start again
            self.names, self.steps = names, []
            self.values = {k: [] for k in LAYER_STATS}
        self.steps.append(ev.step)
        v = self.values
        v["flip"].append([lw.flip_rate for lw in ev.layers])
        v["zero"].append([lw.zero for lw in ev.layers])
        v["scale"].append([lw.scale for lw in ev.layers])
        v["rms"].append([math.nan if lw.rms is None else lw.rms for lw in ev.layers])
        if len(self.steps) > HISTORY:
            for cols in v.values():
                cols[:] = [_nanmean(cols[i], cols[i + 1]) for i in range(0, len(cols) - 1, 2)] + \
                    ([cols[-1]] if len(cols) % 2 else [])
            self.steps[:] = self.steps[1::2] + ([self.steps[-1]] if len(self.steps) % 2 else [])

    def columns(self, stat: str, width: int) -> tuple[list[list[float]], list[int]]:
        """Up to ``width`` columns spread evenly over the logged steps: each the mean of the snapshots in its step
        range, or the column before it when none fell there. Per column one value per layer, and its first step."""
        snaps, steps = self.values.get(stat, []), self.steps
        if not steps or width <= 0:
            return [], []
        lo, hi = steps[0], steps[-1]
        if hi <= lo:
            return [list(snaps[-1])], [lo]
        width = min(width, hi - lo + 1)
        span = (hi - lo) / width
        out: list[list[float]] = []
        starts: list[int] = []
        j = 0
        for c in range(width):
            end = lo + span * (c + 1)
            picked: list[list[float]] = []
            while j < len(steps) and (steps[j] < end or c == width - 1):
                picked.append(snaps[j])
                j += 1
            if picked:
                out.append(_column_mean(picked))
            else:
                out.append(out[-1] if out else [math.nan] * len(self.names))
            starts.append(int(lo + span * c))
        return out, starts


def _column_mean(cols: list[list[float]]) -> list[float]:
    out = []
    for vals in zip(*cols):
        ok = [v for v in vals if math.isfinite(v)]
        out.append(sum(ok) / len(ok) if ok else math.nan)
    return out


def _nanmean(a: list[float], b: list[float]) -> list[float]:
    out = []
    for x, y in zip(a, b):
        vals = [v for v in (x, y) if math.isfinite(v)]
        out.append(sum(vals) / len(vals) if vals else math.nan)
    return out
