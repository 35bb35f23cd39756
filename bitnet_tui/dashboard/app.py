"""The dashboard: one Textual app over one source of events (live, replay or watch; :mod:`.sources`).

:func:`make_app` builds it for the CLI, the tests and the benches alike. The app drains its source on a
timer (2 Hz), so training never waits for the screen, and draws every panel from ``source.feed``. Every
control is a command to the run (:mod:`bitnet_model.control.commands`); the panels show the run's
confirmed ``intervention``, never a guess.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Tab, Tabs
from textual.worker import Worker, WorkerState

from bitnet_model.control import commands as C
from bitnet_model.log.events import Event
from bitnet_model.log.text import printable
from bitnet_tui.dashboard.dialogs import ConfirmDialog, LRDialog, RewindDialog, StepDialog
from bitnet_tui.dashboard.panels import HeaderBar, SamplesPanel, TernaryTable, Timeline
from bitnet_tui.dashboard.plots import LossPlot, LRPlot, UniquePlot, WeightsPlot
from bitnet_tui.dashboard.sources import LiveSource, ReplaySource, Source, WatchSource

TICK_S = 0.5
"""How often the UI drains events and redraws (2 Hz)."""

PANELS = (
    # (key, border title, tab label when narrow)
    ("loss", "Loss", "Loss"),
    ("unique", "Unique tokens", "Unique"),
    ("lr", "LR & weight decay", "LR"),
    ("weights", "Ternary weights", "Weights"),
    ("timeline", "Alerts & interventions", "Alerts"),
    ("samples", "Samples", "Samples"),
)

SENDS: dict[str, type[C.Command]] = {"undo_lr": C.UndoLR, "checkpoint": C.CheckpointNow, "eval_now": C.EvalNow}
"""Dashboard actions that are one command each (the command's title names them in the palette)."""
PALETTE = (
    # (action, args, title, help)
    ("set_lr", (), C.SetLR.title, "Type a new LR: it holds from now on, never exceeded later"),
    ("scale_lr", (0.5,), "Halve learning rate", "LR × 0.5"),
    ("scale_lr", (2.0,), "Double learning rate", "LR × 2"),
    ("undo_lr", (), C.UndoLR.title, "Restore the LR rule before the last change"),
    ("toggle_pause", (), "Pause / resume", "Pause or resume training (replay: playback)"),
    ("checkpoint", (), C.CheckpointNow.title, "Save a checkpoint at the next step (kept)"),
    ("eval_now", (), C.EvalNow.title, "Run an eval at the next step"),
    ("rewind", (), "Rewind: fork from a checkpoint with a new LR",
     "Stop this run and continue it from one of its checkpoints, in a new linked session"),
    ("speed", ("1",), "Replay speed 1×", "Play back at logged speed"),
    ("speed", ("2",), "Replay speed 10×", "Play back 10× faster"),
    ("speed", ("3",), "Replay speed 100×", "Play back 100× faster"),
    ("speed", ("0",), "Replay speed max", "Play back as fast as possible"),
    ("to_start", (), "Jump to start", "Replay from the first event"),
    ("to_end", (), "Jump to end", "Show the whole log"),
    ("goto_step", (), "Go to step", "Seek the replay to a step"),
    ("next_mark", (), "Next alert or intervention", "Seek to the next one"),
    ("prev_mark", (), "Previous alert or intervention", "Seek to the previous one"),
    ("quit_run", (), "Quit", "Live: stop the run and quit (attached: detach)"),
)
SPEEDS: dict[str, float] = {"1": 1.0, "2": 10.0, "3": 100.0, "0": float("inf")}


class Dashboard(App[None]):
    """Panels over one run's event stream, with the controls that steer it (live) or move through it (replay)."""

    CSS_PATH = "dashboard.tcss"
    TITLE = "bitnet-tui"
    AUTO_FOCUS = None
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]

    BINDINGS = [
        Binding("l", "set_lr", "Set LR"),
        Binding("left_square_bracket", "scale_lr(0.5)", "LR×½", key_display="["),
        Binding("right_square_bracket", "scale_lr(2.0)", "LR×2", key_display="]"),
        Binding("u", "undo_lr", "Undo LR"),
        Binding("p,space", "toggle_pause", "Pause", key_display="p"),
        Binding("c", "checkpoint", "Ckpt"),
        Binding("e", "eval_now", "Eval"),
        Binding("r", "rewind", "Rewind"),
        Binding("1", "speed('1')", "1×"),
        Binding("2", "speed('2')", "10×"),
        Binding("3", "speed('3')", "100×"),
        Binding("0", "speed('0')", "max"),
        Binding("home", "to_start", "Start"),
        Binding("end", "to_end", "End"),
        Binding("g", "goto_step", "Go to"),
        Binding("n", "next_mark", "Next"),
        Binding("N", "prev_mark", "Prev", show=False),
        Binding("v", "next_panel", "Panel"),
        Binding("q", "quit_run", "Quit"),
    ]

    def __init__(self, source: Source, *, warnings: Sequence[str] = ()) -> None:
        super().__init__()
        self.source = source
        self.warnings = list(warnings)
        self._stopping = False
        self._hung_up = False
        self._rewinding: tuple[int, float] | None = None
        self._worker_error = ""
        self._last_tick = time.monotonic()
        self._feed_id = 0
        self._current_panel = PANELS[0][0]

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
        yield Tabs(*(Tab(short, id=f"tab-{key}") for key, _, short in PANELS), id="panel-tabs")
        with Grid(id="panels"):
            for key, title, _ in PANELS:
                panel = Vertical(id=f"p-{key}", classes="panel")
                panel.border_title = title
                if key == self._current_panel:
                    panel.add_class("-current")
                with panel:
                    if key == "loss":
                        yield LossPlot(id="loss")
                    elif key == "unique":
                        yield UniquePlot(id="unique")
                    elif key == "lr":
                        yield LRPlot(id="lr")
                    elif key == "weights":
                        yield TernaryTable(id="ternary")
                        yield WeightsPlot(id="weights")
                    elif key == "timeline":
                        yield Timeline(id="timeline")
                    else:
                        yield SamplesPanel(id="samples")
        yield Footer()

    def on_mount(self) -> None:
        for w in self.warnings:
            self.notify(printable(w, 300), severity="warning", timeout=8)
        self._start_work()
        self._tick()
        self.set_interval(TICK_S, self._tick)

    def _start_work(self) -> None:
        if self.source.work is not None:
            self.run_worker(self.source.work, name=self.mode, group="source", thread=True, exclusive=True,
                            exit_on_error=False)

    def hang_up(self, reason: str) -> None:
        """The terminal is gone (SIGHUP): the run is stopping cleanly; leave once it has ended."""
        self._stopping = self._hung_up = True

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        key = (event.tab.id or "").removeprefix("tab-")
        if not key or key == self._current_panel:
            return
        self.query_one(f"#p-{self._current_panel}").remove_class("-current")
        self.query_one(f"#p-{key}").add_class("-current")
        self._current_panel = key

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
        try:
            header = self.query_one(HeaderBar)
        except NoMatches:  # a tick that lands while the screen is being torn down
            return
        header.update_from(feed, self._notice(), force=force)
        for cls in (LossPlot, UniquePlot, LRPlot, WeightsPlot, TernaryTable, Timeline, SamplesPanel):
            self.query_one(cls).update_from(feed, force=force)

    def _notice(self) -> Text:
        t = Text()
        if self._worker_error:
            t.append(self._worker_error, style="bold red")
        elif self._stopping:
            t.append("stopping: waiting for the run to end…", style="bold")
        elif self._rewinding is not None:
            step, lr = self._rewinding
            t.append(f"rewinding to step {step} at lr {lr:.3g}…", style="bold")
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

    # -- controls --------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("next_panel",):
            return not self.screen.has_class("-wide") or not self.screen.has_class("-tall")
        if action in ("quit_run", "quit", "command_palette", "focus_next", "focus_previous"):
            return True
        if action == "rewind" and self._rewinding is not None:
            return None
        return self.source.can(action)

    def _send(self, cmd: C.Command) -> None:
        if self.source.can("steer") is not True:
            self.notify(self.source.why_not("steer") or "this view cannot steer a run", severity="warning")
            return
        self.source.send(cmd)

    def action_set_lr(self) -> None:
        def done(value: float | None) -> None:
            if value is not None:
                self._send(C.SetLR(value=value, source="dashboard"))

        self.push_screen(LRDialog(self.feed), done)

    def action_scale_lr(self, factor: float) -> None:
        self._send(C.ScaleLR(factor=float(factor), source="dashboard"))

    def action_undo_lr(self) -> None:
        self._send(SENDS["undo_lr"](source="dashboard"))

    def action_checkpoint(self) -> None:
        self._send(SENDS["checkpoint"](source="dashboard"))

    def action_eval_now(self) -> None:
        self._send(SENDS["eval_now"](source="dashboard"))

    def action_toggle_pause(self) -> None:
        if isinstance(self.source, ReplaySource):
            p = self.source.player
            p.playing = not p.playing
            p.clock = None if p.at_end else p.clock
            self.refresh_panels()
            return
        self._send(C.Resume(source="dashboard") if self.feed.paused else C.Pause(source="dashboard"))

    # -- rewind ----------------------------------------------------------------
    def action_rewind(self) -> None:
        why = self.source.why_not("rewind")
        if why or not isinstance(self.source, LiveSource):
            self.notify(why or "rewind forks a live run", severity="warning")
            return
        steps = self.source.checkpoint_steps()
        if not steps:
            hint = "press c to save one, then rewind" if self.source.running else "this run saved none"
            self.notify(f"no checkpoints of this run yet: {hint}", severity="warning", timeout=6)
            return

        def done(choice: tuple[int, float] | None) -> None:
            if choice is None or self._rewinding is not None:
                return
            self._rewinding = choice
            if self.feed.ended is None and not self._worker_error:
                self.source.send(C.Stop(reason="rewound", source="dashboard"))
            self.refresh_panels()

        self.push_screen(RewindDialog(steps, self.feed.lr), done)

    def _fork(self) -> None:
        """The current run has ended: build the fork off the event loop."""
        step, lr = self._rewinding  # type: ignore[misc]
        run = self.handle
        self.run_worker(lambda: run.fork(step, lr), name="rewind", group="rewind", thread=True, exit_on_error=False)
        self._rewinding = (step, lr)

    def _rewound(self, worker: Worker) -> None:
        if worker.state == WorkerState.SUCCESS:
            assert isinstance(self.source, LiveSource)
            self.source.replace(worker.result)
            self._worker_error = ""
            self._rewinding = None
            self._start_work()
            self.notify(printable(f"rewound: training {worker.result.run_name}", 300), timeout=6)
        elif worker.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            err = worker.error
            self._rewinding = None
            self.notify(printable(f"rewind failed: {type(err).__name__}: {err}", 300), severity="error", timeout=10)
        self.refresh_panels(force=True)

    # -- replay ----------------------------------------------------------------
    def _player(self) -> Any:
        return self.source.player if isinstance(self.source, ReplaySource) else None

    def action_speed(self, key: str) -> None:
        if self._player() is not None:
            self._player().speed = SPEEDS.get(str(key), 1.0)
            self.refresh_panels()

    def _move(self, how: str, *args: Any) -> bool:
        p = self._player()
        if p is None:
            return False
        ok = getattr(p, how)(*args)
        self.source.tick(0.0)
        self.refresh_panels(force=True)
        return ok is not False

    def action_to_start(self) -> None:
        self._move("to_start")

    def action_to_end(self) -> None:
        self._move("to_end")

    def action_next_mark(self) -> None:
        p = self._player()
        if p is not None and not self._move("next_mark", p.marks()):
            self.notify("no later alert or intervention")

    def action_prev_mark(self) -> None:
        p = self._player()
        if p is not None and not self._move("prev_mark", p.marks()):
            self.notify("no earlier alert or intervention")

    def action_goto_step(self) -> None:
        p = self._player()
        if p is None:
            return
        last = p.steps[-1] if p.steps else 0
        self.push_screen(StepDialog(last), lambda step: step is not None and self._move("seek_step", step))

    def action_next_panel(self) -> None:
        self.query_one(Tabs).action_next_tab()

    # -- leaving ---------------------------------------------------------------
    def action_quit_run(self) -> None:
        if self._rewinding is not None:
            self.notify("rewinding: quit when the forked run has started", severity="warning")
            return
        src = self.source
        if not isinstance(src, LiveSource) or not src.running or self._worker_error:
            self.exit()
            return
        if src.detachable:
            src.run.detach()
            self.exit(message="detached; the run goes on")
            return
        if self._stopping:
            self.notify("stopping: waiting for the run to end")
            return

        def done(yes: bool | None) -> None:
            if yes:
                self._stopping = True
                src.send(C.Stop(reason="stopped", source="dashboard"))
                self.refresh_panels()

        self.push_screen(ConfirmDialog("Training is running. Stop it and quit?"), done)

    async def action_quit(self) -> None:
        self.action_quit_run()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for action, args, title, help_text in PALETTE:
            ok = self.check_action(action, args)
            if ok is False:
                continue
            if action == "quit_run" and isinstance(self.source, LiveSource) and self.source.detachable:
                title, help_text = "Detach (the run goes on)", "Close the dashboard; the run keeps training"
            method = getattr(self, f"action_{action}")
            if ok is None:
                reason = self.source.why_not(action) or "unavailable now"
                yield SystemCommand(title, f"unavailable: {reason}",
                                    lambda r=reason: self.notify(r, severity="warning"))
            else:
                yield SystemCommand(title, help_text, lambda m=method, a=args: m(*a))

    def on_unmount(self) -> None:
        src = self.source
        if isinstance(src, LiveSource) and src.running:
            if src.detachable:
                src.run.detach()
            else:
                src.send(C.Stop(reason="interrupted", source="dashboard"))
        if isinstance(src, WatchSource):
            src.cancelled = True


def make_app(mode: str = "live", *, run: Any = None, session_path: str | Path | None = None,
             events: Sequence[Event] | None = None, speed: float = 1.0, start_at: int | str | None = None,
             stale_after: float | None = None, no_rewind: str = "") -> Dashboard:
    """Build the dashboard for the CLI, the tests and the benches alike.

    live: ``run`` (a RunHandle, not started: the app runs it in a thread worker). replay: ``events`` (header
    first) or ``session_path``; ``speed`` relative to the logged times (``math.inf``: as fast as possible);
    ``start_at`` "end" or a step shows that point paused. watch: ``session_path`` of a log that may still grow.
    Raises :class:`~bitnet_model.log.errors.SessionError` for a log that cannot be read.
    """
    if mode == "live":
        if run is None:
            raise ValueError("live mode needs a run")
        return Dashboard(LiveSource(run, no_rewind=no_rewind))
    if mode == "replay":
        warnings: list[str] = []
        if events is None:
            if session_path is None:
                raise ValueError("replay needs events or a session_path")
            from bitnet_model.log.reader import read_session

            data = read_session(session_path)
            events, warnings = data.stream(), list(data.warnings)
        return Dashboard(ReplaySource(events, speed=speed, start_at=start_at), warnings=warnings)
    if mode == "watch":
        if session_path is None:
            raise ValueError("watch needs a session_path")
        _check_watchable(Path(session_path))
        kw = {"stale_after": stale_after} if stale_after is not None else {}
        return Dashboard(WatchSource(session_path, **kw))
    raise ValueError(f"unknown mode {mode!r}")


def _check_watchable(path: Path) -> None:
    """Refuse, up front, a path that is not (the start of) a session log. An empty file is fine: its run is starting."""
    from bitnet_model.log.reader import open_regular, parse_header

    with open_regular(path) as f:
        first = f.readline(1 << 20)
    if first.endswith(b"\n") and first.strip():
        parse_header(first[:-1], printable(path, 300))
