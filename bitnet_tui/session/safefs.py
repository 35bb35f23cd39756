"""Files a run creates, created safely even in a directory other users can write to (``/tmp/x``, mode 1777).

Session names are predictable, so another user could pre-create a run's checkpoint directory or plant a
symlink where a temporary file will go. Every file a run creates goes through here: directories are
made 0700 and refused when someone else owns them or can write to them; files are opened with
``O_CREAT | O_EXCL | O_NOFOLLOW`` (a planted name or symlink is an error, never followed); a file that is
replaced is written to a fresh temporary name, fsynced, renamed, and the directory fsynced.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from bitnet_tui.session.errors import UserError
from bitnet_tui.session.text import shown_path

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
TMP_SUFFIX = ".tmp"


class UnsafePathError(UserError, OSError):
    """A path a run would create is already there, or is not safely ours. One sentence."""


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Make ``path`` a directory only we can write to (0700), or check that an existing one is ours and not
    writable by others; raise :class:`UnsafePathError` otherwise (a symlink, another user's, group/world
    writable)."""
    p = Path(path)
    try:
        os.mkdir(p, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise UnsafePathError(e.errno, f"cannot create {shown_path(p)} ({e.strerror})") from None
    st = os.lstat(p)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{shown_path(p)} exists and is not a directory this run made; refusing to use it")
    if st.st_uid != os.geteuid():
        raise UnsafePathError(f"{shown_path(p)} belongs to another user; refusing to write there")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafePathError(f"{shown_path(p)} is writable by other users; refusing to write there")
    return p


def check_writable_dir(path: str | os.PathLike[str], what: str = "directory") -> Path:
    """A directory we can create files in: it exists (or can be made), is a directory, and is writable."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UnsafePathError(f"the {what} {shown_path(p)} is a file, not a directory") from None
    except OSError as e:
        raise UnsafePathError(e.errno, f"cannot create the {what} {shown_path(p)} ({e.strerror})") from None
    if not p.is_dir():
        raise UnsafePathError(f"the {what} {shown_path(p)} is not a directory")
    if not os.access(p, os.W_OK | os.X_OK):
        raise UnsafePathError(f"the {what} {shown_path(p)} is not writable")
    if not os.access(p, os.R_OK):
        raise UnsafePathError(f"the {what} {shown_path(p)} cannot be read")
    return p


def create_new(path: str | os.PathLike[str], mode: int = 0o600) -> int:
    """Open a new file for writing; an existing name (file or symlink) is an :class:`UnsafePathError`."""
    p = Path(path)
    try:
        return os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, mode)
    except FileExistsError:
        raise UnsafePathError(f"{shown_path(p)} already exists; refusing to overwrite it") from None
    except OSError as e:
        raise UnsafePathError(e.errno, f"cannot create {shown_path(p)} ({e.strerror})") from None


def fsync_dir(path: str | os.PathLike[str]) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` through a fresh temporary file (O_EXCL, no symlinks): fsync, rename, fsync the directory.
    Any failure (a full disk raises from ``write``) removes the temporary file and is re-raised."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}")
    fd = create_new(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(p.parent)
    return p


def remove_stale_tmp(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files a killed run left in one of its private directories (regular files only)."""
    removed = []
    d = Path(directory)
    with contextlib.suppress(OSError):
        for entry in os.scandir(d):
            if entry.name.endswith(TMP_SUFFIX) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def new_text_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A new file (refused if anything is already there), open for binary writing."""
    fd = create_new(path)
    with os.fdopen(fd, "wb") as f:
        yield f
