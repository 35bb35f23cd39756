"""A logged run by position, for replay: every event reachable by its index without holding them all.

Replay moves back and forth through a whole log, so it needs each event by its place in the log. An event
object costs about 380 bytes, a 2,000,000-event log 760 MB. :class:`LogIndex` keeps, per event, the byte
offset of its line, its logged time and the running maximum of the logged steps (24 bytes), and reads the
events back from the file, decoded as :func:`~bitnet_tui.session.log.reader.read_session` decoded them, when
they are wanted. :class:`EventList` is the same view over events already in memory.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from array import array
from collections.abc import Callable, Iterator, Sequence
from itertools import accumulate
from typing import BinaryIO

from bitnet_tui.session.log.events import Alert, Event, Intervention, RunStarted
from bitnet_tui.session.log.reader import MAX_LINE_BYTES, SessionData, decode_event, open_regular, scan_session


class Positions(ABC):
    """What a replay reads of a log by position (index 0 is the header): its length, each event's logged time,
    the running maximum of the steps (sorted, so a seek can bisect), where the alerts and interventions are,
    and the events of a range, in order."""

    steps: Sequence[int]
    alerts: list[int]
    interventions: list[int]

    @abstractmethod
    def __len__(self) -> int:
        ...

    @abstractmethod
    def time(self, i: int) -> float:
        ...

    @abstractmethod
    def between(self, start: int, stop: int) -> Iterator[Event]:
        ...

    def __getitem__(self, i: int) -> Event:
        """One event by its position (negative: from the end)."""
        n = len(self)
        j = i + n if i < 0 else i
        for ev in self.between(j, j + 1) if 0 <= j < n else ():
            return ev
        raise IndexError(i)

    @abstractmethod
    def close(self) -> None:
        """Let go of what the events are read from."""


class EventList(Positions):
    """Positions over a list of events (header first)."""

    def __init__(self, events: Sequence[Event]) -> None:
        self.events = list(events)
        self.steps = list(accumulate((e.step for e in self.events), max))
        self.alerts = [i for i, e in enumerate(self.events) if isinstance(e, Alert)]
        self.interventions = [i for i, e in enumerate(self.events) if isinstance(e, Intervention)]

    def close(self) -> None:
        """Nothing to let go of: the events are in memory."""

    def __len__(self) -> int:
        return len(self.events)

    def time(self, i: int) -> float:
        return self.events[i].time

    def between(self, start: int, stop: int) -> Iterator[Event]:
        return iter(self.events[start:stop])


class LogIndex(Positions):
    """Positions over a session log's file, built in one reading of it (``sink`` is given every event of that
    reading, header first, e.g. to fold the whole run at once). Raises
    :class:`~bitnet_tui.session.log.errors.SessionError` as :func:`~bitnet_tui.session.log.reader.read_session`
    does; :attr:`data` is what that reading counted (warnings, status), without the events."""

    def __init__(self, path: str | os.PathLike[str], *, sink: Callable[[Event], object] | None = None,
                 max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self.offsets = array("q", [-1])
        self.times = array("d")
        self.steps = array("q")
        self.alerts, self.interventions = [], []
        self.header: RunStarted | None = None
        offsets, times, steps = self.offsets.append, self.times.append, self.steps.append
        top = 0

        def on_header(h: RunStarted) -> None:
            nonlocal top
            self.header, top = h, h.step
            times(h.time)
            steps(top)
            if sink is not None:
                sink(h)

        def each(at: int, ev: Event) -> None:
            nonlocal top
            if ev.step > top:
                top = ev.step
            offsets(at)
            times(ev.time)
            steps(top)
            if isinstance(ev, (Alert, Intervention)):
                (self.alerts if isinstance(ev, Alert) else self.interventions).append(len(self.times) - 1)
            if sink is not None:
                sink(ev)

        self.data: SessionData = scan_session(path, each, max_line=max_line, on_header=on_header)
        self._file: BinaryIO = open_regular(self.data.path)

    def __len__(self) -> int:
        return len(self.times)

    def time(self, i: int) -> float:
        return self.times[i]

    def between(self, start: int, stop: int) -> Iterator[Event]:
        """The events ``start`` to ``stop - 1``, read back from the file. A line that no longer decodes (the file
        was rewritten in place since it was indexed) is left out."""
        f, offsets, limit = self._file, self.offsets, self.max_line + 1
        pos = -1
        for i in range(max(0, start), min(stop, len(self.times))):
            if i == 0:
                assert self.header is not None
                yield self.header
                continue
            at = offsets[i]
            if at != pos:
                f.seek(at)
            raw = f.readline(limit)
            pos = at + len(raw)
            try:
                yield decode_event(raw[:-1] if raw[-1:] == b"\n" else raw)
            except ValueError:
                continue

    def close(self) -> None:
        self._file.close()
