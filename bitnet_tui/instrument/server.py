"""Serving a run's control socket: requests in background threads become commands in the run's inbox.

``ok`` means the run queued the command; the log's ``intervention`` event is the confirmation. A command whose
request ``id`` the run has already taken is answered ``duplicate`` and not queued again. Only the
user running the trainer is served (:mod:`bitnet_tui.session.control.peer`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

from bitnet_tui.session.control.commands import Command
from bitnet_tui.session.control.peer import ControlError, check_socket_path, is_live, peer_uid, socket_address
from bitnet_tui.session.control.protocol import (
    MAX_REQUEST_BYTES,
    parse_request,
    refuse_constant,
    request_id,
    unique_keys,
)
from bitnet_tui.session.text import safe_text, shown_path

MAX_CLIENTS = 8
"""Connections served at once; more are refused."""
CONNECTION_S = 10.0
"""A connection is closed this long after it opened, however it trickles: eight slow clients cannot hold
every slot (each request is one connection; clients reconnect)."""
IDS_KEPT = 4096
"""Request ids remembered (the newest): a retry within this many commands is recognised."""


class Steerable(Protocol):
    """What the control server needs of a run: its name and step, whether it is paused, and its inbox."""

    run_name: str
    step_count: int

    @property
    def paused(self) -> bool: ...

    def send(self, cmd: Command) -> None: ...


class ControlServer:
    """Serves a run's control socket in background threads until :meth:`close`.

    ``run`` needs only ``send(cmd)``, ``step_count``, ``paused`` and ``run_name`` (a Monitor).
    Raises :class:`ControlError` if the socket cannot be made (a live one is
    already there, an unsafe directory, a path that is not a socket).
    """

    def __init__(self, run: Steerable, path: str | os.PathLike[str], *, allowed_uid: int | None = None) -> None:
        self.run = run
        self.path = Path(path)
        self.allowed_uid = os.geteuid() if allowed_uid is None else allowed_uid
        self.refused = 0
        """Connections refused (another user, too many at once)."""
        self._closed = threading.Event()
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._ids: OrderedDict[str, None] = OrderedDict()
        check_socket_path(self.path)
        if os.path.lexists(self.path):
            shown = shown_path(self.path)
            if is_live(self.path):
                raise ControlError(errno.EADDRINUSE, f"{shown} is already served by a running process")
            try:
                os.unlink(self.path)  # left by a run that died
            except OSError as e:
                raise ControlError(e.errno, f"cannot replace the stale socket {shown} ({e.strerror})") from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)
        try:
            with socket_address(self.path) as a:
                sock.bind(a)
        except OSError as e:
            sock.close()
            raise ControlError(e.errno, f"cannot create control socket {shown_path(self.path)} ({e.strerror})") \
                from None
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
        deadline = time.monotonic() + CONNECTION_S
        buf = b""
        try:
            while not self._closed.is_set():
                nl = buf.find(b"\n")
                if nl < 0:
                    if len(buf) > MAX_REQUEST_BYTES:
                        conn.sendall(b'{"ok": false, "error": "request too long"}\n')
                        return
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    conn.settimeout(left)
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
            obj = json.loads(line.decode("utf-8"), parse_constant=refuse_constant, object_pairs_hook=unique_keys)
        except (ValueError, RecursionError) as e:
            why = f" ({safe_text(e, newlines=False, limit=80)})" if "twice" in str(e) else ""
            return {"ok": False, "error": f"a request must be one JSON object on one line, each key once{why}"}
        try:
            cmd = parse_request(obj)
            rid = request_id(obj)
        except (ValueError, TypeError, OverflowError) as e:  # e.g. a 400-digit factor overflows float()
            return {"ok": False, "error": safe_text(e, newlines=False, limit=300)}
        if cmd is not None:
            if rid is not None:
                with self._lock:
                    if rid in self._ids:
                        return {"ok": True, "duplicate": True, "id": rid}
                    self._ids[rid] = None
                    while len(self._ids) > IDS_KEPT:
                        self._ids.popitem(last=False)
            self.run.send(cmd)
            return {"ok": True}
        return {"ok": True, "run": self.run.run_name, "step": self.run.step_count, "paused": self.run.paused}

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

