"""The autopilot (opt-in: ``run --autopilot``, ``Monitor(autopilot=True)``): the fixes a person would apply, applied
as the same commands a person sends, each an ``intervention`` with source ``auto`` that ``undo_optim`` /
``undo_lr`` take back.

- **Decaying weights or un-learning**, when the optimizer audit named the cause: on the detector's
  weights-decaying alert (``decay``) or its ``unlearning`` state, ``decouple`` where the audit found coupled L2
  (``coupled-l2``) and ``no_decay_on biases,embeddings,norms`` where it found decay on them (``decay-all``).
  Once per run; where the audit named nothing, it says so and applies nothing.
- **A loss spike or divergence**: a step loss above :attr:`Autopilot.spike_ratio` × the median of the last
  :attr:`Autopilot.window` step losses, or a non-finite loss (the run pauses itself: the autopilot resumes it
  at the lower LR), lowers the LR by :attr:`Autopilot.lr_factor`; once per event (the loss must come back under
  the threshold first) and at most once per :attr:`Autopilot.cooldown` steps. A second non-finite loss within
  the cooldown stops the run cleanly (``run_ended nonfinite``) rather than leave it paused.

Each decision is also an info alert (``autopilot``) that names the events and figures it acted on.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable

from bitnet_tui.session.control import commands as C
from bitnet_tui.session.log.events import Alert, Event, StepDone

NO_DECAY = "biases,embeddings,norms"


class Autopilot:
    def __init__(self, send: Callable[[C.Command], None], emit: Callable[[Event], None] | None = None, *,
                 lr_factor: float = 0.5, spike_ratio: float = 1.5, window: int = 50, cooldown: int = 100) -> None:
        self.send, self.emit = send, emit
        self.lr_factor, self.spike_ratio, self.window, self.cooldown = lr_factor, spike_ratio, window, cooldown
        self.findings: set[str] = set()
        """The audit's finding codes seen at the start (coupled-l2, decay-all)."""
        self.decay_fixed = False
        self.losses: deque[float] = deque(maxlen=window)
        self.last_lr_step: int | None = None
        self.in_spike = False
        self.actions: list[tuple[int, str]] = []
        """(step, what) of every decision, in order."""

    def observe(self, ev: Event) -> None:
        """An event subscriber (rank 0's events); it only sends commands and says why."""
        if isinstance(ev, StepDone):
            self._step(ev)
        elif isinstance(ev, Alert):
            if ev.code == "audit" and isinstance(ev.data.get("code"), str):
                self.findings.add(ev.data["code"])
            elif ev.code == "decay" or (ev.code == "detector" and ev.state_to == "unlearning"):
                self._decay(ev)
            elif ev.code == "nonfinite":
                self._lower_lr(ev.step, "a non-finite loss", resume=True)

    # -- decaying weights ------------------------------------------------------------------------
    def _decay(self, ev: Alert) -> None:
        if self.decay_fixed:
            return
        self.decay_fixed = True
        what = "the weights-decaying alert" if ev.code == "decay" else "the unlearning state"
        figures = _figures(ev)
        fixes: list[tuple[C.Command, str]] = []
        if "coupled-l2" in self.findings:
            fixes.append((C.Decouple(source="auto"), "decouple (the audit found coupled L2 in Adam)"))
        if "decay-all" in self.findings:
            fixes.append((C.NoDecayOn(kinds=NO_DECAY, source="auto"),
                          f"no_decay_on {NO_DECAY} (the audit found decay on them)"))
        if not fixes:
            self._say(ev.step, f"autopilot: {what} at step {ev.step} ({figures}), but the optimizer audit named no "
                               "decay setting to change; nothing applied")
            return
        for cmd, _ in fixes:
            self.send(cmd)
        self._say(ev.step, f"autopilot: {what} at step {ev.step} ({figures}): "
                           f"{'; '.join(why for _, why in fixes)}; undo with undo-optim")

    # -- spikes ------------------------------------------------------------------------------------
    def _step(self, ev: StepDone) -> None:
        loss = ev.loss
        if not math.isfinite(loss):
            return  # the nonfinite alert that follows is the event
        if len(self.losses) >= self.window:
            med = statistics.median(self.losses)
            limit = self.spike_ratio * med
            if loss > limit and not self.in_spike:
                self.in_spike = True
                self._lower_lr(ev.step, f"a loss spike ({loss:.3f} > {self.spike_ratio:g} x the median "
                                        f"{med:.3f} of the last {self.window} steps)")
            elif loss <= limit:
                self.in_spike = False
        if not self.in_spike:
            self.losses.append(loss)

    def _lower_lr(self, step: int, why: str, resume: bool = False) -> None:
        if self.last_lr_step is not None and step - self.last_lr_step < self.cooldown:
            self._say(step, f"autopilot: {why} at step {step}; the LR was lowered at step {self.last_lr_step}, "
                            f"within the {self.cooldown}-step cooldown: nothing applied")
            if resume:  # a second divergence so soon: end the run cleanly rather than leave it paused
                self.send(C.Stop(reason="nonfinite", source="auto"))
            return
        self.last_lr_step = step
        self.send(C.ScaleLR(factor=self.lr_factor, source="auto"))
        if resume:
            self.send(C.Resume(source="auto"))
        self._say(step, f"autopilot: {why} at step {step}: LR x{self.lr_factor:g}; undo with undo-lr")

    def _say(self, step: int, message: str) -> None:
        self.actions.append((step, message))
        if self.emit is not None:
            self.emit(Alert(step=step, time=time.time(), level="info", code="autopilot", message=message))


def _figures(ev: Alert) -> str:
    d = ev.data
    parts = []
    if isinstance(d.get("fall"), (int, float)):
        parts.append(f"ternary scale ÷{d['fall']:.1f}")
    if ev.val_loss is not None:
        parts.append(f"held-out loss {ev.val_loss:.3f}")
    return ", ".join(parts) or "no figures"
