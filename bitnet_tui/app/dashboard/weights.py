"""The ternary weights panel: every layer, its history as a picture, and the latest numbers.

Every layer at once first, one cell each (:func:`every_layer`: the latest values, so all of them show at
80x24), then one row per BitLinear layer (named ``3.attn.q``: block, then projection), scrollable: two heatmap strips
over the logged steps (flip rate and zero fraction; ``w`` switches to the ternary scale and latent RMS, each
relative to its layer's peak, where un-learning shows as a fading row), then the latest -1/0/+1 split,
scale, latent RMS and flip rate as far as the width allows. Above them, per snapshot, the mean scale, the
mean |gain| of the norm layers and the embedding RMS with their recent history. Shades and colours both
carry the value, so the picture reads in a monochrome terminal too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.containers import Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import Static

from bitnet_tui.app.dashboard.axes import View
from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.app.dashboard.series import Series
from bitnet_tui.session.text import fmt_num

PALETTE = ("#440154", "#46327e", "#365c8d", "#277f8e", "#1fa187", "#4ac16d", "#a0da39", "#fde725")
"""Viridis, dark (low) to bright (high)."""
SHADES = "░░▒▒▓▓██"
SPARK = "▁▂▃▄▅▆▇█"
MAPS = {"flip": (("flip", "flip"), ("zero", "zero")),
        "scale": (("scale", "scale÷peak"), ("rms", "rms÷peak"))}
"""What the two strips show, by :attr:`View.weights_map`."""
NUMBERS = (("split", 8, "-1/0/+1"), ("scale", 7, "scale"), ("flip", 5, "flip"), ("rms", 7, "rms"))
"""Latest-value columns, most wanted first: (key, width, title)."""
MIN_STRIP = 10
MIN_CONTRAST = 0.2
"""The shading of a strip spans at least this share of its largest value (the header states the span)."""


@dataclass
class Layout:
    name: int
    strip: int
    numbers: tuple[tuple[str, int, str], ...]


def layout(width: int, names: list[str]) -> Layout:
    """Column widths for ``width`` cells: the names, two equal strips, then as many numbers as fit."""
    name = min(12, max([5] + [len(n) for n in names]))
    avail = width - name - 1
    strip = max(1, (avail - 1) // 2)
    numbers: list[tuple[str, int, str]] = []
    used = 0
    for col in NUMBERS:
        if avail - (used + col[1] + 1) >= 2 * MIN_STRIP + 1 + 1:
            numbers.append(col)
            used += col[1] + 1
    if numbers:
        strip = max(1, (avail - used - 2) // 2)
    return Layout(name, strip, tuple(numbers))


def _levels(cols: list[list[float]], relative: bool) -> tuple[list[list[float]], float, float]:
    """Values scaled to 0..1 for shading (NaN stays NaN): over the whole picture, or per layer to its peak."""
    if not cols:
        return [], math.nan, math.nan
    if relative:
        peaks = [max((c[i] for c in cols if math.isfinite(c[i])), default=math.nan) for i in range(len(cols[0]))]
        return [[v / p if math.isfinite(v) and p and math.isfinite(p) else math.nan for v, p in zip(c, peaks)]
                for c in cols], 0.0, 1.0
    vals = [v for c in cols for v in c if math.isfinite(v)]
    if not vals:
        return cols, math.nan, math.nan
    lo, hi = min(vals), max(vals)
    if lo >= 0 and lo < 0.5 * hi:
        lo = 0.0  # a rate: dark means none
    if hi - lo < MIN_CONTRAST * abs(hi):  # 0.31-0.32 is not stretched to full contrast: the scale spans at least
        mid, half = (lo + hi) / 2, MIN_CONTRAST * abs(hi) / 2  # a fifth of the value, centred on the data
        lo, hi = max(0.0, mid - half) if lo >= 0 else mid - half, mid + half
    span = hi - lo
    return [[(v - lo) / span if span > 0 and math.isfinite(v) else (0.0 if math.isfinite(v) else math.nan)
             for v in c] for c in cols], lo, hi


def cell(level: float) -> Text:
    if not math.isfinite(level):
        return Text(" ")
    if level <= 0:
        return Text("·", style="dim")
    i = min(len(PALETTE) - 1, int(level * len(PALETTE)))
    return Text(SHADES[i], style=PALETTE[i])


def sparkline(s: Series, n: int = 10) -> str:
    vals = s.mean[-n:]
    if len(vals) < 2:
        return ""
    lo, hi = min(vals), max(vals)
    if hi <= lo:
        return SPARK[0] * len(vals)
    return "".join(SPARK[min(7, int((v - lo) / (hi - lo) * 8))] for v in vals)


def summary(feed: Feed) -> Text:
    w = feed.last_weights
    if w is None:
        return Text("no weight snapshot yet", style="dim")
    t = Text()
    t.append(f"step {w.step}:", style="bold")
    t.append(f"  {len(w.layers)} ternary layers")
    if feed.scales:
        now = feed.scales[-1][1]
        peak_step, peak = max(feed.scales, key=lambda p: p[1])
        t.append(f"  scale {fmt_num(float(f'{now:.3g}'))}")
        if peak > 0 and now < 0.8 * peak:
            t.append(f" (÷{peak / now:.1f} from its peak @{peak_step})", style="bold yellow")
    sep = "\n"  # the gains on a line of their own: a figure is never split from its label
    for label, s in (("norm |g|", feed.norm_gain), ("embed rms", feed.embed_norm)):
        if s.last_y is not None:
            t.append(f"{sep}{label} {fmt_num(float(f'{s.last_y:.3g}'))}")
            sep = "  "
            spark = sparkline(s)
            if spark:
                t.append(f" {spark}", style="cyan")
    return t


def header(feed: Feed, view: View, width: int) -> Text:
    names = feed.layers.names
    lay = layout(width, names)
    steps = feed.layers.steps
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f"{'layer':<{lay.name}} ", style="bold")
    for stat, title in MAPS.get(view.weights_map, MAPS["flip"]):
        cols, _ = feed.layers.columns(stat, lay.strip)
        _, lo, hi = _levels(cols, stat in ("scale", "rms"))
        rng = f" {fmt_num(float(f'{lo:.2g}'))}–{fmt_num(float(f'{hi:.2g}'))}" if math.isfinite(lo) else ""
        label = title + rng if len(title + rng) <= lay.strip else title  # a range is shown whole or not at all
        out.append(f"{label[: lay.strip]:<{lay.strip}} ", style="bold")
    for _, width_, title in lay.numbers:
        out.append(f"{title:>{width_}} ", style="bold")
    out.append("\n")
    out.append(" " * (lay.name + 1))
    if steps:
        axis = _axis(steps[0], steps[-1], lay.strip)
        out.append(f"{axis} {axis}", style="dim")
    return out


def _axis(s0: int, s1: int, width: int) -> str:
    """``0 ── step ── 400`` in ``width`` cells: the strip's first and last step."""
    a, b = str(s0), str(s1)
    fill = width - len(a) - len(b) - 2
    if fill < 1:
        return b[:width].rjust(width)
    if fill < 10:
        return f"{a} {'─' * fill} {b}"
    dashes = fill - 6
    return f"{a} {'─' * (dashes // 2)} step {'─' * (dashes - dashes // 2)} {b}"


def rows(feed: Feed, view: View, width: int) -> Text:
    """One line per layer: name, the two strips, the latest numbers."""
    hist = feed.layers
    names = hist.names
    if not names:
        return Text("")
    lay = layout(width, names)
    strips = []
    for stat, _ in MAPS.get(view.weights_map, MAPS["flip"]):
        cols, _ = hist.columns(stat, lay.strip)
        levels, _, _ = _levels(cols, stat in ("scale", "rms"))
        strips.append(levels)
    last = list(feed.last_weights.layers) if feed.last_weights else []
    out = Text(no_wrap=True, overflow="ellipsis")
    for i, name in enumerate(names):
        shown = name if len(name) <= lay.name else "…" + name[-(lay.name - 1):]
        out.append(f"{shown:<{lay.name}} ")
        for levels in strips:
            for col in levels:
                out.append_text(cell(col[i] if i < len(col) else math.nan))
            out.append(" " * (lay.strip - len(levels) + 1))
        lw = last[i] if i < len(last) else None
        for key, w, _ in lay.numbers:
            out.append(f"{_number(lw, key):>{w}} ")
        if i < len(names) - 1:
            out.append("\n")
    return out


def every_layer(feed: Feed, view: View, width: int) -> Text:
    """Every ternary layer at once, one cell each in log order, ``│`` between blocks: the latest snapshot of
    each of the two strips' figures, shaded on the strips' own scale. At 80x24 the rows below show a dozen
    layers; this shows all of them (a 12-block model's 84 on two lines each)."""
    hist = feed.layers
    names = hist.names
    if not names or not hist.steps:
        return Text("")
    lay = layout(width, names)
    room = max(8, width - lay.name - 1)
    out = Text(no_wrap=True, overflow="ellipsis")
    for n, (stat, title) in enumerate(MAPS.get(view.weights_map, MAPS["flip"])):
        latest = hist.values.get(stat, [[]])[-1]
        cols, _ = hist.columns(stat, lay.strip)
        levels, _, _ = _levels([*cols, list(latest)], stat in ("scale", "rms"))
        now = levels[-1] if levels else []
        cells: list[Text] = []
        for i, name in enumerate(names):
            if i and _block(name) != _block(names[i - 1]):
                cells.append(Text("│", style="dim"))
            cells.append(cell(now[i] if i < len(now) else math.nan))
        for start in range(0, len(cells), room):
            label = f"{title} now" if start == 0 else ""
            out.append(f"{label[: lay.name]:<{lay.name}} ", style="bold")
            for c in cells[start:start + room]:
                out.append_text(c)
            if start + room < len(cells) or n == 0:
                out.append("\n")
    return out


def _block(name: str) -> str:
    return name.split(".", 1)[0] if "." in name else ""


def _number(lw: Any, key: str) -> str:
    if lw is None:
        return "-"
    if key == "split":
        parts = [lw.neg, lw.zero, lw.pos]
        return "/".join(f"{100 * p:.0f}" if math.isfinite(p) else "-" for p in parts)
    v = {"scale": lw.scale, "rms": lw.rms, "flip": lw.flip_rate}[key]
    if v is None or not math.isfinite(v):
        return "-"
    return f"{v:.3f}" if key == "flip" else fmt_num(float(f"{v:.3g}"))


class _Drawn(Widget):
    """A widget that renders ``make(feed, view, width)`` at its own width."""

    def __init__(self, make: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.make = make
        self.feed: Feed | None = None
        self.view = View()

    def render(self) -> Text:
        if self.feed is None:
            return Text("")
        return self.make(self.feed, self.view, self.size.width)


class WeightsPanel(Vertical):
    """Summary, strip headers, and a scrollable row per layer."""

    def __init__(self, view: View | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view = view if view is not None else View()
        self._drawn: tuple[int, int, int] = (-1, -1, -1)

    def compose(self) -> Any:
        yield Static(id="w-summary")
        yield _Drawn(every_layer, id="w-all")
        yield _Drawn(header, id="w-head")
        with VerticalScroll(id="w-scroll"):
            yield _Drawn(rows, id="w-rows")

    def update_from(self, feed: Feed, force: bool = False) -> bool:
        key = (id(feed), feed.versions["weights"], self.view.version)
        if key == self._drawn and not force:
            return False
        self._drawn = key
        self.query_one("#w-summary", Static).update(summary(feed))
        n = len(feed.layers.names)
        for wid in ("#w-all", "#w-head", "#w-rows"):
            d = self.query_one(wid, _Drawn)
            d.feed, d.view = feed, self.view
            d.display = n > 0
            d.refresh()
        self.query_one("#w-rows", _Drawn).styles.height = max(1, n)
        return True

    def table_text(self) -> str:
        """The rows as plain text (tests)."""
        d = self.query_one("#w-rows", _Drawn)
        return d.render().plain if d.feed is not None else ""


def focus_panel(app: Any, key: str) -> None:
    """Give the keys to the weights rows while their tab is shown (Up/Down, PageUp/PageDown, Home/End scroll
    them; nothing else has focus in the dashboard), and take them back on another tab."""
    try:
        scroll = app.screen_stack[0].query_one("#w-scroll")
    except (NoMatches, IndexError):  # torn down, or an app without the weights panel
        return
    if key == "weights":
        scroll.focus()
    elif scroll.has_focus:
        app.set_focus(None)
