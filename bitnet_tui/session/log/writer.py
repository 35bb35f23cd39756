"""Writing a session log: append-only JSON Lines, flushed per line, fsynced where a crash must not lose it.

A session log is UTF-8 JSON Lines, one event per line (``Event.to_dict()``); its first line is the
:class:`~bitnet_tui.session.log.events.RunStarted` header. :class:`SessionWriter` never truncates or rewrites a
byte. A log whose last event is not ``run_ended`` belongs to a run that crashed or is still running: the
writer's advisory lock (:func:`writer_lock_held`) tells which. No pickle: logs are data, never code.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bitnet_tui.session.log.errors import SessionWriteError
from bitnet_tui.session.log.events import Alert, CheckpointSaved, Event, Intervention, RunEnded, RunStarted
from bitnet_tui.session.text import shown_path

try:  # POSIX advisory locks tell a running writer from a crashed one.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

RECENT_WRITE_S = 60.0
"""Fallback when file locks cannot tell: a log without run_ended modified this recently is "running"."""
PENDING_LIMIT_BYTES = 64 << 20
"""While writes fail, unwritten lines wait in memory up to this size; later events are dropped and counted."""
FSYNC_KINDS = frozenset({RunStarted.kind, Alert.kind, Intervention.kind, CheckpointSaved.kind, RunEnded.kind})
"""Events after which the log is forced to disk: the ones a crash must not lose."""

STATUS_FINISHED = "finished"
STATUS_RUNNING = "running"
STATUS_CRASHED = "crashed"


class SessionWriter:
    """Append-only JSON Lines writer; call it with each event (a trainer subscriber).

    - Refuses a file that already holds data (``FileExistsError``); an empty file,
      as made by :func:`new_session_path`, is fine.
    - Holds an exclusive advisory lock for its lifetime, so a second writer is
      refused and readers can tell a running session from a crashed one.
    - Every line is handed to the OS as soon as it is made (no user-space
      buffer); ``os.fsync`` follows the events in :data:`FSYNC_KINDS`.

    Write failures: the unwritten bytes stay in a pending backlog and
    ``write`` raises :class:`SessionWriteError` (also kept in :attr:`error`);
    ``on_error``, if given, is called once when writing starts failing. The
    trainer catches the error, alerts and pauses. Later events are appended to
    the backlog (each call raising while it cannot be written), and
    :meth:`retry` (or the next event, or :meth:`close`) writes it out in order.
    A partially written line is completed, never rewritten; nothing already on
    disk is touched. Past :data:`PENDING_LIMIT_BYTES` of backlog, new events are
    dropped and counted in :attr:`dropped`. :attr:`error` goes back to ``None``
    once the backlog is written.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        on_error: Callable[[SessionWriteError], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.on_error = on_error
        self.error: SessionWriteError | None = None
        self.dropped = 0
        self.lines = 0
        self._pending = bytearray()
        self._to_notify: SessionWriteError | None = None
        self._lock = threading.Lock()
        self._closed = False
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise FileExistsError(
                            errno.EEXIST, f"{shown_path(self.path)} is being written by another run"
                        ) from None
                    # a file system without locks: carry on without one
            if os.fstat(fd).st_size > 0:
                raise FileExistsError(errno.EEXIST,
                                      f"{shown_path(self.path)} already holds a session; refusing to append")
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    @property
    def pending_bytes(self) -> int:
        return len(self._pending)

    def __call__(self, event: Event) -> None:
        self.write(event)

    def write(self, event: Event) -> None:
        """Append one event; raises :class:`SessionWriteError` if it could not be written now
        (it stays in the backlog), ``ValueError`` for misuse (closed, no header first)."""
        line = json.dumps(event.to_dict(), allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        data = (line + "\n").encode("utf-8", "backslashreplace")
        with self._lock:
            if self._closed:
                raise ValueError(f"session log {shown_path(self.path)} is closed")
            if self.lines == 0 and not isinstance(event, RunStarted):
                raise ValueError("the first event of a session must be run_started")
            if self._pending and len(self._pending) + len(data) > PENDING_LIMIT_BYTES:
                self.dropped += 1
            else:
                self._pending += data
                self.lines += 1
            if self._flush_pending() and event.kind in FSYNC_KINDS:
                self._fsync()
            error = self.error
        self._notify()
        if error is not None:
            raise error

    def retry(self) -> bool:
        """Try to write the backlog now; True when the log is complete and healthy again."""
        with self._lock:
            if self._closed:
                return self.error is None
            if self._flush_pending():
                self._fsync()
            ok = self.error is None and not self._pending
        self._notify()
        return ok

    def _notify(self) -> None:
        """Call ``on_error`` outside the lock: it may write to this log again (an alert saying so)."""
        err, self._to_notify = self._to_notify, None
        if err is not None and self.on_error is not None:
            self.on_error(err)

    def _flush_pending(self) -> bool:
        """Write the backlog; True when it is all written."""
        pending = self._pending
        done = 0
        try:
            while done < len(pending):
                done += os.write(self._fd, pending if done == 0 else pending[done:])
        except OSError as e:
            del pending[:done]
            self._fail(e)
            return False
        self._pending.clear()
        if self.error is not None and not self.dropped:
            self.error = None
        return True

    def _fsync(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as e:
            self._fail(e)
        else:
            if self.error is not None and not self._pending and not self.dropped:
                self.error = None

    def _fail(self, e: OSError) -> None:
        first = self.error is None
        reason = e.strerror or str(e)
        self.error = SessionWriteError(e.errno, f"cannot write session log {shown_path(self.path)}: {reason}")
        if first:
            self._to_notify = self.error

    def close(self) -> None:
        """Write what is pending, fsync, release the lock and close. Idempotent.

        Raises :class:`SessionWriteError` if lines could still not be written.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            ok = self._flush_pending()
            if ok:
                self._fsync()
            os.close(self._fd)  # closing releases the lock
            if not ok or self.dropped:
                lost = f"{len(self._pending)} bytes unwritten, {self.dropped} events dropped"
                raise SessionWriteError(
                    self.error.errno if self.error else None,
                    f"session log {shown_path(self.path)} is incomplete ({lost})",
                )

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def writer_lock_held(path: str | os.PathLike[str]) -> bool | None:
    """True if a live :class:`SessionWriter` holds the log, False if none does, None if it cannot tell."""
    if fcntl is None:
        return None
    try:  # never blocks: the name may now be a FIFO (read_session opened the file before, by the same name)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        return True if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) else None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def session_status(ended: bool, lock_held: bool | None, mtime: float, now: float | None = None) -> str:
    """finished (run_ended present), running (a writer holds the lock; where locks cannot tell,
    modified within :data:`RECENT_WRITE_S`), else crashed."""
    if ended:
        return STATUS_FINISHED
    if lock_held:
        return STATUS_RUNNING
    if lock_held is None and (now if now is not None else time.time()) - mtime < RECENT_WRITE_S:
        return STATUS_RUNNING
    return STATUS_CRASHED

