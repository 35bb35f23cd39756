"""Commands sent from this dashboard that the run has not applied yet: a run applies commands at its next step
boundary, so one sent mid-step shows as pending until the run's ``intervention`` (or its refusal, an alert
``refused <command>: ...``) says what became of it."""

from __future__ import annotations

from dataclasses import dataclass

from bitnet_tui.session.log.events import Alert, Event, Intervention, RunEnded
from bitnet_tui.session.text import fmt_value, printable

ALL_AT_ONCE = frozenset({"pause", "resume", "stop"})
"""Commands a run applies once however often they are sent (a second pause is no change, and no event)."""


ANSWERS = frozenset({"dashboard", "remote"})
"""The sources a command of ours comes back as: this dashboard's, or (attached) the control socket's."""


@dataclass(frozen=True)
class Sent:
    wire: str
    label: str
    step: int


class Pending:
    """What was sent and not yet applied, oldest first."""

    def __init__(self) -> None:
        self.items: list[Sent] = []

    def sent(self, wire: str, args: dict[str, object], step: int) -> None:
        shown = " ".join(fmt_value(v) if isinstance(v, float) else printable(v, 40) for v in args.values())
        self.items.append(Sent(wire, f"{wire} {shown}".strip(), step))

    def apply(self, e: Event) -> bool:
        """Settle what ``e`` answers; True when something was."""
        if isinstance(e, RunEnded):
            settled, self.items = bool(self.items), []
            return settled
        wire = ""
        if isinstance(e, Intervention) and e.source in ANSWERS:
            wire = e.action
        elif isinstance(e, Alert) and e.code == "command" and e.message.startswith("refused "):
            wire = e.message.removeprefix("refused ").split(":", 1)[0]
        if not wire or not any(s.wire == wire for s in self.items):
            return False
        if wire in ALL_AT_ONCE:
            self.items = [s for s in self.items if s.wire not in ALL_AT_ONCE]
        else:
            first = next(i for i, s in enumerate(self.items) if s.wire == wire)
            del self.items[first]
        return True

    def labels(self) -> list[str]:
        return [s.label for s in self.items]
