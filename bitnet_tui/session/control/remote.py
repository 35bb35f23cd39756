"""A run in another process, driven as if it were in this one: events from its log, commands over its socket.

:class:`RemoteRun` follows the log (:class:`~bitnet_tui.session.log.follow.Follower`) for events and sends
commands over the control socket, so the dashboard can drive a detached run exactly as it drives one of
its own.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bitnet_tui.session.control import commands as C
from bitnet_tui.session.control.client import request
from bitnet_tui.session.control.peer import ControlError, NoAnswer, control_path
from bitnet_tui.session.control.protocol import command_request
from bitnet_tui.session.log.errors import SessionError
from bitnet_tui.session.log.events import Alert, Event, Intervention, RunEnded, RunStarted
from bitnet_tui.session.log.follow import Follower
from bitnet_tui.session.log.paths import SUFFIX
from bitnet_tui.session.log.writer import writer_lock_held
from bitnet_tui.session.text import safe_text, shown_path

Subscriber = Callable[[Event], None]


class RemoteRun:
    """A :class:`~bitnet_tui.session.control.handle.RunHandle` for a run in another process.

    :meth:`run` follows the session log, calling subscribers with every event
    from the header on, in the calling thread, until the log's ``run_ended``,
    until :meth:`detach`, or until the run's process is found gone (its writer
    lock released without ``run_ended``: an ``alert`` with code ``crash`` is
    delivered). :meth:`send` forwards commands over the control socket; a refusal
    or an unreachable socket becomes an ``alert`` (code ``remote``) delivered by
    :meth:`run`, so a dashboard shows it like any other. Closing a dashboard on
    it should call :meth:`detach`, which leaves the run going.

    While :meth:`run` follows, a heartbeat pings the socket every ``heartbeat_s``
    (each ping waits that long); :meth:`not_answering` is how long it has had no
    answer once that reaches ``silent_after_s`` (a stopped or hung process),
    else None.
    """

    detachable = True

    def __init__(self, session_path: str | os.PathLike[str], *, control: str | os.PathLike[str] | None = None,
                 poll_s: float = 0.1, lost_after_s: float = 2.0, answer_s: float = 5.0, heartbeat_s: float = 1.0,
                 silent_after_s: float = 3.0) -> None:
        self.path = Path(session_path)
        self.control = Path(control) if control is not None else control_path(self.path)
        self.poll_s = poll_s
        self.lost_after_s = lost_after_s
        self.answer_s = answer_s
        """How long a command waits for the run's answer."""
        self.heartbeat_s = heartbeat_s
        self.silent_after_s = silent_after_s
        self._answered = time.monotonic()
        self.follower = Follower(self.path)
        self.header: RunStarted | None = None
        self.run_name = self.path.name.removesuffix(SUFFIX)
        self.total_steps: int | None = 0
        self.device = "?"
        self.step_count = 0
        self.paused = False
        self.last_end: RunEnded | None = None
        self.error: BaseException | None = None
        self._subs: list[Subscriber] = []
        self._backlog: list[Event] = []
        self._local: list[Event] = []
        self._local_lock = threading.Lock()
        self._detached = threading.Event()

    @property
    def session_path(self) -> Path:
        return self.path

    def subscribe(self, fn: Subscriber) -> None:
        self._subs.append(fn)

    def ping(self, timeout: float = 5.0) -> dict[str, Any]:
        """Check that the run serves its control socket; raises :class:`ControlError`."""
        from bitnet_tui.session.control.reach import reach

        return reach(self.path, {"cmd": "ping"}, timeout=timeout)

    def read_header(self, timeout: float = 10.0) -> RunStarted:
        """Read the log up to its header (kept for :meth:`run`) and take run name, steps and device from it."""
        deadline = time.monotonic() + timeout
        while self.header is None:
            self._take(self.follower.poll())
            if self.header is None:
                if time.monotonic() > deadline:
                    raise SessionError(f"{shown_path(self.path)} has no header yet")
                time.sleep(self.poll_s)
        return self.header

    def _take(self, events: list[Event]) -> None:
        for ev in events:
            self._observe(ev)
            self._backlog.append(ev)

    def _observe(self, ev: Event) -> None:
        if isinstance(ev, RunStarted):
            self.header = ev
            self.run_name, self.total_steps, self.device = ev.run_name, ev.total_steps, ev.device
        if isinstance(ev, Intervention) and ev.action in ("pause", "resume"):
            self.paused = ev.action == "pause"
        if isinstance(ev, RunEnded):
            self.last_end = ev
        self.step_count = max(self.step_count, ev.step)

    def send(self, cmd: C.Command) -> dict[str, Any] | None:
        """Forward a command; never raises. Returns the reply, or None when the socket could not be reached."""
        try:
            reply = request(self.control, command_request(cmd), timeout=self.answer_s)
        except NoAnswer as e:
            self._local_alert(f"{type(cmd).__name__} was sent but got {e}")
            return None
        except (ControlError, ValueError) as e:
            self._local_alert(f"{type(cmd).__name__} was not sent: {e}")
            return None
        if not reply.get("ok"):
            self._local_alert(f"the run refused {type(cmd).__name__}: {reply.get('error', '?')}")
        return reply

    def _local_alert(self, message: str) -> None:
        with self._local_lock:
            self._local.append(Alert(step=self.step_count, time=time.time(), level="error", code="remote",
                                     message=safe_text(message, newlines=False, limit=500)))

    def not_answering(self) -> float | None:
        """Seconds since the run's socket last answered a ping, once at least ``silent_after_s``; None while it
        answers, and once the run has ended or this view detached."""
        if self.last_end is not None or self._detached.is_set():
            return None
        silent = time.monotonic() - self._answered
        return silent if silent >= self.silent_after_s else None

    def _heartbeat(self, done: threading.Event) -> None:
        while not done.is_set():
            try:
                request(self.control, {"cmd": "ping"}, timeout=self.heartbeat_s)
                self._answered = time.monotonic()
            except ControlError:
                pass
            done.wait(self.heartbeat_s)

    def detach(self) -> None:
        """Make :meth:`run` return soon; the run itself goes on."""
        self._detached.set()

    @property
    def detached(self) -> bool:
        return self._detached.is_set()

    def _deliver(self, events: list[Event]) -> None:
        for ev in events:
            for fn in self._subs:
                fn(ev)

    def run(self) -> RunEnded:
        """Deliver the run's events until it ends, is lost, or :meth:`detach` is called; returns the
        log's ``run_ended``, or a ``RunEnded`` not from the log with reason ``detached`` or ``lost``."""
        quiet_since = self._answered = time.monotonic()
        beating = threading.Event()
        threading.Thread(target=self._heartbeat, args=(beating,), name="bitnet-heartbeat", daemon=True).start()
        try:
            while True:
                backlog, self._backlog = self._backlog, []
                self._deliver(backlog)
                with self._local_lock:
                    local, self._local = self._local, []
                self._deliver(local)
                if self.last_end is not None:
                    return self.last_end
                if self._detached.is_set():
                    return RunEnded(step=self.step_count, time=time.time(), reason="detached")
                events = self.follower.poll()
                if events:
                    quiet_since = time.monotonic()
                    self._take(events)
                    continue
                if time.monotonic() - quiet_since >= self.lost_after_s:
                    quiet_since = time.monotonic()
                    if self.header is not None and writer_lock_held(self.path) is False:
                        self._take(self.follower.poll())  # the last lines written before it went
                        if self.last_end is None:
                            msg = "the run's process is gone: its log ends without run_ended (it crashed or was killed)"
                            self._deliver([*self._backlog, Alert(step=self.step_count, time=time.time(), level="error",
                                                                 code="crash", message=msg)])
                            self._backlog = []
                            return RunEnded(step=self.step_count, time=time.time(), reason="lost", error=msg)
                self._detached.wait(self.poll_s)
        except SessionError as e:
            self.error = e
            self._deliver([Alert(step=self.step_count, time=time.time(), level="error", code="remote",
                                 message=safe_text(e, newlines=False, limit=500))])
            return RunEnded(step=self.step_count, time=time.time(), reason="lost", error=str(e))
        finally:
            beating.set()

