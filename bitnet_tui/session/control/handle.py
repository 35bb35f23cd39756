"""The one seam between a dashboard (or the headless view) and a run, wherever the run lives.

:class:`~bitnet_tui.app.runs.local.LocalRun` (a trainer in this process) and
:class:`~bitnet_tui.session.control.remote.RemoteRun` (a run in another process, reached over its log and control
socket) both implement :class:`RunHandle`; nothing that drives a run needs to know which it has.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from bitnet_tui.session.control.commands import Command
from bitnet_tui.session.log.events import Event, RunEnded


@runtime_checkable
class RunHandle(Protocol):
    run_name: str
    detachable: bool
    """True when closing the dashboard leaves the run going (a run in another process)."""

    @property
    def session_path(self) -> Path | None: ...

    def subscribe(self, fn: Callable[[Event], None]) -> None:
        """Call ``fn`` with every event from the header on, in the thread that runs :meth:`run`."""

    def send(self, cmd: Command) -> Any:
        """Queue a command for the run's next step boundary; never blocks the caller for long."""

    def run(self) -> RunEnded:
        """Block until the run ends (or, for a detachable run, until detached); return how it ended."""
