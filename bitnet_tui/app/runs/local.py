"""A run in this process: its trainer (whose Monitor owns the log and the control socket), signals, and forks.

``bitnet-tui run`` (headless or with the dashboard) and the dashboard's rewind all drive a run through
this one object; ``attach`` drives :class:`~bitnet_tui.session.control.remote.RemoteRun` through the same
:class:`~bitnet_tui.session.control.handle.RunHandle` seam.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bitnet_tui.session.control import commands as C
from bitnet_tui.session.log.events import Event, RunEnded
from bitnet_tui.session.log.paths import checkpoint_dir, list_checkpoints

SIGNAL_REASONS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}
if hasattr(signal, "SIGHUP"):
    SIGNAL_REASONS[signal.SIGHUP] = "hangup"
EXIT_CODES = {"finished": 0, "stopped": 0, "rewound": 0, "detached": 0, "interrupted": 130, "terminated": 143,
              "hangup": 129}
"""A run's end reason -> the process's exit status (README: 0 done, 1 failed, 130/143 interrupted)."""


def exit_code(reason: str | None) -> int:
    return EXIT_CODES.get(reason or "error", 1)


class LocalRun:
    detachable = False

    def __init__(self, trainer: Any, plan: Any, session_path: Path | None, *, options: dict[str, Any],
                 forker: Callable[[LocalRun, int, float], LocalRun] | None = None) -> None:
        self.trainer = trainer
        self.plan = plan
        self._path = session_path
        self.options = options
        self._forker = forker
        self.signalled: str | None = None

    # -- RunHandle -----------------------------------------------------------------------------
    @property
    def run_name(self) -> str:
        return self.trainer.run_name

    @property
    def session_path(self) -> Path | None:
        return self._path

    @property
    def monitor(self) -> Any:
        return self.trainer.monitor

    @property
    def total_steps(self) -> int:
        return self.trainer.total_steps

    @property
    def step_count(self) -> int:
        return self.monitor.step_count

    @property
    def paused(self) -> bool:
        return self.monitor.paused

    @property
    def last_end(self) -> RunEnded | None:
        return self.trainer.last_end

    def subscribe(self, fn: Callable[[Event], None]) -> None:
        self.monitor.subscribe(fn)

    def send(self, cmd: C.Command) -> None:
        self.monitor.send(cmd)

    def run(self) -> RunEnded:
        return self.trainer.run()

    # -- lifecycle -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def signals(self, also: Callable[[str], None] | None = None) -> Iterator[None]:
        """SIGINT, SIGTERM and SIGHUP end the run cleanly (Stop: checkpoint, ``run_ended`` with the reason);
        ``also(reason)`` runs too (a dashboard that lost its terminal leaves). Main thread only."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum: int, frame: Any) -> None:  # noqa: ARG001
            reason = SIGNAL_REASONS.get(signum, "stopped")
            self.signalled = self.signalled or reason
            self.send(C.Stop(reason=reason, source="signal"))
            if also is not None:
                also(reason)

        old = {}
        for sig in SIGNAL_REASONS:
            with contextlib.suppress(ValueError, OSError):
                old[sig] = signal.signal(sig, on_signal)
        try:
            yield
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)

    def checkpoint_steps(self) -> list[int]:
        if self._path is None:
            return []
        return [s for s, _ in list_checkpoints(checkpoint_dir(self._path))]

    def fork(self, step: int, lr: float) -> LocalRun:
        """A new run continuing this one from its checkpoint at ``step`` with peak LR ``lr`` (a linked session)."""
        if self._forker is None or self._path is None:
            raise RuntimeError("this run has no session log to fork from")
        return self._forker(self, step, lr)
