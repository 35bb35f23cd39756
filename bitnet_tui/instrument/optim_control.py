"""A person's weight-decay, decay-rule and betas changes, applied over whatever the training loop sets.

The same rule as the LR (:mod:`bitnet_tui.instrument.lr`): the loop (ours, whose schedule writes the first group's
``weight_decay`` every step, or a user's) keeps its own values in the param groups; :class:`OptimControl` hooks
``optimizer.step``: just before the step the groups get the values the person's rules say, just after the loop's
values are put back. Outside the step, ``param_groups`` hold the loop's own settings; the step uses the rules,
and the session log records what the step used (``weight_decay`` on each step event, ``intervention`` events).

The rules, newest last, each undoable (``undo_optim``):

- ``set_wd WD GROUPS``: the weight decay of the chosen parameters from now on. ``decayed``: the groups the loop
  decayed when the rule was made; ``all``; or a kind of parameter (``norms``, ``embeddings``, ``biases``).
- ``no_decay_on KINDS``: decay 0 on those kinds of parameters (``set_wd 0`` on each).
- ``decouple``: Adam's coupled L2 becomes decoupled decay, as AdamW's rule: PyTorch's own
  ``decoupled_weight_decay`` flag of the group where the optimizer has it (``Adam`` reads it every step, fused
  kernels too), otherwise the group's ``weight_decay`` is 0 for the step and ``p.mul_(1 - lr * wd)`` runs just
  before it, as AdamW does.
- ``set_betas B1 B2``: every group's ``betas``.

Where a rule gives the parameters of one group different decays (``no_decay_on`` with ``--decay-all``), the
group's ``weight_decay`` is 0 for the step and the Monitor applies each parameter's decay itself: decoupled as
above, or coupled as PyTorch's Adam does (``p.grad += wd * p`` before the step, so ``p.grad`` after the step
includes the L2 term).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from bitnet_tui.instrument.readback import first_group_wd

KIND = {"norms": "norm", "embeddings": "embedding", "biases": "bias"}
"""``--groups`` / ``no_decay_on`` names -> the audit's parameter kinds."""


@dataclass
class Rule:
    action: str
    """set_wd, decouple or set_betas (no_decay_on is stored as set_wd 0 on kinds)."""
    wd: float = 0.0
    groups: tuple[int, ...] | None = None
    """Group indices the rule covers (None: every group)."""
    kinds: tuple[str, ...] = ()
    """Parameter kinds it covers within them (empty: every kind)."""
    betas: tuple[float, float] | None = None
    what: str = ""
    """How the intervention named it (for undo's event)."""


def describe_kinds(kinds: tuple[str, ...]) -> str:
    return ", ".join(kinds) if kinds else "all parameters"


class OptimControl:
    """The stack of decay / betas rules for one optimizer, applied around each of its steps."""

    def __init__(self, kinds: dict[int, str] | None = None) -> None:
        self.kinds = dict(kinds or {})
        """id(parameter) -> "norm", "embedding", "bias" or "weight" (the audit's kinds)."""
        self.rules: list[Rule] = []
        self.optimizer: Any = None
        self.applied_wd: float | None = None
        """The largest weight decay any parameter had in the last step (None before the first one)."""
        self.applied_rule: str | None = None
        """"coupled" or "decoupled": how the last step decayed."""
        self._saved: list[dict[str, Any]] = []
        self._handles: list[Any] = []

    # -- what the optimizer is -------------------------------------------------------------------
    def groups(self) -> list[dict[str, Any]]:
        return list(getattr(self.optimizer, "param_groups", None) or [])

    def native_rule(self) -> str:
        """How this optimizer decays by itself: PyTorch's Adam (without its flag) couples L2; others decouple."""
        gs = self.groups()
        coupled = type(self.optimizer).__name__ == "Adam" and not (gs and gs[0].get("decoupled_weight_decay"))
        return "coupled" if coupled else "decoupled"

    def rule_now(self) -> str:
        return "decoupled" if any(r.action == "decouple" for r in self.rules) else self.native_rule()

    def decayed_groups(self) -> tuple[int, ...]:
        """The groups the loop decays now (their weight_decay > 0, outside the step)."""
        return tuple(i for i, g in enumerate(self.groups()) if float(g.get("weight_decay", 0) or 0) > 0)

    def kinds_in(self, groups: tuple[int, ...] | None = None) -> set[str]:
        gs = self.groups()
        idx = range(len(gs)) if groups is None else groups
        return {self.kinds.get(id(p), "weight") for i in idx for p in gs[i]["params"]}

    # -- the per-parameter decay ------------------------------------------------------------------
    def decays(self, base: list[float]) -> list[list[float]]:
        """Each parameter's weight decay under the rules, given each group's own (the loop's) value."""
        gs = self.groups()
        out = []
        for i, g in enumerate(gs):
            kinds = [self.kinds.get(id(p), "weight") for p in g["params"]]
            wds = [float(base[i] or 0.0)] * len(kinds)
            for r in self.rules:
                if r.action != "set_wd" or (r.groups is not None and i not in r.groups):
                    continue
                wds = [r.wd if not r.kinds or k in r.kinds else w for w, k in zip(wds, kinds)]
            out.append(wds)
        return out

    def wd_of(self, groups: tuple[int, ...] | None, kinds: tuple[str, ...]) -> float:
        """The largest decay the next step would give the selected parameters (the loop's values as they are)."""
        gs = self.groups()
        per = self.decays([float(g.get("weight_decay", 0) or 0) for g in gs])
        vals = [w for i, g in enumerate(gs) if groups is None or i in groups
                for w, p in zip(per[i], g["params"]) if not kinds or self.kinds.get(id(p), "weight") in kinds]
        return max(vals, default=0.0)

    def betas(self) -> tuple[float, float] | None:
        for r in reversed(self.rules):
            if r.action == "set_betas":
                return r.betas
        gs = self.groups()
        b = gs[0].get("betas") if gs else None
        return (float(b[0]), float(b[1])) if b is not None else None

    # -- the rules ---------------------------------------------------------------------------------
    def push(self, rule: Rule) -> None:
        self.rules.append(rule)

    def undo(self) -> Rule | None:
        return self.rules.pop() if self.rules else None

    # -- the optimizer -----------------------------------------------------------------------------
    def attach(self, optimizer: Any) -> None:
        """Hook ``optimizer.step`` (after the LR control's hooks, so a decoupled step uses the LR the step uses)."""
        self.detach()
        self.optimizer = optimizer
        self._handles = [optimizer.register_step_pre_hook(self._pre), optimizer.register_step_post_hook(self._post)]

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _pre(self, opt: Any, args: Any, kwargs: Any) -> None:
        gs = opt.param_groups
        base = [float(g.get("weight_decay", 0) or 0) for g in gs]
        self._saved = []
        if not self.rules:
            self.applied_wd, self.applied_rule = max(base, default=0.0), self.native_rule()
            return
        self._saved = [{k: g[k] for k in ("weight_decay", "betas", "decoupled_weight_decay") if k in g} for g in gs]
        rule, native = self.rule_now(), self.native_rule()
        betas = next((r.betas for r in reversed(self.rules) if r.action == "set_betas"), None)
        per = self.decays(base)
        with torch.no_grad():
            for g, wds in zip(gs, per):
                if betas is not None and "betas" in g:
                    g["betas"] = betas
                uniform = len(set(wds)) <= 1
                wd = wds[0] if wds else 0.0
                if uniform and (rule == native or (rule == "decoupled" and "decoupled_weight_decay" in g)):
                    g["weight_decay"] = wd
                    if rule != native:
                        g["decoupled_weight_decay"] = True
                    continue
                g["weight_decay"] = 0.0
                for p, w in zip(g["params"], wds):
                    if w <= 0:
                        continue
                    if rule == "decoupled":
                        p.mul_(1.0 - float(g["lr"]) * w)
                    elif p.grad is not None:
                        p.grad.add_(p, alpha=w)
        self.applied_wd = max((w for wds in per for w in wds), default=0.0)
        self.applied_rule = rule

    def _post(self, opt: Any, args: Any, kwargs: Any) -> None:
        for g, saved in zip(opt.param_groups, self._saved):
            g.update(saved)
            if "decoupled_weight_decay" not in saved:
                g.pop("decoupled_weight_decay", None)
        self._saved = []

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"rules": [{"action": r.action, "wd": r.wd, "groups": None if r.groups is None else list(r.groups),
                           "kinds": list(r.kinds), "betas": None if r.betas is None else list(r.betas),
                           "what": r.what} for r in self.rules]}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.rules = [Rule(action=str(r["action"]), wd=float(r.get("wd", 0.0)),
                           groups=None if r.get("groups") is None else tuple(int(i) for i in r["groups"]),
                           kinds=tuple(str(k) for k in r.get("kinds", ())),
                           betas=None if r.get("betas") is None else (float(r["betas"][0]), float(r["betas"][1])),
                           what=str(r.get("what", ""))) for r in d.get("rules", [])]


def optim_control(model: Any, optimizer: Any) -> OptimControl | None:
    """The control for a Monitor's optimizer (the inner one of a wrapper), attached; None without one."""
    if optimizer is None:
        return None
    from bitnet_tui.instrument.audit import param_kinds

    ctl = OptimControl(param_kinds(model))
    ctl.attach(getattr(optimizer, "optimizer", optimizer))
    return ctl


def step_wd(control: OptimControl | None, optimizer: Any) -> float:
    """The weight decay the last step used: the live control's when it set one, else the first group's now."""
    applied = control.applied_wd if control is not None else None
    return applied if applied is not None else first_group_wd(optimizer)
