"""Where session logs live and what they are called.

:func:`sessions_dir`, :func:`session_name`, :func:`new_session_path`, :func:`checkpoint_dir`,
:func:`list_sessions` and :func:`resolve_session` (a user's SESSION argument to a path).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

from bitnet_tui.session.log.errors import SessionError
from bitnet_tui.session.text import shown_path

SESSIONS_ENV = "BITNET_TUI_SESSIONS"
"""Environment variable naming the sessions directory."""
SUFFIX = ".jsonl"
SIBLINGS = (".ckpt", ".sock", ".out", ".ranks")
"""Files a run keeps beside its log, named after it."""

def sessions_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The sessions directory: the explicit flag, else ``$BITNET_TUI_SESSIONS``, else ``./sessions``."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(SESSIONS_ENV)
    if env:
        return Path(env).expanduser()
    return Path("sessions")




def new_session_path(directory: str | os.PathLike[str], stem: str) -> Path:
    """Create (O_EXCL, never through a symlink) and return a new, empty log file in ``directory``; never reuses a
    name. Two runs started in the same second get ``name.jsonl`` and ``name-2.jsonl``. The run's other files
    (``.ckpt/``, ``.sock``, ``.out``) are named after it, so its name is claimed before any of them exist."""
    from bitnet_tui.session.safefs import check_writable_dir

    d = check_writable_dir(directory, "sessions directory")
    for n in range(1, 10_000):
        path = d / (stem + (f"-{n}" if n > 1 else "") + SUFFIX)
        if any(os.path.lexists(path.with_name(path.name.removesuffix(SUFFIX) + s)) for s in SIBLINGS):
            continue  # another run's (or a planted) sibling holds this name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except FileExistsError:
            continue
        except OSError as e:
            raise SessionError(f"cannot create a session log in {shown_path(d)} ({e.strerror})") from None
        os.close(fd)
        return path
    raise SessionError(f"cannot find a free session name for {stem} in {shown_path(d)}")


def short_name(name: str) -> str:
    """``2026-11-24T10-31-05_h256_lr1.5e-3[.jsonl]`` -> ``h256_lr1.5e-3``: what the run is, without when it started
    (narrow terminals; tables with a start-time column)."""
    base = name.removesuffix(SUFFIX)
    head, sep, rest = base.partition("_")
    return rest if sep and len(head) == 19 and head[4] == "-" and head[10] == "T" else base


def checkpoint_dir(log_path: str | os.PathLike[str]) -> Path:
    """Where a run's checkpoints go: beside its log, ``<log without .jsonl>.ckpt/``."""
    p = Path(log_path)
    return p.with_name(p.name.removesuffix(SUFFIX) + ".ckpt")


def list_sessions(directory: str | os.PathLike[str]) -> list[Path]:
    """The ``*.jsonl`` files of a sessions directory, by name (names start with the start time). A directory that
    cannot be read is a :class:`SessionError`."""
    d = Path(directory)
    try:
        if not d.is_dir():
            return []
        names = os.listdir(d)
    except OSError as e:
        raise SessionError(f"{shown_path(d)} cannot be read ({e.strerror or e})") from None
    return sorted(d / n for n in names if n.endswith(SUFFIX) and not n.startswith("."))


def _exists(p: Path) -> bool:
    try:
        return p.exists()
    except OSError as e:  # a directory on the way that cannot be searched
        raise SessionError(f"{shown_path(p)} cannot be read ({e.strerror or e})") from None


def resolve_session(arg: str, directory: str | os.PathLike[str]) -> Path:
    """Turn a user's SESSION argument into a path.

    Accepts a path, a file name in the sessions directory (with or without
    ``.jsonl``), a unique prefix of one, or ``latest`` (the log modified most
    recently). Raises :class:`SessionError`.
    """
    d = Path(directory)
    if arg == "latest":
        found = list_sessions(d)
        if not found:
            raise SessionError(f"there are no sessions in {shown_path(d)}")
        return latest_of(found)
    p = Path(arg).expanduser()
    if _exists(p):
        return p
    if os.sep not in arg and (os.altsep is None or os.altsep not in arg):
        for cand in (d / arg, d / (arg + SUFFIX)):
            if _exists(cand):
                return cand
        matches = [c for c in list_sessions(d) if c.name.startswith(arg)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(shown_path(c.name) for c in matches[:5]) + (", …" if len(matches) > 5 else "")
            raise SessionError(
                f"{shown_path(arg)} matches {len(matches)} sessions in {shown_path(d)} ({names}); give more of the name"
            )
    raise SessionError(f"{shown_path(arg)} does not exist")


STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2})")
"""The start time every session name begins with (``2026-12-03T13-09-21_h256...``)."""


def latest_of(found: list[Path]) -> Path:
    """The session started last (by the start time its name begins with; a name without one counts by its
    last write). Two started in the same second are ambiguous: an error naming both, never a guess (``ctl latest``
    must not steer the wrong run)."""
    def started(p: Path) -> str:
        m = STAMP.match(p.name)
        return m.group(1) if m else time.strftime("%Y-%m-%dT%H-%M-%S", time.localtime(_mtime(p)))

    ranked = sorted(found, key=lambda p: (started(p), _mtime(p)), reverse=True)
    if len(ranked) > 1 and started(ranked[0]) == started(ranked[1]):
        same = [p for p in ranked if started(p) == started(ranked[0])]
        names = ", ".join(shown_path(p.name.removesuffix(SUFFIX)) for p in same[:4])
        raise SessionError(f"latest is ambiguous: {len(same)} sessions started at {started(ranked[0])} ({names}); "
                           "give more of the name")
    return ranked[0]


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def list_checkpoints(ckpt_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoints in a run's checkpoint directory (``stepNNNNNNNN*``), by step."""
    d = Path(ckpt_dir)
    out = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(d):
            name = entry.name
            if not name.startswith("step") or name.endswith(".tmp") or entry.is_symlink():
                continue
            digits = name[4:12]
            if digits.isdigit():
                out.append((int(digits), Path(entry.path)))
    return sorted(out)
