"""The user's own metrics (``Monitor.step(loss, **metrics)``, ``StepDone.extra`` and ``EvalDone.extra``): one
plot each, stacked and scrollable, added as new names appear."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from bitnet_tui.app.dashboard.axes import View
from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.app.dashboard.plots import MetricPlot

EMPTY = "no metrics of your own in this run: pass them as mon.step(loss, name=value) (or in an eval's extra)"


class MetricsPanel(VerticalScroll):
    def __init__(self, view: View | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view = view if view is not None else View()
        self._feed_id = 0
        self._names: list[str] = []
        self._empty = Static(Text(EMPTY, style="dim"), classes="metrics-empty")

    def compose(self) -> Any:
        yield self._empty

    def update_from(self, feed: Feed, force: bool = False) -> bool:
        if id(feed) != self._feed_id:
            self._feed_id = id(feed)
            for plot in self.query(MetricPlot):
                plot.remove()
            self._names = []
        new = [n for n in feed.metrics if n not in self._names]
        if new:
            self._names += new
            self.mount_all(MetricPlot(n, self.view, classes="metric") for n in new)
        self._empty.display = not self._names
        drew = False
        for plot in self.query(MetricPlot):
            drew = plot.update_from(feed, force=force) or drew
        return drew

    @property
    def names(self) -> list[str]:
        return list(self._names)
