"""Drawing on a plotext figure the way every panel wants it: readable ticks, a legend outside the plot, log
scale on request, single points that show, and a parent run's history dimmed.

:class:`Axes` collects what a panel draws (lines, thresholds, markers), then :meth:`Axes.finish` sets the
limits and ticks itself: steps get whole-number ticks, values get at most a few significant digits in the
project's one number format (:func:`~bitnet_tui.session.text.fmt_num`: ``5e-4``, not ``0.00049999``).
Nothing here imports textual.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from bitnet_tui.session.text import fmt_num

EMA_LEVELS = (0.0, 0.9, 0.99, 0.999)
"""Loss smoothing the ``s`` key cycles through (EMA weight per step; 0: off)."""
DIM = "gray"
"""Colour of a parent run's history."""
RICH_COLORS = {"gray": "grey50", "orange": "dark_orange", "blue": "dodger_blue2", "magenta": "magenta",
               "red": "red", "green": "green", "cyan": "cyan", "yellow": "yellow", "white": "white"}
"""plotext colour names as Rich styles, for legends drawn outside the plot."""


@dataclass
class View:
    """How the plots are drawn; the keys change it, every plot reads it (one per app)."""

    log_y: bool = False
    """Log scale on every plot's y axis (``y``)."""
    ema: float = 0.9
    """EMA weight of the loss and grad-norm smoothing (``s``); 0 draws the raw series only."""
    weights_map: str = "flip"
    """Which pair the weights heatmap shows: ``flip`` (flip rate and zero fraction) or ``scale`` (scale, RMS)."""
    version: int = 0

    def changed(self) -> None:
        self.version += 1

    def next_ema(self) -> float:
        i = EMA_LEVELS.index(self.ema) if self.ema in EMA_LEVELS else 0
        self.ema = EMA_LEVELS[(i + 1) % len(EMA_LEVELS)]
        return self.ema


def nice_step(raw: float) -> float:
    """The 1-2-2.5-5 x 10^k step nearest to ``raw``."""
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    mag = 10 ** math.floor(math.log10(raw))
    return min((m * mag for m in (1, 2, 2.5, 5, 10)), key=lambda c: abs(math.log(c / raw)))


def nice_ticks(lo: float, hi: float, n: int, *, integer: bool = False) -> list[float]:
    """About ``n`` round values between ``lo`` and ``hi`` (whole numbers when ``integer``)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    step = nice_step((hi - lo) / max(1, n))
    if integer:
        step = max(1.0, float(round(step)))
        if step not in (1.0, 2.0) and step % 5:
            step = nice_step(step)
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + step * 1e-9 and len(ticks) < 50:
        ticks.append(float(f"{k * step:.12g}"))
        k += 1
    return ticks


def log_ticks(lo: float, hi: float, n: int) -> list[float]:
    """1-2-5 x 10^k values between ``lo`` > 0 and ``hi``, thinned to about ``n``. A range narrower than that
    (a loss between 4.1 and 6.2 holds only 5) gets 1..9 x 10^k, then round linear values: never fewer than two."""
    if lo <= 0 or hi <= lo:
        return [lo] if lo > 0 else []
    out: list[float] = []
    for mults in ((1, 2, 5), range(1, 10)):
        out = []
        for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
            for m in mults:
                v = float(f"{m * 10 ** k:.12g}")
                if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9):
                    out.append(v)
        if len(out) >= 2:
            break
    if len(out) < 2:
        return nice_ticks(lo, hi, max(2, n))
    if len(out) > n:
        decades = [v for v in out if f"{v:.1e}".startswith("1.0")]
        out = decades if len(decades) >= 2 else out[:: math.ceil(len(out) / max(1, n))]
    return out


def tick_label(v: float) -> str:
    return fmt_num(v)


@dataclass
class Line:
    xs: list[float]
    ys: list[float]
    color: str
    label: str = ""
    marker: str | None = None
    yside: str = "left"
    legend: bool = True


@dataclass
class Axes:
    """What one panel draws, before it goes to plotext (see :meth:`finish`)."""

    log_y: bool = False
    lines: list[Line] = field(default_factory=list)
    vlines: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    """(label, plotext colour) for the line above the plot."""
    ylim: tuple[float | None, float | None] = (None, None)
    """Left axis limits a panel asks for (None: from the data)."""
    notes: list[tuple[str, str]] = field(default_factory=list)
    """Extra legend text (label, Rich style), e.g. ``init 120 ↑ (off scale)``."""

    def line(self, xs: Sequence[float], ys: Sequence[float], color: str, label: str = "", *, marker: str | None = None,
             yside: str = "left", legend: bool = True) -> None:
        xs, ys = list(xs), list(ys)
        if self.log_y:
            keep = [(x, y) for x, y in zip(xs, ys) if y > 0]
            xs, ys = [x for x, _ in keep], [y for _, y in keep]
        if not xs:
            return
        self.lines.append(Line(xs, ys, color, label, marker, yside, legend))
        if label and legend:
            self.legend.append((label, color))

    def hline(self, y: float | None, color: str, label: str = "") -> None:
        """A horizontal reference line across the drawn step range (drawn in :meth:`finish`)."""
        if y is None or not math.isfinite(y) or (self.log_y and y <= 0):
            return
        self.lines.append(Line([], [y], color, label, None, "left", bool(label)))
        if label:
            self.legend.append((label, color))

    def vline(self, x: float, color: str) -> None:
        self.vlines.append((x, color))

    def note(self, text: str, style: str = "dim") -> None:
        self.notes.append((text, style))

    # -- to plotext ----------------------------------------------------------------------------
    def _xspan(self) -> tuple[float, float] | None:
        xs = [x for ln in self.lines for x in ln.xs] + [x for x, _ in self.vlines]
        if not xs:
            return None
        lo, hi = min(xs), max(xs)
        if hi - lo < 1:
            return lo - 1, hi + 1  # a single step: widen so the point is not on the frame
        step = nice_step((hi - lo) / 5)
        near_lo, near_hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
        if lo - near_lo <= 0.03 * (hi - lo):
            lo = near_lo  # 1 -> 0, 599 -> 600: the round numbers get their ticks
        if near_hi - hi <= 0.03 * (hi - lo):
            hi = near_hi
        return lo, hi

    def _yspan(self, side: str) -> tuple[float, float] | None:
        ys = [y for ln in self.lines if ln.yside == side for y in ln.ys]
        if not ys:
            return None
        lo, hi = min(ys), max(ys)
        if side == "left":
            lo = self.ylim[0] if self.ylim[0] is not None else lo
            hi = self.ylim[1] if self.ylim[1] is not None else hi
        if self.log_y:
            lo = max(lo, 1e-12)
            if hi <= lo:
                lo, hi = lo / 2, hi * 2
            return lo, hi
        if hi <= lo:
            pad = abs(lo) * 0.1 or 1.0
            return (max(0.0, lo - pad) if lo >= 0 else lo - pad), hi + pad
        if side != "left" or self.ylim == (None, None):
            pad = (hi - lo) * 0.05
            lo, hi = (max(0.0, lo - pad) if lo >= 0 else lo - pad), hi + pad
        return lo, hi

    def finish(self, plt: Any, width: int, height: int) -> bool:
        """Draw everything on ``plt`` (a cleared plotext figure of ``width`` x ``height``); False: nothing to draw."""
        span = self._xspan()
        if span is None:
            return False
        x0, x1 = span
        for ln in self.lines:
            if not ln.xs:  # a reference line
                plt.plot([x0, x1], [ln.ys[0]] * 2, color=ln.color)
            elif len(ln.xs) == 1:  # one point: a marker, or it would not show
                plt.scatter(ln.xs, ln.ys, color=ln.color, marker=ln.marker or "●", yside=ln.yside)
            elif ln.marker:
                plt.plot(ln.xs, ln.ys, color=ln.color, marker=ln.marker, yside=ln.yside)
            else:
                plt.plot(ln.xs, ln.ys, color=ln.color, yside=ln.yside)
        for x, color in self.vlines:
            plt.vline(x, color)
        plt.xlim(x0, x1)
        xt = nice_ticks(x0, x1, max(2, width // 12), integer=True)
        if x1 - x0 <= 2:  # one step widened by one each side: its own tick only, never "-1 0 1"
            xt = [t for t in xt if x0 < t < x1]
        plt.xticks(xt, [tick_label(t) for t in xt])
        rows = max(2, height // 3)
        for side in ("left", "right"):
            ys = self._yspan(side)
            if ys is None:
                continue
            lo, hi = ys
            if self.log_y:
                plt.yscale("log", yside=side)
                yt = log_ticks(lo, hi, rows)
                plt.ylim(math.log10(lo), math.log10(hi), yside=side)  # plotext: limits in log10, ticks in data
            else:
                yt = nice_ticks(lo, hi, rows)
                plt.ylim(lo, hi, yside=side)
            plt.yticks(yt, [tick_label(t) for t in yt], yside=side)
        return True

    def legend_text(self, width: int) -> Text:
        """The legend as one or two lines of coloured text (never drawn over the data)."""
        items = [(f"━ {label}", RICH_COLORS.get(color, color)) for label, color in self.legend]
        items += [(text, style) for text, style in self.notes]
        lines: list[Text] = [Text()]
        for text, style in items:
            cur = lines[-1]
            need = len(text) + (2 if cur.plain else 0)
            if cur.plain and cur.cell_len + need > width:
                if len(lines) == 2:
                    break
                lines.append(Text())
                cur = lines[-1]
            if cur.plain:
                cur.append("  ")
            cur.append(text, style=style)
        out = Text("\n").join(lines)
        out.no_wrap = True
        out.overflow = "ellipsis"
        return out


def draw_history(ax: Axes, xs: Sequence[float], ys: Sequence[float], step: int, label: str = "") -> None:
    """The parent run's series up to the fork ``step``, dimmed."""
    pairs = [(x, y) for x, y in zip(xs, ys) if x <= step]
    if pairs:
        ax.line([x for x, _ in pairs], [y for _, y in pairs], DIM, label, legend=bool(label))


def render_text(ax: Axes, plt: Any, width: int, height: int) -> str:
    """``ax`` as plain text (no colours) on the plotext figure ``plt``: legend line(s), then the plot."""
    legend = ax.legend_text(width)
    rows = legend.plain.count("\n") + 1 if legend.plain else 0
    plt.clear_data()
    plt.clear_figure()
    if not ax.finish(plt, width, max(3, height - rows)):
        return "no data"
    plt.plotsize(width, max(3, height - rows))
    plt._set_size(width, max(3, height - rows))
    plt.theme("clear")
    plot = Text.from_ansi(plt.build()).plain
    return f"{legend.plain}\n{plot}" if rows else plot
