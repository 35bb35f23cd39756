"""The dashboard's actions, by what they move: the run (:class:`RunControls`: LR, pause, checkpoint, eval,
rewind, quit), the replay cursor (:class:`ReplayControls`) and the view (:class:`ViewControls`). Mixed into
:class:`~.app.Dashboard`; every control is a command to the run, and the panels show the run's confirmed
``intervention``."""

from __future__ import annotations

import math
from typing import Any

from textual.widgets import Tabs
from textual.worker import Worker, WorkerState

from bitnet_tui.app.dashboard.dialogs import ConfirmDialog, LRDialog, RewindDialog, StepDialog, WDDialog
from bitnet_tui.app.dashboard.keyhelp import KeysScreen, key_lines
from bitnet_tui.app.dashboard.keys import SENDS, VIEW_ACTIONS
from bitnet_tui.app.dashboard.player import SPEEDS
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.text import fmt_num, printable


class RunControls:
    """Steering a live run (``self`` is the Dashboard)."""

    source: Any
    feed: Any
    _rewinding: tuple[int, float] | None
    _worker_error: str
    _stopping: bool

    def _send(self, cmd: C.Command) -> None:
        if self.source.can("steer") is not True:
            self.notify(self.source.why_not("steer") or "this view cannot steer a run", severity="warning")
            return
        self.source.send(cmd)
        self.feed.pending.sent(type(cmd).wire, cmd.args(), self.feed.step)  # until the run's answer
        self.feed.versions["header"] += 1
        self.refresh_panels()

    def action_set_lr(self) -> None:
        def done(value: float | None) -> None:
            if value is not None:
                self._send(C.SetLR(value=value, source="dashboard"))

        self.push_screen(LRDialog(self.feed), done)

    def action_scale_lr(self, factor: float) -> None:
        self._send(C.ScaleLR(factor=float(factor), source="dashboard"))

    def action_undo_lr(self) -> None:
        self._send(SENDS["undo_lr"](source="dashboard"))

    def action_set_wd(self) -> None:
        def done(value: float | None) -> None:
            if value is not None:
                self._send(C.SetWD(wd=value, source="dashboard"))

        self.push_screen(WDDialog(self.feed.weight_decay), done)

    def action_decouple(self) -> None:
        self._send(C.Decouple(source="dashboard"))

    def action_no_decay(self) -> None:
        self._send(C.NoDecayOn(kinds="embeddings,norms", source="dashboard"))

    def action_undo_optim(self) -> None:
        self._send(C.UndoOptim(source="dashboard"))

    def action_checkpoint(self) -> None:
        self._send(SENDS["checkpoint"](source="dashboard"))

    def action_eval_now(self) -> None:
        self._send(SENDS["eval_now"](source="dashboard"))

    def is_paused(self) -> bool:
        """Training paused (live, from the confirmed event) or playback paused (replay)."""
        if self.source.player is not None:
            return not self.source.player.playing
        return bool(self.feed.paused)

    def action_toggle_pause(self, which: str = "") -> None:
        if self.source.toggle_playback():
            self.refresh_panels()
            return
        self._send(C.Resume(source="dashboard") if self.feed.paused else C.Pause(source="dashboard"))

    # -- rewind ----------------------------------------------------------------
    def action_rewind(self) -> None:
        why = self.source.why_not("rewind")
        if why:
            self.notify(why, severity="warning")
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

        # Only checkpoints that exist on disk are offered: a fork never starts from a nearby one silently.
        self.push_screen(RewindDialog(steps, self.feed.lr), done)

    def _fork(self) -> None:
        """The current run has ended: build the fork off the event loop."""
        step, lr = self._rewinding  # type: ignore[misc]
        src = self.source
        self.run_worker(lambda: src.fork(step, lr), name="rewind", group="rewind", thread=True, exit_on_error=False)

    def _rewound(self, worker: Worker) -> None:
        if worker.state == WorkerState.SUCCESS:
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

    # -- leaving ---------------------------------------------------------------
    def action_quit_run(self) -> None:
        if self._rewinding is not None:
            self.notify("rewinding: quit when the forked run has started", severity="warning")
            return
        src = self.source
        if self._left_without_stopping():
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

    def _left_without_stopping(self) -> bool:
        """Quit a view with nothing to stop (a replay, an ended or failed run) or detach from an attached run;
        False when a run of this process is training and must be stopped first."""
        src = self.source
        if not src.running or self._worker_error:
            self.exit()
            return True
        if src.detachable:
            src.leave()
            self.exit(message="detached; the run goes on")
            return True
        return False

    def action_interrupt(self) -> None:
        """Ctrl+C, as the README promises: a live run ends cleanly at the next step boundary (a checkpoint,
        ``run_ended interrupted``, exit 130) without asking; an attached one is left running (detach); a
        replay or watch quits. A second Ctrl+C never cuts the ending short."""
        src = self.source
        if self._left_without_stopping():
            return
        if self._stopping:
            self.notify("interrupted: saving the checkpoint and ending the run; the dashboard closes when it has",
                        timeout=8)
            return
        self._stopping = True
        src.send(C.Stop(reason="interrupted", source="dashboard"))
        self.notify("Ctrl+C: ending the run cleanly (a checkpoint, then exit 130)", severity="warning", timeout=10)
        self.refresh_panels()


class ReplayControls:
    """Moving through a replay; ``n``/``N`` also walk the timeline of a live run or a watched log."""

    source: Any
    feed: Any

    def _player(self) -> Any:
        return self.source.player

    def action_speed(self, key: str) -> None:
        if self._player() is not None:
            self._player().speed = SPEEDS.get(str(key), 1.0)
            self.refresh_panels()

    def _move(self, how: str, *args: Any) -> bool:
        p = self._player()
        if p is None:
            return False
        if how != "to_end" and (math.isinf(p.speed) or p.at_end):
            p.playing = False  # at max speed, or after playback ended, the next ticks would play straight back
        ok = getattr(p, how)(*args)
        self.source.tick(0.0)
        self.refresh_panels(force=True)
        return ok is not False

    def action_to_start(self) -> None:
        self._move("to_start")

    def action_to_end(self) -> None:
        self._move("to_end")

    def _mark(self, delta: int) -> None:
        p = self._player()
        if p is not None:
            ok = self._move("next_mark" if delta > 0 else "prev_mark", p.marks())
        else:
            ok = self.timeline().move(self.feed, delta)
            if ok:
                self.show_panel("timeline", keep_overview=True)
        if not ok:
            self.notify(f"no {'later' if delta > 0 else 'earlier'} alert or intervention")

    def action_next_mark(self) -> None:
        self._mark(1)

    def action_prev_mark(self) -> None:
        self._mark(-1)

    def action_goto_step(self) -> None:
        p = self._player()
        if p is None:
            return
        last = p.steps[-1] if p.steps else 0
        self.push_screen(StepDialog(last), lambda step: step is not None and self._move("seek_step", step))


class ViewControls:
    """What is shown: panels, log scale, smoothing, the weights map, the keys (every mode)."""

    view: Any
    source: Any
    mode: str

    def action_keys(self) -> None:
        """Our help screen: every key of this mode, one line each."""
        if isinstance(self.screen, KeysScreen):
            return
        mode = "attach" if self.source.detachable else self.mode
        self.push_screen(KeysScreen(mode, key_lines(mode, self._why_not_key)))

    def _why_not_key(self, action: str) -> str | None:
        """"" where a key works now, why not where it works in this mode but not now, None where the mode has
        no use for it (watch and replay never steer)."""
        if action in VIEW_ACTIONS or action in ("quit_run", "interrupt"):
            return ""
        ok = self.source.can(action)
        if ok is None and self.mode == "live":
            return self.source.why_not(action) or "unavailable now"
        return "" if ok else None

    def action_next_panel(self) -> None:
        self.query_one(Tabs).action_next_tab()

    def action_show_panel(self, key: str) -> None:
        self.show_panel(key)

    def _view_changed(self, message: str) -> None:
        self.view.changed()
        self.refresh_panels(force=True)
        self.notify(message, timeout=2)

    def action_toggle_log(self) -> None:
        self.view.log_y = not self.view.log_y
        self._view_changed("y axes: " + ("log scale" if self.view.log_y else "linear"))

    def action_smoothing(self) -> None:
        w = self.view.next_ema()
        self._view_changed(f"smoothing: EMA {fmt_num(w)}" if w else "smoothing off")

    def action_weights_map(self) -> None:
        self.view.weights_map = "scale" if self.view.weights_map == "flip" else "flip"
        self._view_changed("weights map: " + ("scale and latent RMS, each ÷ its peak"
                                               if self.view.weights_map == "scale" else "flip rate and zero fraction"))
