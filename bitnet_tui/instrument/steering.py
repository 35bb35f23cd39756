"""Commands at the step boundary: the inbox, and what each command does to the run.

:meth:`Steering.send` is thread-safe and never blocks (the dashboard, the control socket and signal handlers
call it). The Monitor drains the inbox at each step boundary (on rank 0, then broadcasts what it took) and
calls :meth:`Steering.apply` for each command on every rank; each applied command becomes one
``intervention`` event (rank 0 emits it). LR commands go to :class:`~bitnet_tui.instrument.lr.LRControl`; weight
decay, the decay rule and betas to :class:`~bitnet_tui.instrument.optim_control.OptimControl`
(:mod:`bitnet_tui.instrument.optim_steer`).
"""

from __future__ import annotations

import queue
import sys
import time
from collections.abc import Callable

from bitnet_tui.instrument.dist import World
from bitnet_tui.instrument.emitter import Emitter
from bitnet_tui.instrument.lr import LRControl
from bitnet_tui.instrument.optim_control import OptimControl
from bitnet_tui.instrument.optim_steer import OPTIM_COMMANDS, apply_optim
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.errors import ConfigError
from bitnet_tui.session.log.events import Alert, Event, Intervention


class Steering:
    def __init__(self, lr: LRControl, emit: Callable[[Event], None], optim: OptimControl | None = None, *,
                 announce: bool = False) -> None:
        self.lr = lr
        self.announce = announce
        """Say a pause for a non-finite loss on stderr (a user's loop, where no dashboard shows it)."""
        self.optim = optim
        """The optimizer's decay / betas control (:class:`~bitnet_tui.instrument.optim_control.OptimControl`), or
        None where the Monitor has no optimizer."""
        self.emit = emit
        self.inbox: queue.SimpleQueue[C.Command] = queue.SimpleQueue()
        self.paused = False
        self.stop_reason: str | None = None
        self.eval_requested = False
        self.checkpoint_requested = False
        self.step = 0

    def send(self, cmd: C.Command) -> None:
        self.inbox.put(cmd)

    def take(self, timeout: float | None = None) -> list[C.Command]:
        """Everything queued now; with ``timeout``, wait that long for a first command."""
        out: list[C.Command] = []
        try:
            if timeout is not None:
                out.append(self.inbox.get(timeout=timeout))
            while True:
                out.append(self.inbox.get_nowait())
        except queue.Empty:
            return out

    def _intervene(self, cmd: C.Command, old: float | str | None, new: float | str | None) -> None:
        self.emit(Intervention(step=self.step, time=time.time(), action=type(cmd).wire, old=old, new=new,
                               source=cmd.source))

    def _refuse(self, cmd: C.Command, why: str, level: str = "warning") -> None:
        self.emit(Alert(step=self.step, time=time.time(), level=level, code="command",
                        message=f"refused {type(cmd).wire}: {why}"))

    def apply(self, cmd: C.Command) -> None:
        if isinstance(cmd, OPTIM_COMMANDS):
            if self.optim is None:
                self._refuse(cmd, "this run's Monitor has no optimizer")
                return
            try:
                before, after = apply_optim(self.optim, cmd)
            except ConfigError as e:
                self._refuse(cmd, str(e), level="info" if getattr(e, "info", False) else "warning")
                return
            self._intervene(cmd, before, after)
        elif isinstance(cmd, (C.SetLR, C.ScaleLR)):
            old = self.lr.lr_now()
            if old is None:
                self._refuse(cmd, "the optimizer's LR is not known yet (no optimizer step so far)")
                return
            try:
                new = C.check_lr(cmd.value if isinstance(cmd, C.SetLR) else old * C.check_factor(cmd.factor))
            except ConfigError as e:
                self._refuse(cmd, str(e))
                return
            self.lr.set(new)
            self._intervene(cmd, old, self.lr.lr_now())
        elif isinstance(cmd, C.UndoLR):
            old = self.lr.lr_now()
            if not self.lr.undo():
                self._refuse(cmd, "no LR change to undo", level="info")
                return
            self._intervene(cmd, old, self.lr.lr_now())
        elif isinstance(cmd, C.Pause):
            if not self.paused:
                self.paused = True
                self._intervene(cmd, "running", "paused")
        elif isinstance(cmd, C.Resume):
            if self.paused:
                self.paused = False
                self._intervene(cmd, "paused", "running")
        elif isinstance(cmd, C.Stop):
            if self.stop_reason is None:
                self.stop_reason = cmd.reason
                self._intervene(cmd, "running", cmd.reason)
        elif isinstance(cmd, C.CheckpointNow):
            self.checkpoint_requested = True
            self._intervene(cmd, None, None)
        elif isinstance(cmd, C.EvalNow):
            self.eval_requested = True
            self._intervene(cmd, None, None)

    def exchange(self, world: World, emitter: Emitter) -> None:
        """One round at the step boundary: rank 0 takes what is queued (waiting half a second for it while paused,
        so the ranks' collectives keep flowing) and applies it, pausing while an event consumer (the log) fails;
        then every rank gets the same commands and run state (``world.share``) and the others apply them."""
        cmds: list[C.Command] = []
        if world.main:
            cmds = self.take(0.5 if self.paused and self.stop_reason is None else None)
            for c in cmds:
                self.apply(c)
            if emitter.failed and not self.paused:
                self.pause_by("auto: event consumer failed")
            elif self.paused and emitter.failed and emitter.retry():
                self.resume_by("auto: event consumer recovered")
        wire, paused, stopped = world.share([(type(c).wire, c.args(), c.source) for c in cmds], self.paused,
                                            self.stop_reason is not None)
        if not world.main:
            for name, args, source in wire:
                self.apply(C.COMMANDS[name](source=source, **args))
            self.paused = paused
            self.stop_reason = self.stop_reason or ("stopped" if stopped else None)

    def take_stop(self, timeout: float) -> bool:
        """While the run waits on something (a checkpoint to succeed), apply what arrives; True once stopped."""
        for cmd in self.take(timeout):
            self.apply(cmd)
        return self.stop_reason is not None

    def nonfinite(self, step: int, loss: float, gn: float, lr: float, *, stop: bool, skipped: bool,
                  kept: Callable[[], list[int]]) -> None:
        """A non-finite loss was read back: alert (saying whether the loop skipped the update, and else the
        checkpoint before it, of ``kept()``), then pause (a person can lower the LR) or stop."""
        if skipped:  # the loop skipped the update: the weights are as they were before this step
            what = "the update was skipped, the weights are unchanged; training is " + \
                ("stopping" if stop else "paused; lower the LR and resume")
        else:  # a loop that steps anyway may have written the non-finite values into the weights
            before = [c for c in kept() if c < step]
            back = f"go back to the checkpoint at step {before[-1]}" if before else "restart from a checkpoint " \
                "saved before this step (none was kept)"
            what = "the update may have written it into the weights; training is " + \
                ("stopping" if stop else f"paused; do not resume these weights, {back}")
        self.emit(Alert(step=step, time=time.time(), level="error", code="nonfinite",
                        message=f"non-finite loss {loss} (grad norm {gn}) at LR {lr:.3g}: {what}",
                        data={"skipped": skipped}))
        if stop:
            if self.stop_reason is None:
                self.stop_reason = "nonfinite"
        else:
            self.pause_by("auto: non-finite loss")
            if self.announce:
                print(f"bitnet-tui: non-finite loss at step {step}; training is paused in Monitor.step: "
                      "bitnet-tui ctl SESSION resume (after set-lr) resumes it, ctl SESSION stop ends it "
                      "(bitnet-tui sessions lists SESSION)", file=sys.stderr, flush=True)

    def pause_by(self, source: str) -> None:
        """The run pauses itself (a non-finite loss, a failing consumer) and says so."""
        if not self.paused:
            self.paused = True
            self.emit(Intervention(step=self.step, time=time.time(), action=C.Pause.wire, old="running",
                                   new="paused", source=source))

    def resume_by(self, source: str) -> None:
        if self.paused:
            self.paused = False
            self.emit(Intervention(step=self.step, time=time.time(), action=C.Resume.wire, old="paused",
                                   new="running", source=source))
