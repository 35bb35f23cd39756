"""Session logs: one JSON Lines file per run, written as it happens and read back later.

A session log is UTF-8 JSON Lines, one event per line (``Event.to_dict()``),
and its first line is the :class:`~bitnet_model.events.RunStarted` header. The
file is append-only: :class:`SessionWriter` never truncates or rewrites a byte.
A log whose last event is not ``run_ended`` belongs to a run that crashed or is
still running.

- :class:`SessionWriter` subscribes to a trainer and writes every event.
- :func:`read_session` reads a whole log, tolerating damage it can survive
  (a cut-off last line, malformed lines) and refusing what is not a session
  with one sentence (:class:`SessionError`).
- :class:`Follower` tails a growing log for ``watch``.
- :func:`sessions_dir`, :func:`session_name`, :func:`new_session_path`,
  :func:`checkpoint_dir` and :func:`resolve_session` say where logs live.
- :func:`safe_text` makes text read from a log safe to print on a terminal.

No pickle: logs are data, never code.
"""

from __future__ import annotations

import errno
import json
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from bitnet_model.config import RunConfig, TrainConfig
from bitnet_model.events import (
    SCHEMA_VERSION,
    Alert,
    CheckpointSaved,
    Event,
    EventFormatError,
    Intervention,
    RunEnded,
    RunStarted,
    StepDone,
    event_from_dict,
)

try:  # POSIX advisory locks tell a running writer from a crashed one.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

SESSIONS_ENV = "BITNET_TUI_SESSIONS"
"""Environment variable naming the sessions directory."""
SUFFIX = ".jsonl"
MAX_LINE_BYTES = 1 << 20
"""Lines longer than this are counted as malformed and skipped without being loaded whole."""
RECENT_WRITE_S = 60.0
"""Fallback when file locks cannot tell: a log without run_ended modified this recently is "running"."""
PENDING_LIMIT_BYTES = 64 << 20
"""While writes fail, unwritten lines wait in memory up to this size; later events are dropped and counted."""
FSYNC_KINDS = frozenset({RunStarted.kind, Alert.kind, Intervention.kind, CheckpointSaved.kind, RunEnded.kind})
"""Events after which the log is forced to disk: the ones a crash must not lose."""

STATUS_FINISHED = "finished"
STATUS_RUNNING = "running"
STATUS_CRASHED = "crashed"


class SessionError(ValueError):
    """A file cannot be used as a session log. The message is one user-facing sentence."""


class SessionWriteError(OSError):
    """Writing the session log failed (disk full, permissions, a vanished disk)."""


# --------------------------------------------------------------------------- safe text

_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_CONTROL_NL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape_char(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def safe_text(value: Any, *, newlines: bool = True, limit: int | None = None) -> str:
    """``str(value)`` with terminal control characters made visible, ready to print literally.

    ESC and every other C0/C1 control (so ANSI CSI and OSC sequences), DEL,
    bidirectional overrides and lone surrogates become ``\\x1b``-style escapes;
    tab and newline are kept (newline too becomes ``\\x0a`` with ``newlines=False``,
    for one-line messages). Idempotent. It does not escape Rich markup: wrap the
    result in ``rich.text.Text`` or pass it through ``rich.markup.escape``.
    """
    s = value if isinstance(value, str) else str(value)
    if limit is not None and len(s) > limit:
        s = s[:limit] + "…"
    return (_CONTROL_RE if newlines else _CONTROL_NL_RE).sub(_escape_char, s)


def _shown(path: str | os.PathLike[str]) -> str:
    return safe_text(os.fspath(path), newlines=False, limit=500)


# --------------------------------------------------------------------------- where

def sessions_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The sessions directory: the explicit flag, else ``$BITNET_TUI_SESSIONS``, else ``./sessions``."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(SESSIONS_ENV)
    if env:
        return Path(env).expanduser()
    return Path("sessions")


def _num(v: float) -> str:
    """1.5e-3 -> "1.5e-3", 5e-4 -> "5e-4", 0.1 -> "0.1", 1.0 -> "1"."""
    v = float(v)
    if v != 0 and (abs(v) < 0.01 or abs(v) >= 1e4):
        mant, exp = f"{v:.6e}".split("e")
        mant = mant.rstrip("0").rstrip(".")
        return f"{mant}e{int(exp)}"
    return f"{v:.6g}"


def session_name(cfg: RunConfig, now: datetime) -> str:
    """A readable file stem: start time, width, peak LR, then whatever differs from the defaults.

    ``2026-11-24T10-31-05_h256_lr1.5e-3``; suffixes ``_nq`` (full precision),
    ``_ls0.1``, ``_clip0.1``, ``_stage1`` (a non-default schedule), ``_seed3``.
    """
    t, dflt = cfg.train, TrainConfig()
    parts = [now.strftime("%Y-%m-%dT%H-%M-%S"), f"h{cfg.model.hidden}", f"lr{_num(t.peak_lr)}"]
    if not cfg.model.quant:
        parts.append("nq")
    if t.label_smoothing != dflt.label_smoothing:
        parts.append(f"ls{_num(t.label_smoothing)}")
    if t.grad_clip != dflt.grad_clip:
        parts.append(f"clip{_num(t.grad_clip)}")
    if t.schedule != dflt.schedule:
        parts.append(t.schedule)
    if t.seed != dflt.seed:
        parts.append(f"seed{t.seed}")
    return "_".join(parts)


def new_session_path(directory: str | os.PathLike[str], cfg: RunConfig, now: datetime | None = None) -> Path:
    """Create (O_EXCL) and return a new, empty log file in ``directory``; never reuses a name.

    Two runs started in the same second get ``name.jsonl`` and ``name-2.jsonl``.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    stem = session_name(cfg, now or datetime.now())
    for n in range(1, 10_000):
        path = d / (stem + (f"-{n}" if n > 1 else "") + SUFFIX)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise SessionError(f"cannot find a free session name for {stem} in {_shown(d)}")


def checkpoint_dir(log_path: str | os.PathLike[str]) -> Path:
    """Where a run's checkpoints go: beside its log, ``<log without .jsonl>.ckpt/``."""
    p = Path(log_path)
    return p.with_name(p.name.removesuffix(SUFFIX) + ".ckpt")


def list_sessions(directory: str | os.PathLike[str]) -> list[Path]:
    """The ``*.jsonl`` files of a sessions directory, by name (names start with the start time)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.name.endswith(SUFFIX) and not p.name.startswith("."))


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
            raise SessionError(f"there are no sessions in {_shown(d)}")
        return max(found, key=lambda p: (_mtime(p), p.name))
    p = Path(arg).expanduser()
    if p.exists():
        return p
    if os.sep not in arg and (os.altsep is None or os.altsep not in arg):
        for cand in (d / arg, d / (arg + SUFFIX)):
            if cand.exists():
                return cand
        matches = [c for c in list_sessions(d) if c.name.startswith(arg)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(_shown(c.name) for c in matches[:5]) + (", …" if len(matches) > 5 else "")
            raise SessionError(
                f"{_shown(arg)} matches {len(matches)} sessions in {_shown(d)} ({names}); give more of the name"
            )
    raise SessionError(f"{_shown(arg)} does not exist")


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


# --------------------------------------------------------------------------- writing

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
                            errno.EEXIST, f"{_shown(self.path)} is being written by another run"
                        ) from None
                    # a file system without locks: carry on without one
            if os.fstat(fd).st_size > 0:
                raise FileExistsError(errno.EEXIST, f"{_shown(self.path)} already holds a session; refusing to append")
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
                raise ValueError(f"session log {_shown(self.path)} is closed")
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
        self.error = SessionWriteError(e.errno, f"cannot write session log {_shown(self.path)}: {reason}")
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
                    f"session log {_shown(self.path)} is incomplete ({lost})",
                )

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def writer_lock_held(path: str | os.PathLike[str]) -> bool | None:
    """True if a live :class:`SessionWriter` holds the log, False if none does, None if it cannot tell."""
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
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


# --------------------------------------------------------------------------- reading

def _reject_constant(name: str) -> Any:
    raise ValueError(f"bare {name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
"""Strict: NaN/Infinity must be the strings the writer uses, never bare JSON extensions."""


def _loads(raw: bytes) -> Any:
    try:
        return _DECODER.decode(raw.decode("utf-8"))
    except RecursionError:  # e.g. 100000 "[": too deeply nested to be an event
        raise ValueError("JSON nested too deeply") from None


_STEP_KEYS = frozenset(("kind", "step", "time", "loss", "lr", "weight_decay", "grad_norm", "tokens_per_s", "stage"))
_NUMBER = frozenset((int, float))
_new = object.__new__
_set = object.__setattr__


def decode_event(raw: bytes) -> Event:
    """One log line (bytes, without the newline) to an event. Raises ``ValueError``
    (``EventFormatError`` or a JSON/Unicode error)."""
    d = _loads(raw)
    # Fast path for the line that makes up almost all of a log: same checks as event_from_dict
    # for plain numbers, and the frozen (slotted) dataclass filled without running its __init__.
    if type(d) is dict and d.get("kind") == "step" and d.keys() == _STEP_KEYS:
        step, stage = d["step"], d["stage"]
        t, loss, lr, wd, gn, tps = d["time"], d["loss"], d["lr"], d["weight_decay"], d["grad_norm"], d["tokens_per_s"]
        num = _NUMBER
        if (
            type(step) is int and type(stage) is int and type(t) in num and type(loss) in num
            and type(lr) in num and type(wd) in num and type(gn) in num and type(tps) in num
        ):
            ev = _new(StepDone)
            _set(ev, "step", step)
            _set(ev, "time", float(t))
            _set(ev, "loss", float(loss))
            _set(ev, "lr", float(lr))
            _set(ev, "weight_decay", float(wd))
            _set(ev, "grad_norm", float(gn))
            _set(ev, "tokens_per_s", float(tps))
            _set(ev, "stage", stage)
            return ev
    return event_from_dict(d)


def _kind_prefix(kind: str) -> bytes:
    return b'{"kind":"' + kind.encode() + b'"'


@dataclass
class SessionData:
    """Everything read from one session log."""

    path: Path
    header: RunStarted
    events: list[Event]
    """Events after the header, in file order."""
    malformed: int = 0
    """Lines that could not be read as events (skipped)."""
    truncated_last_line: bool = False
    """The last line was cut off (the writer died mid-line); it was skipped."""
    ended: bool = False
    end: RunEnded | None = None
    status: str = STATUS_CRASHED
    """finished, running or crashed: see :func:`session_status`."""
    warnings: list[str] = field(default_factory=list)
    lines: int = 0
    mtime: float = 0.0
    skipped: dict[str, int] = field(default_factory=dict)
    """Lines not decoded because their kind was in ``read_session(skip=...)``, by kind."""
    last_skipped: dict[str, Event] = field(default_factory=dict)
    """The last event of each skipped kind (decoded), e.g. the final step."""

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(SUFFIX)

    @property
    def end_reason(self) -> str | None:
        return self.end.reason if self.end else None

    def stream(self) -> list[Event]:
        """The header followed by the events: what a trainer subscriber saw."""
        return [self.header, *self.events]


def _open_for_reading(path: Path) -> BinaryIO:
    shown = _shown(path)
    try:
        if path.is_dir():
            raise SessionError(f"{shown} is a directory")
        f = open(path, "rb")  # noqa: SIM115 - returned to the caller
    except SessionError:
        raise
    except FileNotFoundError:
        raise SessionError(f"{shown} does not exist") from None
    except PermissionError:
        raise SessionError(f"{shown} cannot be read (permission denied)") from None
    except OSError as e:
        raise SessionError(f"{shown} cannot be read ({e.strerror or e})") from None
    return f


def _read_lines(f: BinaryIO, max_line: int) -> Iterator[tuple[bytes | None, bool]]:
    """Yield (line without newline, complete); ``None`` for a line over ``max_line`` (skipped unread)."""
    readline = f.readline
    while True:
        raw = readline(max_line + 1)
        if not raw:
            return
        if raw[-1:] == b"\n":
            yield raw[:-1], True
        elif len(raw) <= max_line:
            yield raw, False  # end of file without a newline
            return
        else:
            complete = False
            while True:  # skip the rest of an over-long line in bounded pieces
                chunk = readline(1 << 16)
                if not chunk:
                    break
                if chunk[-1:] == b"\n":
                    complete = True
                    break
            yield None, complete
            if not complete:
                return


def parse_header(raw: bytes | None, shown: str, complete: bool = True) -> RunStarted:
    """Check a log's first line and build its header; raises :class:`SessionError`."""
    not_session = f"{shown} is not a bitnet-tui session"
    if raw is None:
        raise SessionError(f"{not_session} (its first line is over {MAX_LINE_BYTES // (1 << 20)} MB)")
    try:
        d = _loads(raw)
    except ValueError:
        if not complete and raw.lstrip().startswith(b'{"kind":"run_started"'):
            raise SessionError(f"{shown} has an incomplete header (the run stopped while starting)") from None
        raise SessionError(f"{not_session} (its first line is not JSON)") from None
    if not isinstance(d, dict) or d.get("kind") != RunStarted.kind:
        raise SessionError(f"{not_session} (its first line is not a run_started event)")
    schema = d.get("schema")
    if schema != SCHEMA_VERSION:
        shown_schema = safe_text(json.dumps(schema), newlines=False, limit=40)
        raise SessionError(
            f"{shown} was written by schema version {shown_schema}; this bitnet-tui reads version {SCHEMA_VERSION}"
        )
    try:
        header = event_from_dict(d)
    except EventFormatError as e:
        raise SessionError(f"{shown} has a damaged header ({safe_text(e, newlines=False)})") from None
    assert isinstance(header, RunStarted)
    return header


def _skip_blank(lines: Iterator[tuple[bytes | None, bool]]) -> tuple[bytes | None, bool, int] | None:
    for n, (raw, complete) in enumerate(lines, 1):
        if raw is None or raw.strip():
            return raw, complete, n
    return None


def read_session(
    path: str | os.PathLike[str], *, skip: Collection[str] = (), max_line: int = MAX_LINE_BYTES
) -> SessionData:
    """Read a whole session log. Raises :class:`SessionError` when the file is not a usable session.

    Survivable damage is counted and described in ``warnings``: malformed lines
    (skipped), a cut-off last line, lines over ``max_line`` bytes (skipped
    without being loaded), events after run_ended.

    ``skip`` names event kinds not to decode (e.g. ``("step", "weights")`` for a
    summary of a long run): their lines are only counted in ``skipped``, and the
    last one of each kind is decoded into ``last_skipped``. Lines are recognised
    by the prefix the writer puts first (``{"kind":"step"``); skipped lines are
    not validated.
    """
    p = Path(path)
    shown = _shown(p)
    with _open_for_reading(p) as f:
        try:
            st = os.fstat(f.fileno())
            lines = _read_lines(f, max_line)
            first = _skip_blank(lines)
            if first is None:
                raise SessionError(f"{shown} is empty")
            raw, complete, lineno = first
            header = parse_header(raw, shown, complete)
            events: list[Event] = []
            append = events.append
            bad: list[str] = []
            malformed = 0
            truncated = False
            end: RunEnded | None = None
            after_end = 0
            prefixes = tuple(_kind_prefix(k) for k in skip)
            skipped: dict[str, int] = {}
            last_raw: dict[str, bytes] = {}
            for raw, complete in lines:
                lineno += 1
                if raw is None:
                    malformed += 1
                    if len(bad) < 5:
                        bad.append(f"line {lineno} is over {max_line} bytes")
                    continue
                if prefixes and complete and raw.startswith(prefixes):
                    kind = raw[9 : raw.index(b'"', 9)].decode()
                    skipped[kind] = skipped.get(kind, 0) + 1
                    last_raw[kind] = raw
                    continue
                try:
                    ev = decode_event(raw)
                except ValueError as e:
                    if not complete:
                        truncated = True
                        continue
                    if not raw.strip():
                        continue
                    malformed += 1
                    if len(bad) < 5:
                        bad.append(f"line {lineno}: {safe_text(e, newlines=False, limit=120)}")
                    continue
                if ev.kind == RunStarted.kind:
                    malformed += 1
                    if len(bad) < 5:
                        bad.append(f"line {lineno}: a second run_started event")
                    continue
                if end is not None:
                    after_end += 1
                if ev.kind == RunEnded.kind:
                    end = ev  # type: ignore[assignment]
                append(ev)
        except OSError as e:
            raise SessionError(f"{shown} cannot be read ({e.strerror or e})") from None
    last_skipped: dict[str, Event] = {}
    for kind, raw in last_raw.items():
        try:
            last_skipped[kind] = decode_event(raw)
        except ValueError:
            malformed += 1
    warnings: list[str] = []
    if truncated:
        warnings.append(f"{shown}: the last line is incomplete (the run was cut off while writing); it was skipped")
    if malformed:
        more = f"; and {malformed - len(bad)} more" if malformed > len(bad) else ""
        plural = "s" if malformed != 1 else ""
        warnings.append(f"{shown}: {malformed} malformed line{plural} skipped ({'; '.join(bad)}{more})")
    if after_end:
        warnings.append(f"{shown}: {after_end} event{'s' if after_end != 1 else ''} after run_ended")
    ended = end is not None
    status = session_status(ended, None if ended else writer_lock_held(p), st.st_mtime)
    return SessionData(
        path=p, header=header, events=events, malformed=malformed, truncated_last_line=truncated,
        ended=ended, end=end, status=status, warnings=warnings, lines=lineno, mtime=st.st_mtime,
        skipped=skipped, last_skipped=last_skipped,
    )


class Follower:
    """Tails a growing session log: :meth:`poll` returns the events completed since the last call.

    The first events returned start with the header. A file that does not
    exist yet, or has no complete first line yet, gives ``[]``. A partial last
    line is kept until its newline arrives. A first line that is not a session
    header, or a file that shrinks, raises :class:`SessionError`. Malformed lines
    are counted in :attr:`malformed` and skipped.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_line: int = MAX_LINE_BYTES, max_read: int = 8 << 20):
        self.path = Path(path)
        self.max_line = max_line
        self.max_read = max_read
        """Bytes read per poll at most, so one poll of a big log stays short; the rest comes next poll."""
        self.header: RunStarted | None = None
        self.ended = False
        self.malformed = 0
        self._offset = 0
        self._partial = bytearray()
        self._skipping = False  # inside an over-long line

    def poll(self) -> list[Event]:
        shown = _shown(self.path)
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self._offset:
                    raise SessionError(f"{shown} shrank while being watched (it was truncated or replaced)")
                f.seek(self._offset)
                data = f.read(min(self.max_read, size - self._offset))
        except FileNotFoundError:
            if self._offset:
                raise SessionError(f"{shown} was deleted while being watched") from None
            return []
        except IsADirectoryError:
            raise SessionError(f"{shown} is a directory") from None
        except OSError as e:
            raise SessionError(f"{shown} cannot be read ({e.strerror or e})") from None
        self._offset += len(data)
        out: list[Event] = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            piece = data[start:nl]
            start = nl + 1
            if self._skipping:
                self._skipping = False
                self._partial.clear()
                continue
            if len(self._partial) + len(piece) > self.max_line:
                self._partial.clear()
                self._line(None, shown, out)
                continue
            if self._partial:
                self._partial += piece
                raw = bytes(self._partial)
                self._partial.clear()
            else:
                raw = piece
            self._line(raw, shown, out)
        rest = data[start:]
        if not self._skipping and rest:
            self._partial += rest
            if len(self._partial) > self.max_line:
                self._partial.clear()
                self._skipping = True
                self._line(None, shown, out)
        return out

    def _line(self, raw: bytes | None, shown: str, out: list[Event]) -> None:
        if self.header is None:
            if raw is not None and not raw.strip():
                return
            self.header = parse_header(raw, shown)
            out.append(self.header)
            return
        if raw is None:
            self.malformed += 1
            return
        if not raw.strip():
            return
        try:
            ev = decode_event(raw)
        except ValueError:
            self.malformed += 1
            return
        if ev.kind == RunStarted.kind:
            self.malformed += 1
            return
        if ev.kind == RunEnded.kind:
            self.ended = True
        out.append(ev)

