"""Commands a user (dashboard, CLI, API) sends to a running trainer.

They go through :meth:`bitnet_model.trainer.Trainer.send`, a thread-safe
inbox; the trainer applies them at the next step boundary and answers with an
:class:`~bitnet_model.events.Intervention` event, so the log shows every
intervention exactly where it took effect.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    source: str = "api"
    """Who asked: dashboard, cli, api, remote, ..."""


@dataclass(frozen=True)
class SetLR(Command):
    """The typed value becomes the LR now; the rest of the schedule is rescaled to match."""

    value: float = 0.0


@dataclass(frozen=True)
class ScaleLR(Command):
    """Multiply the current LR (and the rest of the schedule) by ``factor``."""

    factor: float = 1.0


@dataclass(frozen=True)
class UndoLR(Command):
    """Restore the LR multiplier in force before the last SetLR/ScaleLR."""


@dataclass(frozen=True)
class Pause(Command):
    pass


@dataclass(frozen=True)
class Resume(Command):
    pass


@dataclass(frozen=True)
class Stop(Command):
    reason: str = "stopped"


@dataclass(frozen=True)
class CheckpointNow(Command):
    pass


@dataclass(frozen=True)
class EvalNow(Command):
    pass
