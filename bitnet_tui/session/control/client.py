"""Talking to a run's control socket from another process: one request, one reply."""

from __future__ import annotations

import errno
import json
import os
import socket
from pathlib import Path
from typing import Any

from bitnet_tui.session.control.peer import ControlError, NoAnswer, peer_uid, socket_address
from bitnet_tui.session.text import shown_path


def request(path: str | os.PathLike[str], req: dict[str, Any], *, timeout: float = 5.0) -> dict[str, Any]:
    """Send one request to a control socket and return its reply. Raises :class:`ControlError`."""
    p = Path(path)
    try:
        line = (json.dumps(req, allow_nan=False) + "\n").encode()
    except (ValueError, TypeError):  # e.g. ctl set-lr 1e400: infinity is not JSON, nor a value a run takes
        raise ControlError(errno.EINVAL, f"cannot send {str(req.get('cmd'))[:40]}: every value must be a finite "
                                         "number or text") from None
    buf = exchange(p, line, timeout=timeout)
    try:
        reply = json.loads(buf.split(b"\n", 1)[0].decode("utf-8"))
    except ValueError:
        reply = None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise ControlError(errno.EPROTO, f"{shown_path(p)} gave a reply that is not from a bitnet-tui run")
    return reply


def exchange(path: str | os.PathLike[str], line: bytes, *, timeout: float = 5.0) -> bytes:
    """Send ``line`` as it is (no checks on its content) and return what the server answers, up to its first
    newline (64 KiB at most). Only a socket served by this user's processes is spoken to.

    No answer within ``timeout`` once the line was sent raises :class:`NoAnswer`: the line waits in the socket and
    a stopped process reads it when it runs again (a request's ``id`` lets a retry be recognised, not applied
    twice). A timeout before anything was sent is a plain :class:`ControlError`: nothing will be applied."""
    p = Path(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    sent = False
    try:
        try:
            with socket_address(p) as a:
                s.connect(a)
        except FileNotFoundError:
            raise ControlError(errno.ENOENT, f"{shown_path(p)} does not exist: the run is not running with a "
                                             "control channel (it ended, or was started with --no-control)") from None
        except ConnectionRefusedError:
            raise ControlError(errno.ECONNREFUSED, f"nothing is serving {shown_path(p)}: the run's process is gone") \
                from None
        except PermissionError:
            raise ControlError(errno.EACCES, f"{shown_path(p)} belongs to another user") from None
        uid = peer_uid(s)
        if uid is not None and uid != os.geteuid():
            raise ControlError(errno.EPERM, f"{shown_path(p)} is served by another user's process; not talking to it")
        try:
            sent = True
            s.sendall(line)
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
        if sent:
            raise NoAnswer(errno.ETIMEDOUT, f"no answer from {shown_path(p)} within {timeout:g} s; the command may "
                                            "still be applied when the process runs again") from None
        raise ControlError(errno.ETIMEDOUT, f"{shown_path(p)} did not take the connection within {timeout:g} s; "
                                            "nothing was sent") from None
    except ControlError:
        raise
    except OSError as e:
        raise ControlError(e.errno, f"control socket {shown_path(p)} failed ({e.strerror or e})") from None
    finally:
        s.close()
    return buf

