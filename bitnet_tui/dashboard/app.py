"""The dashboard: one view of a run, fed live, from a finished log, or from a growing one.

:func:`make_app` builds it for the CLI, the tests and the benches alike.

- live: the trainer runs in a thread worker. Before it starts, an
  :class:`~bitnet_tui.feed.EventBuffer` subscribes to it; the training thread
  only appends to that deque. The UI drains it four times a second, so training
  never waits for the screen.
- replay: a :class:`~bitnet_tui.feed.Player` walks the logged events at 1x,
  10x, 100x or as fast as it can, relative to the logged times.
- watch: a thread worker polls a :class:`~bitnet_model.session.Follower` and
  appends to the same kind of buffer as live mode.

All three apply the same events to a :class:`~bitnet_tui.feed.Feed`, and the
panels draw from the feed alone.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Tab, Tabs
from textual.worker import Worker, WorkerState, get_current_worker

from bitnet_model.control import commands as C
from bitnet_model.log.events import Event
from bitnet_model.log.text import printable
from bitnet_tui.dashboard.dialogs import ConfirmDialog, LRDialog, RewindDialog, StepDialog
from bitnet_tui.dashboard.feed import SPEEDS, EventBuffer, Feed, Player, fmt_duration
from bitnet_tui.dashboard.panels import HeaderBar, SamplesPanel, TernaryTable, Timeline
from bitnet_tui.dashboard.plots import LossPlot, LRPlot, UniquePlot, WeightsPlot

Mode = Literal["live", "replay", "watch"]

TICK_S = 0.5
"""How often the UI drains events and redraws (4 Hz)."""
STALE_S = 30.0
"""In watch mode, a log silent for this long without run_ended is reported as possibly crashed."""
POLL_S = 0.5
"""How often watch mode reads the log for new lines."""

PANELS = (
    # (key, border title, tab label when narrow)
    ("loss", "Loss", "Loss"),
    ("unique", "Unique tokens", "Unique"),
    ("lr", "LR & weight decay", "LR"),
    ("weights", "Ternary weights", "Weights"),
    ("timeline", "Alerts & interventions", "Alerts"),
    ("samples", "Samples", "Samples"),
)

STEER_ACTIONS = frozenset({"set_lr", "scale_lr", "undo_lr", "checkpoint", "eval_now"})
REPLAY_ACTIONS = frozenset({"speed", "to_start", "to_end", "goto_step", "next_alert", "prev_alert"})
READ_ONLY = {
    "watch": "watch is read-only: attach to steer",
    "replay": "replay is read-only: this run is over",
}


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
        Binding("p,space", "toggle_pause", "Pause/Resume", key_display="p"),
        Binding("c", "checkpoint", "Checkpoint"),
        Binding("e", "eval_now", "Eval now"),
        Binding("r", "rewind", "Rewind"),
        Binding("1", "speed('1')", "1×"),
        Binding("2", "speed('2')", "10×"),
        Binding("3", "speed('3')", "100×"),
        Binding("0", "speed('0')", "max"),
        Binding("home", "to_start", "Start"),
        Binding("end", "to_end", "End"),
        Binding("g", "goto_step", "Go to step"),
        Binding("n", "next_alert", "Next alert"),
        Binding("N", "prev_alert", "Prev alert"),
        Binding("v", "next_panel", "Next panel"),
        Binding("q", "quit_run", "Quit"),
    ]

    def __init__(
        self,
        mode: Mode,
        *,
        trainer: Any = None,
        buffer: EventBuffer | None = None,
        player: Player | None = None,
        follower: Any = None,
        warnings: Sequence[str] = (),
        start_at: int | str | None = None,
        stale_after: float = STALE_S,
        writer: Any = None,
        session_path: str | Path | None = None,
        no_rewind: str = "",
    ) -> None:
        super().__init__()
        self.mode: Mode = mode
        self.trainer = trainer
        self.writer = writer
        """Live: the session writer of the current run. The app closes it when a rewind replaces the run;
        whoever runs the app closes the one that is current at the end."""
        self.session_path = Path(session_path) if session_path is not None else None
        self.no_rewind = no_rewind
        self._rewind: tuple[int, float] | None = None
        self._rewind_phase = ""
        """"" (none), "stopping" (waiting for the run to end) or "preparing" (building the fork)."""
        self.buffer = buffer
        self.player = player
        self.follower = follower
        self.warnings = list(warnings)
        self.start_at = start_at
        self.stale_after = stale_after
        self._own_feed = Feed()
        self._stopping = False
        self._worker_error = ""
        self._last_event_wall = time.monotonic()
        self._last_tick = time.monotonic()
        self._feed_id = 0
        self._current_panel = PANELS[0][0]

    # -- state -----------------------------------------------------------------

    @property
    def feed(self) -> Feed:
        return self.player.feed if self.player is not None else self._own_feed

    @property
    def training(self) -> bool:
        """Live, and the run has not ended."""
        return self.mode == "live" and self.feed.ended is None and not self._worker_error

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
        if self.mode == "live":
            self._train()
            if not self.detachable:
                self._catch_hangup()
        elif self.mode == "watch":
            self._follow()
        elif self.player is not None:
            if self.start_at == "end":
                self.player.to_end()
                self.player.playing = False
            elif isinstance(self.start_at, int):
                self.player.seek_step(self.start_at)
                self.player.playing = False
            else:
                self.player.to_start()
        self._tick()
        self.set_interval(TICK_S, self._tick)

    @property
    def detachable(self) -> bool:
        """Attached to a run in another process: quitting detaches and the run goes on."""
        return bool(getattr(self.trainer, "detachable", False))

    def _catch_hangup(self) -> None:
        """A lost terminal (SSH dropped) ends an in-process run cleanly: checkpoint, run_ended "hangup"."""
        if not hasattr(signal, "SIGHUP"):
            return
        import threading

        if threading.current_thread() is not threading.main_thread():
            return

        def on_hangup(signum, frame):  # noqa: ARG001
            self._stopping = True
            self._hung_up = True
            self.trainer.send(C.Stop(reason="hangup", source="signal"))

        try:
            signal.signal(signal.SIGHUP, on_hangup)
        except (ValueError, OSError):
            pass

    def _exit_without_terminal(self) -> None:
        """After a hangup the run has ended (checkpoint and run_ended are on disk): close the log and leave.

        Restoring a terminal that is gone can block forever, so the process exits here instead of
        through the normal shutdown; there is nothing left to lose.
        """
        import os

        if self.writer is not None:
            try:
                self.writer.close()
            except OSError:
                pass
        os._exit(0)

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
        if self.player is not None:
            self.player.tick(dt)
        elif self.buffer is not None:
            events = self.buffer.drain()
            if events:
                self._last_event_wall = now
                self._own_feed.apply_all(events)
        if self._rewind_phase == "stopping" and (self.feed.ended is not None or self._worker_error):
            self._start_fork()
        self.refresh_panels()
        if self._stopping and (self.feed.ended is not None or self._worker_error):
            if getattr(self, "_hung_up", False):
                self._exit_without_terminal()
            self.exit()

    def feed_events(self, events: Iterable[Event]) -> None:
        """Apply events directly (tests, embedding) and redraw."""
        self.feed.apply_all(events)
        self.refresh_panels()

    def refresh_panels(self, force: bool = False) -> None:
        """Bring every panel up to date with the feed; ``force`` redraws now (a user moved the replay)."""
        feed = self.feed
        force = force or id(feed) != self._feed_id
        self._feed_id = id(feed)
        try:
            header = self.query_one(HeaderBar)
        except NoMatches:  # a tick that lands while the screen is being torn down
            return
        header.update_from(feed, self._notice(), force=force)
        for widget in (
            self.query_one(LossPlot),
            self.query_one(UniquePlot),
            self.query_one(LRPlot),
            self.query_one(WeightsPlot),
            self.query_one(TernaryTable),
            self.query_one(Timeline),
            self.query_one(SamplesPanel),
        ):
            widget.update_from(feed, force=force)

    def _notice(self) -> Text:
        """The header's last words: mode-specific state that is not in the feed."""
        t = Text()
        feed = self.feed
        if self._worker_error:
            t.append(self._worker_error, style="bold red")
        elif self.mode == "live":
            if self._stopping:
                t.append("stopping: waiting for the run to end…", style="bold")
            elif self._rewind is not None:
                step, lr = self._rewind
                what = "stopping the run" if self._rewind_phase == "stopping" else "loading the checkpoint"
                t.append(f"rewinding to step {step} at lr {lr:.3g}: {what}…", style="bold")
        elif self.mode == "replay" and self.player is not None:
            p = self.player
            speed = "max" if math.isinf(p.speed) else f"{p.speed:g}×"
            if p.at_end:
                t.append("end of log" if feed.ended else "log ends without run_ended (crashed?)",
                         style="bold" if feed.ended else "bold yellow")
            else:
                t.append(f"▶ {speed}" if p.playing else f"⏸ paused ({speed})", style="bold")
            t.append(f"  {p.cursor}/{len(p.events)} events", style="dim")
        elif self.mode == "watch":
            t.append(READ_ONLY["watch"], style="dim")
            if feed.ended is None and feed.events:
                silent = time.monotonic() - self._last_event_wall
                if silent >= self.stale_after:
                    t.append(f"  no new events for {fmt_duration(silent)} (crashed?)", style="bold yellow")
        return t

    # -- workers ---------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="trainer", name="trainer")
    def _train(self) -> Any:
        return self.trainer.run()

    @work(thread=True, exclusive=True, exit_on_error=False, group="follow", name="follow")
    def _follow(self) -> None:
        worker = get_current_worker()
        follower, buffer = self.follower, self.buffer
        while not worker.is_cancelled:
            events = follower.poll()
            for e in events:
                buffer(e)
            if follower.ended:
                return
            if not events:
                time.sleep(POLL_S)

    @work(thread=True, exclusive=True, exit_on_error=False, group="rewind", name="rewind")
    def _prepare_fork(self, spec: str, lr: float, sessions: str, argv: list[str],
                      checkpoint_every: int, on_nonfinite: str) -> Any:
        from bitnet_model.run.build import prepare_run

        return prepare_run({"lr": lr}, sessions=sessions, fork=spec, argv=argv,
                           checkpoint_every=checkpoint_every, on_nonfinite=on_nonfinite)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name == "rewind":
            self._rewind_done(event.worker)
            return
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            self._worker_error = printable(f"{event.worker.name} failed: {type(err).__name__}: {err}", 300)
            self.notify(self._worker_error, severity="error", timeout=10)
            self.refresh_panels()

    # -- controls --------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in STEER_ACTIONS:
            if self.mode == "live":
                return True if self.training else None
            return None if self.mode == "watch" else False
        if action == "toggle_pause":
            if self.mode == "live":
                return True if self.training else None
            return self.mode == "replay" or None
        if action in REPLAY_ACTIONS:
            return self.mode == "replay"
        if action == "rewind":
            if self.mode == "replay":
                return False  # nothing to fork from a replay: hidden, like the steering keys
            return None if self.rewind_unavailable() else True
        if action == "next_panel":
            return not self.screen.has_class("-wide") or not self.screen.has_class("-tall")
        return True

    def _send(self, cmd: C.Command) -> None:
        if not self.training:
            self.notify(READ_ONLY.get(self.mode, "the run has ended"), severity="warning")
            return
        self.trainer.send(cmd)

    def action_set_lr(self) -> None:
        if not self.training:
            self._send(C.SetLR(source="dashboard"))  # explains why not
            return

        def done(value: float | None) -> None:
            if value is not None:
                self._send(C.SetLR(value=value, source="dashboard"))

        self.push_screen(LRDialog(self.feed.lr), done)

    def action_scale_lr(self, factor: float) -> None:
        self._send(C.ScaleLR(factor=float(factor), source="dashboard"))

    def action_undo_lr(self) -> None:
        self._send(C.UndoLR(source="dashboard"))

    def action_checkpoint(self) -> None:
        self._send(C.CheckpointNow(source="dashboard"))

    def action_eval_now(self) -> None:
        self._send(C.EvalNow(source="dashboard"))

    # -- rewind ----------------------------------------------------------------

    def rewind_unavailable(self) -> str:
        """Why rewind cannot be used now ("" when it can)."""
        if self.mode != "live":
            return "rewind forks the run this dashboard trains; " + READ_ONLY.get(self.mode, "")
        if self.detachable:
            return "attached to a run in another process: fork it with `bitnet-tui run --from SESSION@STEP`"
        if self.no_rewind:
            return self.no_rewind
        if self.session_path is None or self.writer is None:
            return "this run has no session log to fork from"
        if self._rewind_phase:
            return "a rewind is already under way"
        if self._stopping:
            return "the run is stopping"
        return ""

    def action_rewind(self) -> None:
        why = self.rewind_unavailable()
        if why:
            self.notify(why, severity="warning")
            return
        from bitnet_model.log.paths import checkpoint_dir
        from bitnet_model.train.checkpoint import list_checkpoints

        assert self.session_path is not None
        steps = [step for step, _ in list_checkpoints(checkpoint_dir(self.session_path))]
        if not steps:
            hint = "press c to save one, then rewind" if self.training else "this run saved none"
            self.notify(f"no checkpoints of this run yet: {hint}", severity="warning", timeout=6)
            return

        def done(choice: tuple[int, float] | None) -> None:
            if choice is None or self.rewind_unavailable():
                return
            self._rewind = choice
            if self.feed.ended is None and not self._worker_error:
                self._rewind_phase = "stopping"
                self.trainer.send(C.Stop(reason="rewound", source="dashboard"))
            else:
                self._start_fork()
            self.refresh_panels()

        self.push_screen(RewindDialog(steps, self.feed.lr), done)

    def _start_fork(self) -> None:
        """The current run has ended: close its log and build the fork off the event loop."""
        assert self._rewind is not None and self.session_path is not None
        step, lr = self._rewind
        self._rewind_phase = "preparing"
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception as e:  # the log of the ended run lost lines; the fork can still go on
                self.notify(printable(f"closing {self.session_path.name}: {e}", 300), severity="warning")
        spec = f"{self.session_path}@{step}"
        prog = list(getattr(self.trainer, "argv", ())[:1]) or ["bitnet-tui"]
        argv = [*prog, "run", "--from", f"{self.session_path.name.removesuffix('.jsonl')}@{step}", "--lr", repr(lr)]
        self._prepare_fork(spec, lr, str(self.session_path.parent), argv,
                           int(getattr(self.trainer, "checkpoint_every", 0) or 0),
                           str(getattr(self.trainer, "on_nonfinite", "pause")))

    def _rewind_done(self, worker: Worker) -> None:
        if worker.state == WorkerState.SUCCESS:
            prepared = worker.result
            buffer = EventBuffer()
            prepared.trainer.subscribe(buffer)  # before the run starts, so the header is not missed
            self.trainer, self.writer, self.session_path = prepared.trainer, prepared.writer, prepared.path
            self.buffer = buffer
            self._own_feed = Feed()
            self._worker_error = ""
            self._last_event_wall = time.monotonic()
            self._rewind, self._rewind_phase = None, ""
            self._train()
            self.notify(printable(f"rewound: training {prepared.path.name}", 300), timeout=6)
            self.refresh_panels()
        elif worker.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            err = worker.error
            why = f"{type(err).__name__}: {err}" if err is not None else "cancelled"
            self._rewind, self._rewind_phase = None, ""
            self.notify(printable(f"rewind failed: {why}", 300), severity="error", timeout=10)
            self.refresh_panels()

    def action_toggle_pause(self) -> None:
        if self.mode == "replay" and self.player is not None:
            self.player.playing = not self.player.playing
            self.player.clock = None if self.player.at_end else self.player.clock
            self.refresh_panels()
            return
        self._send(C.Resume(source="dashboard") if self.feed.paused else C.Pause(source="dashboard"))

    def action_speed(self, key: str) -> None:
        if self.player is not None:
            self.player.speed = SPEEDS.get(str(key), 1.0)
            self.refresh_panels()

    def _move(self, how: str, *args: Any) -> None:
        if self.player is None:
            return
        getattr(self.player, how)(*args)
        self.refresh_panels(force=True)

    def action_to_start(self) -> None:
        self._move("to_start")

    def action_to_end(self) -> None:
        self._move("to_end")

    def action_next_alert(self) -> None:
        if self.player is not None and not self.player.next_alert():
            self.notify("no later alert")
        self.refresh_panels(force=True)

    def action_prev_alert(self) -> None:
        if self.player is not None and not self.player.prev_alert():
            self.notify("no earlier alert")
        self.refresh_panels(force=True)

    def action_goto_step(self) -> None:
        if self.player is None:
            return
        last = self.player.steps[-1] if self.player.steps else 0

        def done(step: int | None) -> None:
            if step is not None:
                self._move("seek_step", step)

        self.push_screen(StepDialog(last), done)

    def action_next_panel(self) -> None:
        self.query_one(Tabs).action_next_tab()

    def action_quit_run(self) -> None:
        if self._rewind_phase:
            self.notify("rewinding: quit when the forked run has started", severity="warning")
            return
        if not self.training:
            self.exit()
            return
        if self.detachable:
            self.trainer.detach()
            self.exit(message="detached; the run goes on")
            return
        if self._stopping:
            self.notify("stopping: waiting for the run to end")
            return

        def done(yes: bool | None) -> None:
            if yes:
                self._stopping = True
                self.trainer.send(C.Stop(reason="stopped", source="dashboard"))
                self.refresh_panels()

        self.push_screen(ConfirmDialog("Training is running. Stop it and quit?"), done)

    async def action_quit(self) -> None:
        self.action_quit_run()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        commands = [
            ("Set learning rate", "Type a new LR for the running trainer", "set_lr", ()),
            ("Halve learning rate", "LR × 0.5", "scale_lr", (0.5,)),
            ("Double learning rate", "LR × 2", "scale_lr", (2.0,)),
            ("Undo LR change", "Restore the LR before the last change", "undo_lr", ()),
            ("Pause / resume", "Pause or resume training (replay: playback)", "toggle_pause", ()),
            ("Checkpoint now", "Save a checkpoint at the next step", "checkpoint", ()),
            ("Eval now", "Run an eval at the next step", "eval_now", ()),
            ("Rewind: fork from a checkpoint with a new LR",
             "Stop this run and continue it from one of its checkpoints, in a new linked session", "rewind", ()),
            ("Replay speed 1×", "Play back at logged speed", "speed", ("1",)),
            ("Replay speed 10×", "Play back 10× faster", "speed", ("2",)),
            ("Replay speed 100×", "Play back 100× faster", "speed", ("3",)),
            ("Replay speed max", "Play back as fast as possible", "speed", ("0",)),
            ("Jump to start", "Replay from the first event", "to_start", ()),
            ("Jump to end", "Show the whole log", "to_end", ()),
            ("Go to step", "Seek the replay to a step", "goto_step", ()),
            ("Next alert", "Seek to the next alert", "next_alert", ()),
            ("Previous alert", "Seek to the previous alert", "prev_alert", ()),
            ("Detach (the run goes on)" if self.detachable else "Stop run and quit",
             "Close the dashboard; the run keeps training" if self.detachable
             else "Send Stop, wait for the run to end, quit", "quit_run", ()),
        ]
        for title, help_text, action, args in commands:
            ok = self.check_action(action, args)
            if ok is False:
                continue
            method = getattr(self, f"action_{action}")
            if ok is None:
                reason = READ_ONLY.get(self.mode, "the run has ended")
                if action == "rewind":
                    reason = self.rewind_unavailable() or reason
                yield SystemCommand(
                    title, f"unavailable: {reason}", lambda r=reason: self.notify(r, severity="warning")
                )
            else:
                yield SystemCommand(title, help_text, lambda m=method, a=args: m(*a))

    def on_unmount(self) -> None:
        if self.mode == "live" and self.trainer is not None and self.feed.ended is None:
            if self.detachable:
                self.trainer.detach()
            else:
                self.trainer.send(C.Stop(reason="interrupted", source="dashboard"))


def make_app(
    mode: Mode = "live",
    *,
    trainer: Any = None,
    session_path: str | Path | None = None,
    events: Sequence[Event] | None = None,
    speed: float = 1.0,
    start_at: int | str | None = None,
    stale_after: float = STALE_S,
    writer: Any = None,
    no_rewind: str = "",
) -> Dashboard:
    """Build the dashboard for the CLI, the tests and the benches alike.

    live: ``trainer`` (not started; the app runs it in a thread worker).
    replay: ``events`` (header first) or ``session_path``; ``speed`` relative to the
    logged times (``math.inf``: as fast as possible); ``start_at`` "end" or a step
    shows that point paused. watch: ``session_path`` of a log that may still grow.
    live with ``session_path`` and its ``writer``: rewind can fork the run; the app closes the writers
    of the runs a rewind replaces, and the caller closes ``app.writer`` (the current one) at the end.
    ``no_rewind``: why rewind is off for this run ("" to allow it).
    Raises :class:`~bitnet_model.session.SessionError` for a log that cannot be read.
    """
    if mode == "live":
        if trainer is None:
            raise ValueError("live mode needs a trainer")
        buffer = EventBuffer()
        trainer.subscribe(buffer)  # before the run starts, so the header is not missed
        return Dashboard("live", trainer=trainer, buffer=buffer, writer=writer, session_path=session_path,
                         no_rewind=no_rewind)
    if mode == "replay":
        warnings: list[str] = []
        if events is None:
            if session_path is None:
                raise ValueError("replay needs events or a session_path")
            from bitnet_model.log.reader import read_session

            data = read_session(session_path)
            events = data.stream()
            warnings = list(data.warnings)
        player = Player(events, speed=speed)
        return Dashboard("replay", player=player, warnings=warnings, start_at=start_at)
    if mode == "watch":
        if session_path is None:
            raise ValueError("watch needs a session_path")
        from bitnet_model.log.follow import Follower

        path = Path(session_path)
        _check_watchable(path)
        return Dashboard("watch", follower=Follower(path), buffer=EventBuffer(), stale_after=stale_after)
    raise ValueError(f"unknown mode {mode!r}")


def _check_watchable(path: Path) -> None:
    """Refuse, up front, a path that is not (the start of) a session log. An empty file is fine: its run is starting."""
    from bitnet_model.log.errors import SessionError
    from bitnet_model.log.reader import parse_header

    shown = printable(path, 300)
    if path.is_dir():
        raise SessionError(f"{shown} is a directory")
    try:
        with path.open("rb") as f:
            first = f.readline(1 << 20)
    except FileNotFoundError:
        raise SessionError(f"{shown} does not exist") from None
    except OSError as e:
        raise SessionError(f"{shown} cannot be read ({e.strerror or e})") from None
    if first.endswith(b"\n") and first.strip():
        parse_header(first[:-1], shown)
