"""What each optimizer command does to an :class:`~bitnet_tui.instrument.optim_control.OptimControl`, and the old
and new values its ``intervention`` event records (text that names the parameters and the decay rule, e.g.
``old "all parameters: wd 0.1, coupled L2"`` -> ``new "all parameters: wd 0.1, decoupled"``).

A command that would change nothing (decouple on a run that already decouples, undo with nothing to undo) is
refused with an info-level alert; one that cannot apply (no such parameters) with a warning.
"""

from __future__ import annotations

from bitnet_tui.instrument.optim_control import KIND, OptimControl, Rule, describe_kinds
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.errors import ConfigError

OPTIM_COMMANDS = (C.SetWD, C.Decouple, C.NoDecayOn, C.SetBetas, C.UndoOptim)
RULE_TEXT = {"coupled": "coupled L2", "decoupled": "decoupled"}


class NoChange(ConfigError):
    """The command would change nothing: refused at info level."""

    info = True


def _selection(optim: OptimControl, groups: str) -> tuple[tuple[int, ...] | None, tuple[str, ...], str]:
    if groups == "decayed":
        idx = optim.decayed_groups()
        if not idx:
            raise ConfigError("no param group is decayed now (weight_decay 0 everywhere); name --groups all or a kind")
        return idx, (), "decayed groups" if len(optim.groups()) > 1 else "all parameters"
    if groups == "all":
        return None, (), "all parameters"
    kinds = (KIND[groups],)
    if not optim.kinds_in() & set(kinds):
        raise ConfigError(f"the model has no {groups} among the optimizer's parameters")
    return None, kinds, groups


def state_text(optim: OptimControl, groups: tuple[int, ...] | None = None, kinds: tuple[str, ...] = (),
               name: str = "all parameters") -> str:
    return f"{name}: wd {optim.wd_of(groups, kinds):g}, {RULE_TEXT[optim.rule_now()]}"


def apply_optim(optim: OptimControl, cmd: C.Command) -> tuple[str, str]:
    """Apply one optimizer command; (old, new) for its intervention. Raises ConfigError (NoChange) saying why not."""
    if isinstance(cmd, C.SetWD):
        wd = C.check_wd(cmd.wd)
        groups, kinds, name = _selection(optim, C.check_groups(cmd.groups))
        old = state_text(optim, groups, kinds, name)
        optim.push(Rule("set_wd", wd=wd, groups=groups, kinds=kinds, what=f"set_wd {wd:g} on {name}"))
        return old, state_text(optim, groups, kinds, name)
    if isinstance(cmd, C.NoDecayOn):
        names = C.check_kinds(cmd.kinds).split(",")
        kinds = tuple(KIND[n] for n in names if KIND[n] in optim.kinds_in())
        if not kinds:
            raise ConfigError(f"the model has no {' or '.join(names)} among the optimizer's parameters")
        name = describe_kinds(tuple(n for n in names if KIND[n] in kinds))
        if optim.wd_of(None, kinds) == 0:
            raise NoChange(f"no weight decay on {name} already")
        old = state_text(optim, None, kinds, name)
        optim.push(Rule("set_wd", wd=0.0, kinds=kinds, what=f"no decay on {name}"))
        return old, state_text(optim, None, kinds, name)
    if isinstance(cmd, C.Decouple):
        if optim.rule_now() == "decoupled":
            raise NoChange(f"the decay is already decoupled ({type(optim.optimizer).__name__})")
        old = state_text(optim)
        optim.push(Rule("decouple", what="decouple"))
        return old, state_text(optim)
    if isinstance(cmd, C.SetBetas):
        b = (C.check_beta(cmd.beta1), C.check_beta(cmd.beta2))
        before = optim.betas()
        if before is None:
            raise ConfigError(f"{type(optim.optimizer).__name__} has no betas")
        optim.push(Rule("set_betas", betas=b, what=f"betas {b[0]:g}, {b[1]:g}"))
        return f"betas {before[0]:g}, {before[1]:g}", f"betas {b[0]:g}, {b[1]:g}"
    if isinstance(cmd, C.UndoOptim):
        rule = optim.undo()
        if rule is None:
            raise NoChange("no weight-decay or optimizer change to undo")
        betas = optim.betas()
        now = state_text(optim) + (f"; betas {betas[0]:g}, {betas[1]:g}" if rule.action == "set_betas" and betas
                                   else "")
        return f"{rule.what} (undone)", now
    raise ConfigError(f"{type(cmd).wire} is not an optimizer command")

