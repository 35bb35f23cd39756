"""The dashboard: one Textual app over one source of events (live, replay or watch; :mod:`.sources`).

:func:`make_app` builds it for the CLI, the tests and the benches alike. The app drains its source on a
timer (2 Hz), so training never waits for the screen, and draws every panel from ``source.feed``. Every
control is a command to the run (:mod:`bitnet_tui.session.control.commands`); the panels show the run's
confirmed ``intervention``, never a guess.

Panels are tabs (``v`` moves on); a terminal of at least 120x36 also gets an "All" tab, the first, with the
six main panels in a grid; from 160x45 the grid has nine (Grad, Metrics and Config too).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Grid, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Tab, Tabs
from textual.worker import Worker, WorkerState

from bitnet_tui.app.dashboard.axes import View
from bitnet_tui.app.dashboard.controls import ReplayControls, RunControls, ViewControls
from bitnet_tui.app.dashboard.diseases import DiseasesPanel
from bitnet_tui.app.dashboard.keys import BINDINGS, PALETTE, VIEW_ACTIONS
from bitnet_tui.app.dashboard.metrics import MetricsPanel
from bitnet_tui.app.dashboard.panels import ConfigPanel, HeaderBar, SamplesPanel, Timeline
from bitnet_tui.app.dashboard.plots import GradPlot, LossPlot, LRPlot, UniquePlot
from bitnet_tui.app.dashboard.sources import LiveSource, ReplaySource, Source, WatchSource, replay_log
from bitnet_tui.app.dashboard.system import SystemPanel
from bitnet_tui.app.dashboard.weights import WeightsPanel, focus_panel
from bitnet_tui.session.log.events import Event
from bitnet_tui.session.text import fmt_num, printable

TICK_S = 0.5
"""How often the UI drains events and redraws (2 Hz)."""
WIDE = (120, 36)
"""The smallest terminal (columns, rows) that gets the "All" tab."""
WIDER = (160, 45)
"""The smallest terminal whose "All" grid also has the Grad, Metrics and Config panels (3x3)."""

PANELS = (
    # (key, border title, tab label, in the "All" grid: "main" from WIDE, "wider" from WIDER, "" never)
    ("loss", "Loss", "Loss", "main"),
    ("unique", "Unique tokens", "Unique", "main"),
    ("lr", "LR & weight decay", "LR", "main"),
    ("weights", "Ternary weights", "Weights", "main"),
    ("timeline", "Alerts & interventions", "Alerts", "main"),
    ("samples", "Samples", "Samples", "main"),
    ("grad", "Grad norm", "Grad", "wider"),
    ("metrics", "Your metrics", "Metrics", "wider"),
    ("config", "Configuration", "Config", "wider"),
    ("diseases", "Diseases (measured)", "Diseases", ""),
    ("system", "System (this run's process)", "System", ""),
)
HINTS = {"loss": "s smooth · y log", "unique": "y log", "lr": "y log", "grad": "s smooth · y log",
         "weights": "w map · ↑↓ PgUp/PgDn scroll", "timeline": "n/N", "metrics": "y log"}


class PanelGrid(Grid):
    """The panels; tells the app when its size changes (the "All" tab comes and goes with the terminal)."""

    def on_resize(self) -> None:
        self.app.call_later(self.app.fit_tabs)  # type: ignore[attr-defined]


class Dashboard(RunControls, ReplayControls, ViewControls, App[None]):
    """Panels over one run's event stream, with the controls that steer it (live) or move through it (replay)."""

    CSS_PATH = "dashboard.tcss"
    TITLE = "bitnet-tui"
    AUTO_FOCUS = None
    BINDINGS = BINDINGS

    def __init__(self, source: Source, *, warnings: Sequence[str] = ()) -> None:
        super().__init__()
        self.source = source
        self.warnings = list(warnings)
        self.view = View()
        self._stopping = False
        self._hung_up = False
        self._rewinding: tuple[int, float] | None = None
        self._worker_error = ""
        self._last_tick = time.monotonic()
        self._feed_id = 0
        self._shown_paused = False
        self.current_panel = "loss"

    # -- state -----------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.source.mode

    @property
    def feed(self) -> Any:
        return self.source.feed

    @property
    def handle(self) -> Any:
        """The live run (a RunHandle), or None for replay and watch."""
        return getattr(self.source, "run", None)

    # -- layout ----------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield HeaderBar(self.mode, id="header")
        tabs = [Tab("All", id="tab-all")] + [Tab(short, id=f"tab-{key}") for key, _, short, _ in PANELS]
        yield Tabs(*tabs, id="panel-tabs", active="tab-loss")
        v = self.view
        with PanelGrid(id="panels"):
            for key, title, _, grid in PANELS:
                panel = Vertical(id=f"p-{key}", classes="panel" + (f" -{grid}" if grid else ""))
                panel.border_title = title
                panel.border_subtitle = HINTS.get(key, "")
                if key == self.current_panel:
                    panel.add_class("-current")
                with panel:
                    if key == "loss":
                        yield LossPlot(v, id="loss")
                    elif key == "unique":
                        yield UniquePlot(v, id="unique")
                    elif key == "lr":
                        yield LRPlot(v, id="lr")
                    elif key == "grad":
                        yield GradPlot(v, id="grad")
                    elif key == "weights":
                        yield WeightsPanel(v, id="weights")
                    elif key == "timeline":
                        yield Timeline(id="timeline")
                    elif key == "metrics":
                        yield MetricsPanel(v, id="metrics")
                    elif key == "config":
                        yield ConfigPanel(id="config")
                    elif key == "diseases":
                        yield DiseasesPanel(id="diseases")
                    elif key == "system":
                        yield SystemPanel(id="system")
                    else:
                        yield SamplesPanel(id="samples")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        for w in self.warnings:
            self.notify(printable(w, 300), severity="warning", timeout=8)
        self.fit_tabs(first=True)
        self._start_work()
        self._tick()
        self.set_interval(TICK_S, self._tick)

    @property
    def wide(self) -> bool:
        return self.size.width >= WIDE[0] and self.size.height >= WIDE[1]

    @property
    def wider(self) -> bool:
        return self.size.width >= WIDER[0] and self.size.height >= WIDER[1]

    def fit_tabs(self, first: bool = False) -> None:
        """Offer the "All" tab where the terminal is large enough (and open on it there); nine panels in its grid
        where the terminal is larger still."""
        try:
            tabs = self.query_one(Tabs)
            self.query_one("#panels").set_class(self.wider, "-nine")
        except NoMatches:
            return
        hidden = tabs.query_one("#tab-all", Tab).has_class("-hidden")
        if self.wide and (hidden or first):
            tabs.show("tab-all")
            if first:
                tabs.active = "tab-all"
        elif not self.wide and not hidden:
            tabs.hide("tab-all")

    def _start_work(self) -> None:
        if self.source.work is not None:
            self.run_worker(self.source.work, name=self.mode, group="source", thread=True, exclusive=True,
                            exit_on_error=False)

    def hang_up(self, reason: str) -> None:
        """The terminal is gone (SIGHUP): the run is stopping cleanly; leave once it has ended."""
        self._stopping = self._hung_up = True

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        key = (event.tab.id or "").removeprefix("tab-")
        if not key:
            return
        self.query_one("#panels").set_class(key == "all", "-overview")
        for pkey, *_ in PANELS:
            self.query_one(f"#p-{pkey}").set_class(pkey == key, "-current")
        self.current_panel = key
        self.refresh_panels(force=True)
        focus_panel(self, key)

    def timeline(self) -> Timeline:
        return self.query_one(Timeline)

    def show_panel(self, key: str, keep_overview: bool = False) -> None:
        """Make ``key``'s tab the active one (in the "All" grid, stay there if ``keep_overview``)."""
        shown = ("main", "wider") if self.wider else ("main",)
        if keep_overview and self.current_panel == "all" and any(k == key and g in shown for k, _, _, g in PANELS):
            return
        self.query_one(Tabs).active = f"tab-{key}"

    # -- the feed --------------------------------------------------------------
    def _tick(self) -> None:
        now = time.monotonic()
        dt, self._last_tick = now - self._last_tick, now
        self.source.tick(dt)
        done = self.feed.ended is not None or bool(self._worker_error)
        if self._rewinding is not None and done and self.mode == "live":
            self._fork()
        self.refresh_panels()
        if self._stopping and done:
            if self._hung_up:
                self._exit_without_terminal()
            self.exit()

    def _exit_without_terminal(self) -> None:
        """After a hangup the run has ended (checkpoint and run_ended are on disk): restoring a terminal that is
        gone can block forever, so the process leaves here; there is nothing left to lose."""
        os._exit(0)

    def feed_events(self, events: Iterable[Event]) -> None:
        """Apply events directly (tests, embedding) and redraw."""
        self.feed.apply_all(events)
        self.refresh_panels()

    def refresh_panels(self, force: bool = False) -> None:
        feed = self.feed
        force = force or id(feed) != self._feed_id
        self._feed_id = id(feed)
        try:  # the dashboard's own screen: under a dialog the panels go on updating
            base = self.screen_stack[0]
            header = base.query_one(HeaderBar)
        except (NoMatches, IndexError):  # a tick that lands while the screen is being torn down
            return
        header.update_from(feed, self._notice(), force=force, alarm=self.source.alarm())
        for cls in (LossPlot, UniquePlot, LRPlot, GradPlot, WeightsPanel, Timeline, SamplesPanel, MetricsPanel,
                    ConfigPanel, DiseasesPanel, SystemPanel):
            base.query_one(cls).update_from(feed, force=force)
        if self.is_paused() != self._shown_paused:
            self._shown_paused = self.is_paused()
            self.refresh_bindings()

    def _notice(self) -> Text:
        t = Text()
        if self._worker_error:
            t.append(self._worker_error, style="bold red")
        elif self._stopping:
            t.append("stopping: waiting for the run to end…", style="bold")
        elif self._rewinding is not None:
            step, lr = self._rewinding
            t.append(f"rewinding to step {step} at lr {fmt_num(lr)}…", style="bold")
        else:
            text, style = self.source.notice()
            t.append(text, style=style)
        return t

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name == "rewind":
            self._rewound(event.worker)
        elif event.state == WorkerState.ERROR:
            err = event.worker.error
            self._worker_error = printable(f"{event.worker.name} failed: {type(err).__name__}: {err}", 300)
            self.notify(self._worker_error, severity="error", timeout=10)
            self.refresh_panels()

    # -- which keys work here ----------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """True where the action works in this mode and now; False hides it (footer) and ignores the key.
        The palette still lists what is unavailable, with the reason (:meth:`get_system_commands`)."""
        if action in VIEW_ACTIONS or action in ("quit_run", "interrupt", "quit", "command_palette", "focus_next",
                                                "focus_previous"):
            return True
        if action == "rewind" and self._rewinding is not None:
            return False
        if action == "toggle_pause" and parameters and (parameters[0] == "resume") != self.is_paused():
            return False  # the footer shows Pause or Resume, whichever p does now
        return self.source.can(action) is True

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for cmd in super().get_system_commands(screen):
            if cmd.title != "Keys":  # ours (the palette's entry below) lists this mode's keys
                yield cmd
        for action, args, title, help_text in PALETTE:
            ok = True if action in VIEW_ACTIONS or action in ("quit_run", "interrupt") else self.source.can(action)
            if action == "rewind" and self._rewinding is not None:
                ok = None
            if ok is False:
                continue
            if action == "quit_run" and self.source.detachable:
                title, help_text = "Detach (the run goes on)", "q: close the dashboard; the run keeps training"
            method = getattr(self, f"action_{action}")
            if ok is None:
                reason = self.source.why_not(action) or "unavailable now"
                yield SystemCommand(title, f"unavailable: {reason}",
                                    lambda r=reason: self.notify(r, severity="warning"))
            else:
                yield SystemCommand(title, help_text, lambda m=method, a=args: m(*a))
        for key, title, _, _ in PANELS:
            yield SystemCommand(f"Show panel: {title}", "v moves to the next panel",
                                lambda k=key: self.show_panel(k))

    def on_unmount(self) -> None:
        self.source.leave()


def make_app(mode: str = "live", *, run: Any = None, session_path: str | Path | None = None,
             events: Sequence[Event] | None = None, speed: float = 1.0, start_at: int | str | None = None,
             stale_after: float | None = None, no_rewind: str = "",
             session_paths: Sequence[str | Path] = ()) -> App[None]:
    """Build the dashboard for the CLI, the tests and the benches alike.

    live: ``run`` (a RunHandle, not started: the app runs it in a thread worker). replay: ``events`` (header
    first) or ``session_path``; ``speed`` relative to the logged times (``math.inf``: as fast as possible);
    ``start_at`` "end" or a step shows that point paused. watch: ``session_path`` of a log that may still grow.
    compare: ``session_paths``, several runs overlaid (:class:`~.overlay.OverlayApp`).
    Raises :class:`~bitnet_tui.session.log.errors.SessionError` for a log that cannot be read.
    """
    if mode == "live":
        if run is None:
            raise ValueError("live mode needs a run")
        return Dashboard(LiveSource(run, no_rewind=no_rewind))
    if mode == "replay":
        if events is None:
            if session_path is None:
                raise ValueError("replay needs events or a session_path")
            source, warnings = replay_log(session_path, speed=speed, start_at=start_at)
            return Dashboard(source, warnings=warnings)
        return Dashboard(ReplaySource(events, speed=speed, start_at=start_at))
    if mode == "watch":
        if session_path is None:
            raise ValueError("watch needs a session_path")
        _check_watchable(Path(session_path))
        kw = {"stale_after": stale_after} if stale_after is not None else {}
        return Dashboard(WatchSource(session_path, **kw))
    if mode == "compare":
        from bitnet_tui.app.dashboard.overlay import OverlayApp
        from bitnet_tui.app.dashboard.runs import load_runs

        runs, warnings = load_runs(session_paths)
        return OverlayApp(runs, warnings=warnings)
    raise ValueError(f"unknown mode {mode!r}")


def _check_watchable(path: Path) -> None:
    """Refuse, up front, a path that is not (the start of) a session log. An empty file is fine: its run is starting."""
    from bitnet_tui.session.log.reader import open_regular, parse_header

    with open_regular(path) as f:
        first = f.readline(1 << 20)
    if first.endswith(b"\n") and first.strip():
        parse_header(first[:-1], printable(path, 300))
