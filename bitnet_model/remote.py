"""Steering a run from another process: a control socket beside the log, and a Trainer look-alike that uses it.

A run started with ``--control`` (``run --detach`` always does) serves a Unix
domain socket, ``<log stem>.sock`` beside its session log. The protocol is JSON
Lines: each request is one object, ``{"cmd": "set_lr", "value": 1e-3}``, and each
gets one reply line, ``{"ok": true}`` or ``{"ok": false, "error": "..."}``.

=========== ========================= =============================
cmd         fields                    becomes
=========== ========================= =============================
set_lr      value (0 < value < 1)     :class:`~bitnet_model.commands.SetLR`
scale_lr    factor (> 0, finite)      :class:`~bitnet_model.commands.ScaleLR`
undo_lr                               :class:`~bitnet_model.commands.UndoLR`
pause                                 :class:`~bitnet_model.commands.Pause`
resume                                :class:`~bitnet_model.commands.Resume`
stop        reason (optional, short)  :class:`~bitnet_model.commands.Stop`
checkpoint                            :class:`~bitnet_model.commands.CheckpointNow`
eval                                  :class:`~bitnet_model.commands.EvalNow`
ping                                  nothing; the reply carries run, step, paused
=========== ========================= =============================

Anything else (unknown keys, wrong types, booleans for numbers, NaN) is refused
with a reply saying why. Commands carry ``source="remote"``; ``ok`` means the
trainer queued it, and the log's ``intervention`` event is the confirmation.

Who may talk to it: the socket is created 0600 (under a 077 umask) in a
directory nobody else can write to (or a sticky one), and each connection's
peer uid is checked with ``SO_PEERCRED`` where the platform has it: only the
user running the trainer is served. Clients check the server's uid the same way.

:class:`RemoteTrainer` follows the log (:class:`~bitnet_model.session.Follower`)
for events and sends commands over the socket, so the dashboard can drive a run
in another process exactly as it drives one in its own.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bitnet_model import commands as C
from bitnet_model.config import ConfigError
from bitnet_model.events import Alert, Event, Intervention, RunEnded, RunStarted
from bitnet_model.session import SUFFIX, Follower, SessionError, safe_text, writer_lock_held
from bitnet_model.trainer import check_lr

MAX_REQUEST_BYTES = 4096
"""A request line longer than this is refused and the connection closed."""
MAX_CLIENTS = 8
"""Connections served at once; more are refused."""
CLIENT_IDLE_S = 60.0
"""A connection silent this long is closed."""
STOP_REASON_CHARS = 40

Subscriber = Callable[[Event], None]


class ControlError(OSError):
    """The control channel cannot be served or reached. The message is one user-facing sentence."""


def control_path(log_path: str | os.PathLike[str]) -> Path:
    """The control socket of a run: beside its log, ``<log without .jsonl>.sock``."""
    p = Path(log_path)
    return p.with_name(p.name.removesuffix(SUFFIX) + ".sock")


def _shown(path: str | os.PathLike[str]) -> str:
    return safe_text(os.fspath(path), newlines=False, limit=300)


# --------------------------------------------------------------------------- requests

def _number(d: dict[str, Any], key: str) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{key} must be a number")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{key} must be finite")
    return v


_NO_ARGS: dict[str, type[C.Command]] = {
    "undo_lr": C.UndoLR, "pause": C.Pause, "resume": C.Resume, "checkpoint": C.CheckpointNow, "eval": C.EvalNow,
}
_ALLOWED_KEYS = {"set_lr": {"value"}, "scale_lr": {"factor"}, "stop": {"reason"}, "ping": set(),
                 **{k: set() for k in _NO_ARGS}}
COMMAND_NAMES = tuple(_ALLOWED_KEYS)


def parse_request(obj: Any) -> C.Command | None:
    """One decoded request to a command (``source="remote"``); None for ``ping``. Raises ValueError saying why not."""
    if not isinstance(obj, dict):
        raise ValueError("a request must be a JSON object")
    name = obj.get("cmd")
    if not isinstance(name, str) or name not in _ALLOWED_KEYS:
        raise ValueError(f"unknown cmd {safe_text(json.dumps(name), newlines=False, limit=40)}; "
                         f"known: {', '.join(COMMAND_NAMES)}")
    extra = set(obj) - {"cmd"} - _ALLOWED_KEYS[name]
    if extra:
        raise ValueError(f"{name} does not take {', '.join(sorted(safe_text(k, limit=40) for k in extra))}")
    if name == "ping":
        return None
    if name == "set_lr":
        try:
            return C.SetLR(value=check_lr(_number(obj, "value")), source="remote")
        except ConfigError as e:
            raise ValueError(str(e)) from None
    if name == "scale_lr":
        factor = _number(obj, "factor")
        if factor <= 0:
            raise ValueError("factor must be positive")
        return C.ScaleLR(factor=factor, source="remote")
    if name == "stop":
        reason = obj.get("reason", "stopped")
        if not isinstance(reason, str) or not reason or len(reason) > STOP_REASON_CHARS \
                or not all(c.isalnum() or c in "-_ " for c in reason):
            raise ValueError(f"reason must be 1-{STOP_REASON_CHARS} letters, digits, spaces, '-' or '_'")
        return C.Stop(reason=reason, source="remote")
    return _NO_ARGS[name](source="remote")


def command_request(cmd: C.Command) -> dict[str, Any]:
    """The request for a command object (the inverse of :func:`parse_request`)."""
    if isinstance(cmd, C.SetLR):
        return {"cmd": "set_lr", "value": cmd.value}
    if isinstance(cmd, C.ScaleLR):
        return {"cmd": "scale_lr", "factor": cmd.factor}
    if isinstance(cmd, C.Stop):
        return {"cmd": "stop", "reason": cmd.reason}
    for name, klass in _NO_ARGS.items():
        if type(cmd) is klass:
            return {"cmd": name}
    raise ValueError(f"{type(cmd).__name__} cannot be sent to a remote run")


# --------------------------------------------------------------------------- sockets

def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a Unix socket (Linux SO_PEERCRED); None where unknown."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None:
        return None
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    except OSError:
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


@contextlib.contextmanager
def _addr(path: Path) -> Iterator[str]:
    """A socket address for ``path``, short enough for sun_path (about 107 bytes) even when the path is not:
    long paths go through ``/proc/self/fd/<dir fd>/<name>`` (Linux)."""
    full = os.fspath(path)
    if len(os.fsencode(full)) < 100 or not os.path.isdir("/proc/self/fd"):
        yield full
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def check_directory(directory: Path) -> None:
    """Refuse to put a socket where another user could replace it: the directory must be ours (or root's)
    and not writable by others unless sticky."""
    try:
        st = os.stat(directory)
    except OSError as e:
        raise ControlError(e.errno, f"cannot use {_shown(directory)} for a control socket ({e.strerror})") from None
    if st.st_uid not in (os.geteuid(), 0):
        raise ControlError(errno.EPERM, f"{_shown(directory)} belongs to another user; no control socket there")
    if st.st_mode & (stat.S_IWOTH | stat.S_IWGRP) and not st.st_mode & stat.S_ISVTX:
        raise ControlError(errno.EPERM, f"{_shown(directory)} is writable by other users; no control socket there")


def _is_live(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        with _addr(path) as a:
            s.connect(a)
        return True
    except OSError:
        return False
    finally:
        s.close()


class ControlServer:
    """Serves a trainer's control socket in background threads until :meth:`close`.

    ``trainer`` needs only ``send(cmd)``, ``step``, ``paused`` and ``run_name``.
    Raises :class:`ControlError` if the socket cannot be made (a live one is
    already there, an unsafe directory, a path that is not a socket).
    """

    def __init__(self, trainer: Any, path: str | os.PathLike[str], *, allowed_uid: int | None = None) -> None:
        self.trainer = trainer
        self.path = Path(path)
        self.allowed_uid = os.geteuid() if allowed_uid is None else allowed_uid
        self.refused = 0
        """Connections refused (another user, too many at once)."""
        self._closed = threading.Event()
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()
        check_directory(self.path.parent)
        if os.path.lexists(self.path):
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                raise ControlError(errno.EEXIST, f"{_shown(self.path)} exists and is not a socket; not replacing it")
            if _is_live(self.path):
                raise ControlError(errno.EADDRINUSE, f"{_shown(self.path)} is already served by a running process")
            os.unlink(self.path)  # left by a run that died
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)
        try:
            with _addr(self.path) as a:
                sock.bind(a)
        except OSError as e:
            sock.close()
            raise ControlError(e.errno, f"cannot create control socket {_shown(self.path)} ({e.strerror})") from None
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self._ino = os.stat(self.path).st_ino
        sock.listen(MAX_CLIENTS)
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept_loop, name="bitnet-control", daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._closed.is_set():
                    return
                time.sleep(0.1)
                continue
            uid = peer_uid(conn)
            with self._lock:
                busy = len(self._clients) >= MAX_CLIENTS
                if not busy and (uid is None or uid == self.allowed_uid):
                    self._clients.add(conn)
                    admitted = True
                else:
                    admitted = False
            if not admitted:
                self.refused += 1
                why = "too many connections" if busy else "this run belongs to another user"
                self._reply_and_close(conn, {"ok": False, "error": why})
                continue
            threading.Thread(target=self._serve, args=(conn,), name="bitnet-control-client", daemon=True).start()

    @staticmethod
    def _reply_and_close(conn: socket.socket, reply: dict[str, Any]) -> None:
        try:
            conn.settimeout(1.0)
            conn.sendall((json.dumps(reply) + "\n").encode())
        except OSError:
            pass
        finally:
            conn.close()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(CLIENT_IDLE_S)
        buf = b""
        try:
            while not self._closed.is_set():
                nl = buf.find(b"\n")
                if nl < 0:
                    if len(buf) > MAX_REQUEST_BYTES:
                        conn.sendall(b'{"ok": false, "error": "request too long"}\n')
                        return
                    try:
                        chunk = conn.recv(4096)
                    except TimeoutError:
                        return
                    if not chunk:
                        return
                    buf += chunk
                    continue
                line, buf = buf[:nl], buf[nl + 1:]
                if not line.strip():
                    continue
                reply = self.handle(line)
                conn.sendall((json.dumps(reply) + "\n").encode())
        except OSError:
            pass
        finally:
            with self._lock:
                self._clients.discard(conn)
            conn.close()

    def handle(self, line: bytes) -> dict[str, Any]:
        """One request line to its reply; queues the command on the trainer."""
        if len(line) > MAX_REQUEST_BYTES:
            return {"ok": False, "error": "request too long"}
        try:
            obj = json.loads(line.decode("utf-8"), parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            return {"ok": False, "error": "a request must be one JSON object on one line"}
        try:
            cmd = parse_request(obj)
        except ValueError as e:
            return {"ok": False, "error": str(e)}
        if cmd is not None:
            self.trainer.send(cmd)
            return {"ok": True}
        return {"ok": True, "run": self.trainer.run_name, "step": self.trainer.step, "paused": self.trainer.paused}

    def close(self) -> None:
        """Stop serving and remove the socket file (if it is still ours). Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self._sock.close()
        finally:
            self._thread.join(2.0)
            with self._lock:
                for c in list(self._clients):
                    with contextlib.suppress(OSError):
                        c.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == self._ino:
                    os.unlink(self.path)

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"bare {name} is not valid JSON")


def request(path: str | os.PathLike[str], req: dict[str, Any], *, timeout: float = 5.0) -> dict[str, Any]:
    """Send one request to a control socket and return its reply. Raises :class:`ControlError`."""
    p = Path(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            with _addr(p) as a:
                s.connect(a)
        except FileNotFoundError:
            raise ControlError(errno.ENOENT, f"{_shown(p)} does not exist: the run is not running with a "
                                             "control channel (it ended, or was started without --control)") from None
        except ConnectionRefusedError:
            raise ControlError(errno.ECONNREFUSED, f"nothing is serving {_shown(p)}: the run's process is gone") \
                from None
        except PermissionError:
            raise ControlError(errno.EACCES, f"{_shown(p)} belongs to another user") from None
        uid = peer_uid(s)
        if uid is not None and uid != os.geteuid():
            raise ControlError(errno.EPERM, f"{_shown(p)} is served by another user's process; not talking to it")
        try:
            s.sendall((json.dumps(req, allow_nan=False) + "\n").encode())
        except (BrokenPipeError, ConnectionResetError):
            pass  # a refusing server answers and hangs up at once: read its answer
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
            if len(buf) > 1 << 16:
                break
    except TimeoutError:
        raise ControlError(errno.ETIMEDOUT, f"{_shown(p)} did not answer within {timeout:g} s") from None
    except ControlError:
        raise
    except OSError as e:
        raise ControlError(e.errno, f"control socket {_shown(p)} failed ({e.strerror or e})") from None
    finally:
        s.close()
    try:
        reply = json.loads(buf.split(b"\n", 1)[0].decode("utf-8"))
    except ValueError:
        reply = None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise ControlError(errno.EPROTO, f"{_shown(p)} gave a reply that is not from a bitnet-tui run")
    return reply


# --------------------------------------------------------------------------- the proxy

class RemoteTrainer:
    """Looks like a :class:`~bitnet_model.trainer.Trainer` to the dashboard, for a run in another process.

    :meth:`run` follows the session log, calling subscribers with every event
    from the header on, in the calling thread, until the log's ``run_ended``,
    until :meth:`detach`, or until the run's process is found gone (its writer
    lock released without ``run_ended``: an ``alert`` with code ``crash`` is
    delivered). :meth:`send` forwards commands over the control socket; a refusal
    or an unreachable socket becomes an ``alert`` (code ``remote``) delivered by
    :meth:`run`, so a dashboard shows it like any other. Closing a dashboard on
    it should call :meth:`detach`, which leaves the run going.
    """

    detachable = True

    def __init__(self, session_path: str | os.PathLike[str], *, control: str | os.PathLike[str] | None = None,
                 poll_s: float = 0.1, lost_after_s: float = 2.0) -> None:
        self.path = Path(session_path)
        self.control = Path(control) if control is not None else control_path(self.path)
        self.poll_s = poll_s
        self.lost_after_s = lost_after_s
        self.follower = Follower(self.path)
        self.header: RunStarted | None = None
        self.run_name = self.path.name.removesuffix(SUFFIX)
        self.total_steps = 0
        self.device = "?"
        self.step = 0
        self.paused = False
        self.last_end: RunEnded | None = None
        self.error: BaseException | None = None
        self._subs: list[Subscriber] = []
        self._backlog: list[Event] = []
        self._local: list[Event] = []
        self._local_lock = threading.Lock()
        self._detached = threading.Event()

    def subscribe(self, fn: Subscriber) -> None:
        self._subs.append(fn)

    def ping(self, timeout: float = 5.0) -> dict[str, Any]:
        """Check that the run serves its control socket; raises :class:`ControlError`."""
        return request(self.control, {"cmd": "ping"}, timeout=timeout)

    def read_header(self, timeout: float = 10.0) -> RunStarted:
        """Read the log up to its header (kept for :meth:`run`) and take run name, steps and device from it."""
        deadline = time.monotonic() + timeout
        while self.header is None:
            self._take(self.follower.poll())
            if self.header is None:
                if time.monotonic() > deadline:
                    raise SessionError(f"{_shown(self.path)} has no header yet")
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
        self.step = max(self.step, ev.step)

    def send(self, cmd: C.Command) -> dict[str, Any] | None:
        """Forward a command; never raises. Returns the reply, or None when the socket could not be reached."""
        try:
            reply = request(self.control, command_request(cmd))
        except (ControlError, ValueError) as e:
            self._local_alert(f"{type(cmd).__name__} was not sent: {e}")
            return None
        if not reply.get("ok"):
            self._local_alert(f"the run refused {type(cmd).__name__}: {reply.get('error', '?')}")
        return reply

    def _local_alert(self, message: str) -> None:
        with self._local_lock:
            self._local.append(Alert(step=self.step, time=time.time(), level="error", code="remote",
                                     message=safe_text(message, newlines=False, limit=500)))

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
        quiet_since = time.monotonic()
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
                    return RunEnded(step=self.step, time=time.time(), reason="detached")
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
                            self._deliver([*self._backlog, Alert(step=self.step, time=time.time(), level="error",
                                                                 code="crash", message=msg)])
                            self._backlog = []
                            return RunEnded(step=self.step, time=time.time(), reason="lost", error=msg)
                self._detached.wait(self.poll_s)
        except SessionError as e:
            self.error = e
            self._deliver([Alert(step=self.step, time=time.time(), level="error", code="remote",
                                 message=safe_text(e, newlines=False, limit=500))])
            return RunEnded(step=self.step, time=time.time(), reason="lost", error=str(e))


__all__ = [
    "COMMAND_NAMES", "ControlError", "ControlServer", "RemoteTrainer", "check_directory", "command_request",
    "control_path", "parse_request", "peer_uid", "request",
]
