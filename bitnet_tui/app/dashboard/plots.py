"""The dashboard's plot widgets: loss, unique tokens, LR and weight decay, grad norm, user metrics (what each
draws is in :mod:`.figures`).

Every plot has ``update_from(feed)``: it compares the feed's version counter for its data (and the shared
:class:`~bitnet_tui.app.dashboard.axes.View`) with the ones it last drew and does nothing when they match, and it
redraws at most as often as its measured render cost allows, so the UI takes a bounded share of the CPU
from training. A plot describes what it draws on an :class:`~bitnet_tui.app.dashboard.axes.Axes`; the legend
is a line of text above the plot, never over the data. A resumed or forked run shows its parent's history
up to the fork, dimmed.
"""

from __future__ import annotations

import math
import time
from typing import Any

from rich.text import Text
from textual_plotext import PlotextPlot

from bitnet_tui.app.dashboard.axes import Axes, View, render_text
from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.app.dashboard.figures import draw_grad, draw_loss, draw_lr, draw_unique, metric_drawer


class FeedPlot(PlotextPlot):
    """A plot that redraws only when its feed key's version moved, and at most once per ``MIN_REDRAW_S``:
    a redraw costs CPU the training thread would otherwise have."""

    KEY = ""
    MIN_REDRAW_S = 1.0
    CPU_SHARE = 0.01
    """A plot redraws at most this share of the time: its measured render cost sets the interval."""

    def __init__(self, view: View | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view = view if view is not None else View()
        self._drawn: tuple[int, int] = (-1, -1)
        self._drawn_at = -math.inf
        self._render_s = 0.0
        self._feed: Feed | None = None
        self.axes: Axes | None = None
        self.empty = ""

    def render(self) -> Any:
        t = time.perf_counter()
        if self.empty or self.axes is None:
            return Text(self.empty or "no data yet", style="dim")
        w, h = self.size.width, self.size.height
        legend = self.axes.legend_text(w)
        rows = legend.plain.count("\n") + 1 if legend.plain else 0
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if not self.axes.finish(plt, w, max(3, h - rows)):
            return Text("no data yet", style="dim")
        plt.plotsize(w, max(3, h - rows))
        plt._set_size(w, max(3, h - rows))
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        out = Text.from_ansi(plt.build())
        if rows:
            out = Text("\n").join([legend, out])
        self._render_s = 0.8 * self._render_s + 0.2 * (time.perf_counter() - t)
        return out

    def update_from(self, feed: Feed, force: bool = False) -> bool:
        v = (feed.versions[self.KEY], self.view.version)
        if v == self._drawn and not force and feed is self._feed:
            return False
        now = time.monotonic()
        interval = max(self.MIN_REDRAW_S, self._render_s / self.CPU_SHARE)
        if not force and feed is self._feed and v[1] == self._drawn[1] and now - self._drawn_at < interval:
            return False  # drawn on a later tick
        self._drawn, self._drawn_at, self._feed = v, now, feed
        self.axes = Axes(log_y=self.view.log_y)
        self.empty = self.draw(feed, self.axes, self.view) or ""
        self.refresh()
        return True

    def draw(self, feed: Feed, ax: Axes, view: View) -> str | None:  # pragma: no cover - every panel has its own
        """Describe the feed's series on ``ax``; return a sentence instead when there is nothing to draw."""
        raise TypeError(f"{type(self).__name__} does not define draw()")

    def build_text(self, width: int = 80, height: int = 20) -> str:
        """The plot as plain text at ``width`` x ``height`` (tests)."""
        if self.empty or self.axes is None:
            return self.empty
        return render_text(self.axes, self.plt, width, height)


class LossPlot(FeedPlot):
    KEY = "loss"
    draw = staticmethod(draw_loss)


class UniquePlot(FeedPlot):
    """Unique tokens against the detector's thresholds (see :func:`~.figures.draw_unique`)."""

    KEY = "unique"
    draw = staticmethod(draw_unique)


class LRPlot(FeedPlot):
    KEY = "lr"
    draw = staticmethod(draw_lr)


class GradPlot(FeedPlot):
    KEY = "grad"
    draw = staticmethod(draw_grad)


class MetricPlot(FeedPlot):
    """One user metric over steps."""

    KEY = "metrics"

    def __init__(self, metric: str, view: View | None = None, **kwargs: Any) -> None:
        super().__init__(view, **kwargs)
        self.metric = metric
        self.draw = metric_drawer(metric)  # type: ignore[method-assign]
