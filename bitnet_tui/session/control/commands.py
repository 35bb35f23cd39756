"""Commands a person or a script sends to a running trainer, declared once.

Each command class carries its wire name (as events carry ``kind``): the control socket's protocol
(:mod:`bitnet_tui.session.control.protocol`), the ``intervention`` events that confirm a command and the
dashboard's actions all derive from :data:`COMMANDS`. A command goes into the run's thread-safe inbox;
the run applies it at the next step boundary and answers with an
:class:`~bitnet_tui.session.log.events.Intervention` whose ``action`` is the command's wire name, so the log
shows every intervention exactly where it took effect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from bitnet_tui.session.errors import ConfigError

MAX_LR = 1.0
"""A learning rate must be below this (and above :data:`MIN_LR`): the CLI, the dashboard, the control
socket and the log reader share this range."""
MIN_LR = 1e-12
"""Smaller LRs are not a run anyone means (5e-324 once passed and a later scale divided by zero)."""
STOP_REASON_CHARS = 40


def check_lr(value: Any) -> float:
    """A typed learning rate, or ConfigError with one sentence saying why not."""
    if isinstance(value, bool):
        raise ConfigError(f"learning rate must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"learning rate {str(value)[:40]!r} is not a number") from None
    if not math.isfinite(v):
        raise ConfigError(f"learning rate must be finite, got {str(value)[:40]!r}")
    if v <= 0:
        raise ConfigError(f"learning rate must be positive, got {str(value)[:40]!r}")
    if v < MIN_LR:
        raise ConfigError(f"learning rate must be at least {MIN_LR:g}, got {str(value)[:40]!r}")
    if v >= MAX_LR:
        raise ConfigError(f"learning rate must be below {MAX_LR:g}, got {str(value)[:40]!r}")
    return v


def check_factor(value: Any) -> float:
    """An LR scale factor: positive and finite (the LR it gives is checked with :func:`check_lr`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError("factor must be a number")
    try:
        v = float(value)
    except OverflowError:
        raise ConfigError("factor must be a positive finite number") from None
    if not math.isfinite(v) or v <= 0:
        raise ConfigError("factor must be a positive finite number")
    return v


def check_reason(value: Any) -> str:
    """A stop reason: 1-40 letters, digits, spaces, '-' or '_' (it ends up in the log and on screens)."""
    if not isinstance(value, str) or not value or len(value) > STOP_REASON_CHARS \
            or not all(c.isalnum() or c in "-_ " for c in value):
        raise ConfigError(f"reason must be 1-{STOP_REASON_CHARS} letters, digits, spaces, '-' or '_'")
    return value


@dataclass(frozen=True)
class Command:
    """Base class. ``wire`` names it on the socket and in ``intervention`` events."""

    wire: ClassVar[str] = ""
    title: ClassVar[str] = ""
    """What the command palette and ``ctl --help`` call it."""
    source: str = "api"
    """Who asked: dashboard, cli, remote, signal, api, ..."""

    def args(self) -> dict[str, Any]:
        """The command's own fields (not ``source``), as sent on the wire."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "source"}


@dataclass(frozen=True)
class SetLR(Command):
    """The typed value is the LR from now on, never exceeded later by the schedule (see the Monitor's LR
    control): during warmup the LR holds at it, afterwards the rest of the decay keeps its shape below it."""

    wire: ClassVar[str] = "set_lr"
    title: ClassVar[str] = "Set learning rate"
    value: float = 0.0


@dataclass(frozen=True)
class ScaleLR(Command):
    """Set the LR to the current LR times ``factor`` (the same rule as :class:`SetLR`)."""

    wire: ClassVar[str] = "scale_lr"
    title: ClassVar[str] = "Scale learning rate"
    factor: float = 1.0


@dataclass(frozen=True)
class UndoLR(Command):
    """Restore the LR rule in force before the last SetLR/ScaleLR."""

    wire: ClassVar[str] = "undo_lr"
    title: ClassVar[str] = "Undo LR change"


@dataclass(frozen=True)
class Pause(Command):
    wire: ClassVar[str] = "pause"
    title: ClassVar[str] = "Pause training"


@dataclass(frozen=True)
class Resume(Command):
    wire: ClassVar[str] = "resume"
    title: ClassVar[str] = "Resume training"


@dataclass(frozen=True)
class Stop(Command):
    """End the run cleanly at the next step boundary (with a checkpoint where the run can save one)."""

    wire: ClassVar[str] = "stop"
    title: ClassVar[str] = "Stop the run"
    reason: str = "stopped"


@dataclass(frozen=True)
class CheckpointNow(Command):
    wire: ClassVar[str] = "checkpoint"
    title: ClassVar[str] = "Checkpoint now"


@dataclass(frozen=True)
class EvalNow(Command):
    wire: ClassVar[str] = "eval"
    title: ClassVar[str] = "Eval now"


MAX_WD = 10.0
"""A weight decay must be in [0, MAX_WD]; decoupled decay multiplies by (1 - lr * wd) each step."""
WD_GROUPS = ("decayed", "all", "norms", "embeddings", "biases")
"""What ``set-wd --groups`` may name: the param groups the loop decays now, every parameter, or a kind of
parameter (the optimizer audit's kinds: norm gains, embeddings, biases and other 1-D parameters)."""
NO_DECAY_KINDS = ("norms", "embeddings", "biases")


def check_wd(value: Any) -> float:
    """A weight decay: a finite number in [0, MAX_WD]."""
    if isinstance(value, bool):
        raise ConfigError(f"weight decay must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"weight decay {str(value)[:40]!r} is not a number") from None
    if not math.isfinite(v) or not 0 <= v <= MAX_WD:
        raise ConfigError(f"weight decay must be between 0 and {MAX_WD:g}, got {str(value)[:40]!r}")
    return v


def check_groups(value: Any) -> str:
    if not isinstance(value, str) or value not in WD_GROUPS:
        raise ConfigError(f"groups must be one of {', '.join(WD_GROUPS)}, got {str(value)[:40]!r}")
    return value


def check_kinds(value: Any) -> str:
    """``norms,embeddings``: a comma list of :data:`NO_DECAY_KINDS`, returned sorted and without repeats."""
    parts = [x.strip() for x in value.split(",") if x.strip()] if isinstance(value, str) else []
    if not parts or any(x not in NO_DECAY_KINDS for x in parts):
        raise ConfigError(f"kinds must be a comma list of {', '.join(NO_DECAY_KINDS)}, got {str(value)[:40]!r}")
    return ",".join(sorted(set(parts)))


def check_beta(value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"beta must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"beta {str(value)[:40]!r} is not a number") from None
    if not math.isfinite(v) or not 0 <= v < 1:
        raise ConfigError(f"beta must be in [0, 1), got {str(value)[:40]!r}")
    return v


@dataclass(frozen=True)
class SetWD(Command):
    """The weight decay of the chosen parameters from now on (the loop's own later values are overridden)."""

    wire: ClassVar[str] = "set_wd"
    title: ClassVar[str] = "Set weight decay"
    wd: float = 0.0
    groups: str = "decayed"


@dataclass(frozen=True)
class Decouple(Command):
    """Turn coupled L2 (PyTorch ``Adam(weight_decay>0)``) into decoupled decay, as AdamW decays, in place."""

    wire: ClassVar[str] = "decouple"
    title: ClassVar[str] = "Decouple weight decay (Adam's L2 -> AdamW's rule)"


@dataclass(frozen=True)
class NoDecayOn(Command):
    """Stop weight decay on kinds of parameters (norm gains, embeddings, biases)."""

    wire: ClassVar[str] = "no_decay_on"
    title: ClassVar[str] = "No weight decay on norms and embeddings"
    kinds: str = "embeddings,norms"


@dataclass(frozen=True)
class SetBetas(Command):
    """Adam's betas from now on (every param group)."""

    wire: ClassVar[str] = "set_betas"
    title: ClassVar[str] = "Set Adam's betas"
    beta1: float = 0.9
    beta2: float = 0.95


@dataclass(frozen=True)
class UndoOptim(Command):
    """Restore the optimizer rule in force before the last set-wd, decouple, no-decay-on or set-betas."""

    wire: ClassVar[str] = "undo_optim"
    title: ClassVar[str] = "Undo weight-decay / optimizer change"


COMMANDS: dict[str, type[Command]] = {
    c.wire: c for c in (SetLR, ScaleLR, UndoLR, Pause, Resume, Stop, CheckpointNow, EvalNow,
                        SetWD, Decouple, NoDecayOn, SetBetas, UndoOptim)
}
"""Every command by wire name: the one table the protocol, interventions and the dashboard derive from."""

def _number(check: Any) -> Any:
    """``check`` for a value that must already be a JSON number (the socket never parses strings)."""

    def strict(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError("must be a number")
        return check(value)

    return strict


CHECKS: dict[str, Any] = {"value": _number(check_lr), "factor": _number(check_factor), "reason": check_reason,
                          "wd": _number(check_wd), "groups": check_groups, "kinds": check_kinds,
                          "beta1": _number(check_beta), "beta2": _number(check_beta)}
"""How each command field is checked when it arrives from outside (the socket, the CLI)."""
OPTIONAL = frozenset({"reason", "groups", "kinds"})
"""Fields a request may leave out (the command's default applies)."""

LR_ACTIONS = frozenset({SetLR.wire, ScaleLR.wire, UndoLR.wire})
"""Interventions that change the LR (marked on the LR plot)."""
OPTIM_ACTIONS = frozenset({SetWD.wire, Decouple.wire, NoDecayOn.wire, SetBetas.wire, UndoOptim.wire})
"""Interventions that change the optimizer's decay rule or betas (marked on the LR/WD plot)."""
