"""Following a session log that another process is still writing (``watch``, ``attach``, ``sweep``)."""

from __future__ import annotations

import os
from pathlib import Path

from bitnet_tui.session.log.errors import LogReplaced, SessionError
from bitnet_tui.session.log.events import Event, RunEnded, RunStarted
from bitnet_tui.session.log.reader import MAX_LINE_BYTES, decode_event, open_regular, parse_header
from bitnet_tui.session.text import shown_path


class Follower:
    """Tails a growing session log: :meth:`poll` returns the events completed since the last call.

    The first events returned start with the header. A file that does not
    exist yet, or has no complete first line yet, gives ``[]``. A partial last
    line is kept until its newline arrives. A first line that is not a session
    header raises :class:`SessionError`. Malformed lines are counted in
    :attr:`malformed` and skipped.

    As ``tail -F`` does, every poll checks that the path is still the file it
    has been reading (device and inode) and that it has not shrunk: a log
    replaced by another file (another run's, written to the same name) or
    truncated raises :class:`LogReplaced` before anything of the new file is
    read, so two runs are never mixed; a caller that wants the new file starts
    a new Follower.
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
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the file being read

    def poll(self) -> list[Event]:
        shown = shown_path(self.path)
        try:
            f = open_regular(self.path)
        except SessionError:
            if not self.path.exists() and not self.path.is_symlink():
                if self._offset:
                    raise SessionError(f"{shown} was deleted while being watched") from None
                return []
            raise
        try:
            with f:
                st = os.fstat(f.fileno())
                size, ident = st.st_size, (st.st_dev, st.st_ino)
                if self._offset and ident != self._ident:
                    raise LogReplaced(f"{shown} was replaced by another file while being watched")
                if size < self._offset:
                    raise LogReplaced(f"{shown} shrank while being watched (it was truncated or replaced)")
                self._ident = ident
                f.seek(self._offset)
                data = f.read(min(self.max_read, size - self._offset))
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

