"""Unix-socket plumbing with the owner check: who is at the other end, and where a socket may live.

The control socket is created 0600 (under a 077 umask) in a directory nobody else can write to (or a
sticky one), and each connection's peer uid is checked with ``SO_PEERCRED`` where the platform has it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

from bitnet_tui.session.errors import SentenceOSError, UserError
from bitnet_tui.session.log.paths import SUFFIX
from bitnet_tui.session.text import shown_path


class ControlError(UserError, SentenceOSError):
    """The control channel cannot be served or reached. The message is one user-facing sentence."""


NO_ANSWER = 3
"""``ctl``'s exit status when a request was sent and no answer came (the README's exit-code table)."""


class NoAnswer(ControlError):
    """A request reached the run's socket but no answer came in time: the process may be stopped (SIGSTOP, a
    suspended job) or busy, and the request, queued in the socket, may still be applied when it runs again.
    Not 'nothing was started', so its own exit status."""

    exit_code = NO_ANSWER


def control_path(log_path: str | os.PathLike[str]) -> Path:
    """The control socket of a run: beside its log, ``<log without .jsonl>.sock``."""
    p = Path(log_path)
    return p.with_name(p.name.removesuffix(SUFFIX) + ".sock")


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
def socket_address(path: Path) -> Iterator[str]:
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
        raise ControlError(e.errno, f"cannot use {shown_path(directory)} for a control socket ({e.strerror})") from None
    if st.st_uid not in (os.geteuid(), 0):
        raise ControlError(errno.EPERM, f"{shown_path(directory)} belongs to another user; no control socket there")
    if st.st_mode & (stat.S_IWOTH | stat.S_IWGRP) and not st.st_mode & stat.S_ISVTX:
        raise ControlError(errno.EPERM, f"{shown_path(directory)} is writable by other users; no control socket there")


def is_live(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        with socket_address(path) as a:
            s.connect(a)
        return True
    except OSError:
        return False
    finally:
        s.close()



def check_socket_path(path: Path) -> None:
    """Before a run starts: its socket may go at ``path`` (a safe directory; nothing there but a stale socket of
    ours). Raises :class:`ControlError` with one sentence."""
    check_directory(path.parent)
    if not os.path.lexists(path):
        return
    st = os.lstat(path)
    if not stat.S_ISSOCK(st.st_mode):
        raise ControlError(errno.EEXIST, f"{shown_path(path)} exists and is not a socket; not replacing it")
    if st.st_uid != os.geteuid():
        raise ControlError(errno.EPERM, f"{shown_path(path)} belongs to another user; not replacing it")
