"""Runs side by side (``bitnet-tui compare --plot A B C``): loss, unique tokens, flip rate and LR of every run
overlaid, one colour a run, aligned by step, forks drawn from their parent. What a sweep is for.

Tabs as in the dashboard (``v``); from 120x36 the four panels form a grid. ``y`` log scale, ``s`` loss
smoothing, ``q`` quit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static, Tab, Tabs

from bitnet_tui.app.dashboard.axes import RICH_COLORS, View
from bitnet_tui.app.dashboard.plots import FeedPlot
from bitnet_tui.app.dashboard.runs import KINDS, Run, lineage, overlay
from bitnet_tui.session.text import fmt_num, printable

WIDE = (120, 36)


class OverlayPlot(FeedPlot):
    """One overlay panel; the runs are finished logs, so it redraws only when the view changes."""

    def __init__(self, kind: str, runs: Sequence[Run], view: View, **kwargs: Any) -> None:
        super().__init__(view, **kwargs)
        self.kind = kind
        self.runs = list(runs)

    def update_runs(self, force: bool = False) -> bool:
        if self._drawn[1] == self.view.version and not force:
            return False
        self._drawn = (0, self.view.version)
        self.axes = overlay(self.runs, self.kind, self.view)
        self.empty = "" if self.axes.lines else "nothing logged"
        self.refresh()
        return True


def runs_legend(runs: Sequence[Run]) -> Text:
    """One line per run: its colour, its name, where it was forked from, its last state."""
    t = Text(no_wrap=True, overflow="ellipsis")
    for i, r in enumerate(runs):
        if i:
            t.append("\n")
        t.append("━━ ", style=RICH_COLORS.get(r.color, r.color))
        t.append(printable(r.label, 80), style="bold")
        lin = lineage(r, runs)
        if lin:
            t.append(f"  {lin}", style="dim")
        f = r.feed
        t.append(f"  step {f.step}")
        if f.state:
            t.append(f"  {printable(f.state, 30)}")
        if f.evals:
            e = f.evals[-1]
            t.append(f"  unique {e.unique_tokens}")
            if e.val_loss is not None:
                t.append(f"  held-out {fmt_num(float(f'{e.val_loss:.4g}'))}")
    return t


class OverlayApp(App[None]):
    """Several session logs, overlaid."""

    CSS_PATH = "dashboard.tcss"
    TITLE = "bitnet-tui compare"
    AUTO_FOCUS = None
    BINDINGS = [
        Binding("v", "next_panel", "Panel"),
        Binding("y", "toggle_log", "Log"),
        Binding("s", "smoothing", "EMA"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, runs: Sequence[Run], *, warnings: Sequence[str] = ()) -> None:
        super().__init__()
        self.runs = list(runs)
        self.warnings = list(warnings)
        self.view = View()
        self.mode = "compare"

    def compose(self) -> ComposeResult:
        yield Static(runs_legend(self.runs), id="runs-legend")
        tabs = [Tab("All", id="tab-all")] + [Tab(title.split(" (")[0], id=f"tab-{k}") for k, title in KINDS]
        yield Tabs(*tabs, id="panel-tabs", active="tab-loss")
        with Grid(id="panels", classes="-four"):
            for k, title in KINDS:
                panel = Vertical(id=f"p-{k}", classes="panel -main" + (" -current" if k == "loss" else ""))
                panel.border_title = title
                with panel:
                    yield OverlayPlot(k, self.runs, self.view, id=f"overlay-{k}")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        for w in self.warnings:
            self.notify(printable(w, 300), severity="warning", timeout=8)
        if not self.runs:
            self.notify("none of the sessions could be read", severity="error")
        tabs = self.query_one(Tabs)
        if self.size.width >= WIDE[0] and self.size.height >= WIDE[1]:
            tabs.active = "tab-all"
        else:
            tabs.hide("tab-all")
        self.refresh_plots(force=True)

    def refresh_plots(self, force: bool = False) -> None:
        for plot in self.query(OverlayPlot):
            plot.update_runs(force=force)

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        key = (event.tab.id or "").removeprefix("tab-")
        self.query_one("#panels").set_class(key == "all", "-overview")
        for k, _ in KINDS:
            self.query_one(f"#p-{k}").set_class(k == key, "-current")

    def action_next_panel(self) -> None:
        self.query_one(Tabs).action_next_tab()

    def action_toggle_log(self) -> None:
        self.view.log_y = not self.view.log_y
        self.view.changed()
        self.refresh_plots()

    def action_smoothing(self) -> None:
        w = self.view.next_ema()
        self.view.changed()
        self.refresh_plots()
        self.notify(f"loss smoothing: EMA {fmt_num(w)}" if w else "loss smoothing off", timeout=2)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Next panel", "v", self.action_next_panel)
        yield SystemCommand("Log scale on every plot", "y", self.action_toggle_log)
        yield SystemCommand("Loss smoothing (EMA)", "s: off, 0.9, 0.99, 0.999", self.action_smoothing)
