"""A person's LR changes, applied over whatever schedule the training loop sets.

The loop (ours or a user's, with or without a scheduler) writes its scheduled LR into the optimizer's
param groups; :class:`LRControl` hooks ``optimizer.step``: just before it, every group's LR becomes the
scheduled LR times :meth:`LRControl.factor`, and just after, the scheduled value is put back, so a
scheduler that reads or multiplies the group's LR never sees our change and can never undo it.

The rule for a typed LR ``v`` (set before step ``s``): **v is the LR from now on, never exceeded later
unless the person raises it again.** The factor is ``v / ref`` where ``ref`` is the highest scheduled LR
from step ``s`` on. After warmup the schedule only decays, so ``ref`` is the LR at ``s`` and the rest of the decay keeps
its shape below ``v``; during warmup the scheduled LR keeps rising, ``ref`` rises with it, and the LR holds
at ``v`` until the schedule peaks, then decays from there. ×2, ×0.5 and undo follow the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Rule:
    target: float
    """The LR the person asked for."""
    ref: float | None = None
    """Highest scheduled LR seen since the rule was made (None until the next step shows it)."""


class LRControl:
    """Holds the stack of LR rules and applies the newest one around each optimizer step."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.scheduled: float | None = None
        """The loop's scheduled LR (first param group) at the last step, or when the control was attached."""
        self.applied: float | None = None
        """The LR the last optimizer step used (first param group)."""
        self._saved: list[Any] = []
        self._handles: list[Any] = []

    def current(self) -> float | None:
        """The LR the last optimizer step used; before the first step, the LR the first one will use."""
        return self.applied if self.applied is not None else self.lr_now()

    # -- the rule ------------------------------------------------------------------------------
    def factor(self) -> float:
        if not self.rules:
            return 1.0
        r = self.rules[-1]
        ref = r.ref if r.ref is not None else self.scheduled
        return r.target / ref if ref else 1.0

    def lr_now(self) -> float | None:
        """The LR the next step will use if the schedule stays where it is."""
        return None if self.scheduled is None else self.scheduled * self.factor()

    def set(self, value: float) -> None:
        """Make ``value`` the LR from now on (see the module's rule)."""
        self.rules.append(Rule(target=value))

    def start_at(self, value: float) -> None:
        """A fork given a new LR: the parent's rules are dropped and ``value`` is the LR from the first step on
        (the same rule as :meth:`set`), whatever the parent's schedule and changes had made it."""
        self.rules = [Rule(target=value)]

    def undo(self) -> bool:
        if not self.rules:
            return False
        self.rules.pop()
        return True

    def observe(self, scheduled: float) -> None:
        """The loop's scheduled LR for the coming step: every rule's reference follows its peak."""
        self.scheduled = scheduled
        for r in self.rules:
            if r.ref is None or scheduled > r.ref:
                r.ref = scheduled

    # -- the optimizer -------------------------------------------------------------------------
    def attach(self, optimizer: Any) -> None:
        """Hook ``optimizer.step`` (a ``torch.optim.Optimizer``; for wrappers pass the inner optimizer)."""
        self.detach()
        groups = optimizer.param_groups
        if groups:
            self.scheduled = float(groups[0]["lr"])

        def pre(opt: Any, args: Any, kwargs: Any) -> None:
            gs = opt.param_groups
            self._saved = [g["lr"] for g in gs]
            self.observe(float(gs[0]["lr"]))
            f = self.factor()
            if f != 1.0:
                for g in gs:
                    g["lr"] = g["lr"] * f
            self.applied = float(gs[0]["lr"])

        def post(opt: Any, args: Any, kwargs: Any) -> None:
            for g, lr in zip(opt.param_groups, self._saved):
                g["lr"] = lr

        self._handles = [optimizer.register_step_pre_hook(pre), optimizer.register_step_post_hook(post)]

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"rules": [[r.target, r.ref] for r in self.rules], "scheduled": self.scheduled}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.rules = [Rule(float(t), None if r is None else float(r)) for t, r in d.get("rules", [])]
        s = d.get("scheduled")
        self.scheduled = float(s) if s is not None else self.scheduled
