"""Reading a session log back: tolerant of damage it can survive, one sentence for what it cannot.

:func:`read_session` reads a whole log (a cut-off last line and malformed lines are counted and
skipped); :func:`decode_event` turns one line into an event; :func:`parse_header` checks a first line.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from bitnet_tui.session.log.errors import SessionError
from bitnet_tui.session.log.events import READABLE_SCHEMAS, EvalDone, Event, RunEnded, RunStarted, StepDone
from bitnet_tui.session.log.paths import SUFFIX
from bitnet_tui.session.log.schema import BIG, Decoded, EventFormatError, event_from_dict
from bitnet_tui.session.log.writer import STATUS_CRASHED, session_status, writer_lock_held
from bitnet_tui.session.text import safe_text, shown_path

MAX_LINE_BYTES = 1 << 20
"""Lines longer than this are counted as malformed and skipped without being loaded whole."""


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
_NO_EXTRA: dict[str, float] = {}
"""Shared by fast-path step events (events are never mutated)."""
_new = object.__new__
_set = object.__setattr__


def decode_event(raw: bytes, dmg: Decoded | None = None) -> Event:
    """One log line (bytes, without the newline) to an event. Raises ``ValueError`` (``EventFormatError`` or
    a JSON/Unicode error). Values out of their field's range are counted in ``dmg`` and shown as missing."""
    d = _loads(raw)
    # Fast path for the line that makes up almost all of a log: the same rules as event_from_dict for plain
    # in-range numbers, and the frozen (slotted) dataclass filled without running its __init__.
    if type(d) is dict and d.get("kind") == "step" and d.keys() == _STEP_KEYS:
        step, stage = d["step"], d["stage"]
        t, loss, lr, wd, gn, tps = d["time"], d["loss"], d["lr"], d["weight_decay"], d["grad_norm"], d["tokens_per_s"]
        num = _NUMBER
        if (
            type(step) is int and type(stage) is int and type(t) in num and type(loss) in num
            and type(lr) in num and type(wd) in num and type(gn) in num and type(tps) in num
            and 0 <= step <= BIG and 0 <= stage <= 10 and 0 <= t <= 1e11 and -1e6 <= loss <= 1e6
            and 0 <= lr <= 100 and 0 <= wd <= 1000 and 0 <= gn <= 1e30 and 0 <= tps <= 1e13
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
            _set(ev, "lr_spread", None)
            _set(ev, "mfu", None)
            _set(ev, "peak_mem_mb", None)
            _set(ev, "extra", _NO_EXTRA)
            return ev
    return event_from_dict(d, dmg)


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
    damage: int = 0
    """Values out of their field's range, shown as missing (see :mod:`bitnet_tui.session.log.schema`)."""

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(SUFFIX)

    @property
    def end_reason(self) -> str | None:
        return self.end.reason if self.end else None

    def stream(self) -> list[Event]:
        """The header followed by the events: what a trainer subscriber saw."""
        return [self.header, *self.events]


def open_regular(path: Path) -> BinaryIO:
    """Open a file for reading without ever blocking: a FIFO, a device (``/dev/zero``) or a directory is
    refused with one sentence instead of hanging the reader. Symlinks to regular files are followed."""
    shown = shown_path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise SessionError(f"{shown} does not exist") from None
    except IsADirectoryError:
        raise SessionError(f"{shown} is a directory") from None
    except PermissionError:
        raise SessionError(f"{shown} cannot be read (permission denied)") from None
    except OSError as e:
        raise SessionError(f"{shown} cannot be read ({e.strerror or e})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise SessionError(f"{shown} is {what}")
    if hasattr(os, "O_NONBLOCK"):
        os.set_blocking(fd, True)  # a regular file: blocking reads are just reads
    return os.fdopen(fd, "rb")


def _read_lines(f: BinaryIO, max_line: int) -> Iterator[tuple[bytes | None, bool, int]]:
    """Yield (line without newline, complete, byte offset of its start); ``None`` for a line over ``max_line``
    (skipped unread)."""
    readline = f.readline
    pos = f.tell()
    while True:
        raw = readline(max_line + 1)
        if not raw:
            return
        at = pos
        pos += len(raw)
        if raw[-1:] == b"\n":
            yield raw[:-1], True, at
        elif len(raw) <= max_line:
            yield raw, False, at  # end of file without a newline
            return
        else:
            complete = False
            while True:  # skip the rest of an over-long line in bounded pieces
                chunk = readline(1 << 16)
                if not chunk:
                    break
                pos += len(chunk)
                if chunk[-1:] == b"\n":
                    complete = True
                    break
            yield None, complete, at
            if not complete:
                return


def parse_header(raw: bytes | None, shown: str, complete: bool = True, dmg: Decoded | None = None) -> RunStarted:
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
    if isinstance(schema, bool) or schema not in READABLE_SCHEMAS:
        shown_schema = safe_text(json.dumps(schema)[:40], newlines=False, limit=40)
        raise SessionError(
            f"{shown} was written by schema version {shown_schema}; this bitnet-tui reads versions "
            f"{', '.join(map(str, READABLE_SCHEMAS))}"
        )
    try:
        header = event_from_dict(d, dmg)
    except EventFormatError as e:
        raise SessionError(f"{shown} has a damaged header ({safe_text(e, newlines=False)})") from None
    assert isinstance(header, RunStarted)
    return header


def _skip_blank(lines: Iterator[tuple[bytes | None, bool, int]]) -> tuple[bytes | None, bool, int] | None:
    for n, (raw, complete, _) in enumerate(lines, 1):
        if raw is None or raw.strip():
            return raw, complete, n
    return None


def metric_names(path: str | os.PathLike[str], max_line: int = MAX_LINE_BYTES) -> tuple[list[str], list[str]]:
    """The user metrics (``extra`` keys) a log's step events and eval events carry, each sorted: the columns an
    export writes before its rows. Only the lines that mention ``extra`` are decoded. Raises :class:`SessionError`
    as :func:`read_session` does for a file that is not a session."""
    p = Path(path)
    shown = shown_path(p)
    steps: set[str] = set()
    evals: set[str] = set()
    with open_regular(p) as f:
        try:
            lines = _read_lines(f, max_line)
            first = _skip_blank(lines)
            if first is None:
                raise SessionError(f"{shown} is empty")
            parse_header(first[0], shown, first[1])
            for raw, _, _ in lines:
                if raw is None or b'"extra"' not in raw:
                    continue
                try:
                    ev = decode_event(raw)
                except ValueError:
                    continue  # counted by the reading that follows
                if isinstance(ev, StepDone):
                    steps.update(ev.extra)
                elif isinstance(ev, EvalDone):
                    evals.update(ev.extra)
        except OSError as e:
            raise SessionError(f"{shown} cannot be read ({e.strerror or e})") from None
    return sorted(steps), sorted(evals)


def read_session(
    path: str | os.PathLike[str], *, skip: Collection[str] = (), max_line: int = MAX_LINE_BYTES,
    sink: Callable[[Event], object] | None = None,
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

    ``sink`` (e.g. a fold's ``apply``) is given the header, then each event as it is read, and ``events``
    stays empty: a reader that folds or writes as it goes holds no more of the log than one event.
    """
    if sink is None:
        events: list[Event] = []
        data = scan_session(path, lambda _, ev: events.append(ev), skip=skip, max_line=max_line)
        data.events = events
        return data
    return scan_session(path, lambda _, ev: sink(ev), skip=skip, max_line=max_line, on_header=sink)


def scan_session(
    path: str | os.PathLike[str], each: Callable[[int, Event], object], *, skip: Collection[str] = (),
    max_line: int = MAX_LINE_BYTES, on_header: Callable[[RunStarted], object] | None = None,
) -> SessionData:
    """:func:`read_session`'s one pass: ``on_header`` gets the header, ``each`` the byte offset of each event's
    line and the event, in file order; the :class:`SessionData` returned has no ``events``."""
    p = Path(path)
    shown = shown_path(p)
    with open_regular(p) as f:
        try:
            st = os.fstat(f.fileno())
            lines = _read_lines(f, max_line)
            first = _skip_blank(lines)
            if first is None:
                raise SessionError(f"{shown} is empty")
            raw, complete, lineno = first
            dmg = Decoded()
            header = parse_header(raw, shown, complete, dmg)
            if on_header is not None:
                on_header(header)
            bad: list[str] = []
            malformed = 0
            truncated = False
            end: RunEnded | None = None
            after_end = 0
            prefixes = tuple(_kind_prefix(k) for k in skip)
            skipped: dict[str, int] = {}
            last_raw: dict[str, bytes] = {}
            for raw, complete, at in lines:
                lineno += 1
                if raw is None:
                    malformed += 1
                    if len(bad) < 5:
                        bad.append(f"line {lineno} is over {max_line} bytes")
                    continue
                if not raw or raw.isspace():  # before the decoder: a million blank lines took it 20-40 s
                    continue
                if prefixes and complete and raw.startswith(prefixes):
                    kind = raw[9 : raw.index(b'"', 9)].decode()
                    skipped[kind] = skipped.get(kind, 0) + 1
                    last_raw[kind] = raw
                    continue
                try:
                    ev = decode_event(raw, dmg)
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
                each(at, ev)
        except OSError as e:
            raise SessionError(f"{shown} cannot be read ({e.strerror or e})") from None
    last_skipped: dict[str, Event] = {}
    for kind, raw in last_raw.items():
        try:
            last_skipped[kind] = decode_event(raw, dmg)
        except ValueError:
            malformed += 1
            bad.append(f"the last {kind} line; the {kind} lines before it are not read one by one here "
                       "(diagnose counts them)")
    warnings: list[str] = []
    if truncated:
        warnings.append(f"{shown}: the last line is incomplete (the run was cut off while writing); it was skipped")
    if malformed:
        more = f"; and {malformed - len(bad)} more" if malformed > len(bad) else ""
        plural = "s" if malformed != 1 else ""
        warnings.append(f"{shown}: {malformed} malformed line{plural} skipped ({'; '.join(bad)}{more})")
    if dmg.damage:
        warnings.append(f"{shown}: {dmg.damage} value{'s' if dmg.damage != 1 else ''} out of range, shown as missing")
    if after_end:
        warnings.append(f"{shown}: {after_end} event{'s' if after_end != 1 else ''} after run_ended")
    ended = end is not None
    status = session_status(ended, None if ended else writer_lock_held(p), st.st_mtime)
    return SessionData(
        path=p, header=header, events=[], malformed=malformed, truncated_last_line=truncated,
        ended=ended, end=end, status=status, warnings=warnings, lines=lineno, mtime=st.st_mtime,
        skipped=skipped, last_skipped=last_skipped, damage=dmg.damage,
    )
