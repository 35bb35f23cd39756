"""Replay: a cursor over a logged event list, played at 1x, 10x, 100x or as fast as possible.

Replay and live share everything after the events: the player applies logged events to a
:class:`~bitnet_tui.app.dashboard.feed.Feed` exactly as the live path does.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from itertools import accumulate

from bitnet_tui.app.dashboard.feed import CAPACITY, Feed
from bitnet_tui.session.log.events import Alert, Event, Intervention

SPEEDS: dict[str, float] = {"1": 1.0, "2": 10.0, "3": 100.0, "0": math.inf}


class Player:
    """A cursor over a logged event list: what replay has shown so far.

    ``cursor`` is how many events have been applied to ``feed``. Moving backwards
    rebuilds the feed from the start (the feed is append-only by design).
    """

    MAX_GAP_S = 2.0
    """A pause in the log longer than this (in replay seconds) is skipped."""

    def __init__(self, events: Sequence[Event], *, speed: float = 1.0, capacity: int = CAPACITY) -> None:
        self.events = list(events)
        self.speed = speed
        self.capacity = capacity
        self.playing = True
        self.feed = Feed(capacity)
        self.cursor = 0
        self.clock: float | None = None
        """Logged time the replay has reached."""
        self.steps = list(accumulate((e.step for e in self.events), max))
        """Running maximum of the logged steps: sorted, so seeking can bisect."""
        self.alert_idx = [i for i, e in enumerate(self.events) if isinstance(e, Alert)]
        self.intervention_idx = [i for i, e in enumerate(self.events) if isinstance(e, Intervention)]

    @property
    def at_end(self) -> bool:
        return self.cursor >= len(self.events)

    def reset(self) -> None:
        self.feed = Feed(self.capacity)
        self.cursor = 0
        self.clock = None

    def apply_to(self, index: int) -> None:
        """Apply events until ``cursor == index`` (rebuilding if ``index`` is behind)."""
        index = max(0, min(index, len(self.events)))
        if index < self.cursor:
            self.reset()
        apply = self.feed.apply
        evs = self.events
        for i in range(self.cursor, index):
            apply(evs[i])
        self.cursor = index
        if index:
            self.clock = evs[index - 1].time

    def tick(self, wall_dt: float, budget_events: int = 20_000) -> int:
        """Advance by ``wall_dt`` seconds of replay time; returns events applied."""
        if not self.playing or self.at_end:
            return 0
        start = self.cursor
        if math.isinf(self.speed):
            self.apply_to(self.cursor + budget_events)
            return self.cursor - start
        evs = self.events
        if self.clock is None:
            self.clock = evs[0].time
        self.clock += wall_dt * self.speed
        nxt = evs[self.cursor].time
        if nxt - self.clock > self.MAX_GAP_S * self.speed:
            self.clock = nxt
        end = self.cursor
        n = len(evs)
        limit = min(n, self.cursor + budget_events)
        while end < limit and evs[end].time <= self.clock:
            end += 1
        clock = self.clock
        self.apply_to(end)
        self.clock = clock
        return self.cursor - start

    def seek_step(self, step: int) -> None:
        """Show everything logged up to and including ``step``."""
        idx = bisect.bisect_right(self.steps, step)
        self.apply_to(max(idx, 1 if self.events else 0))

    def to_start(self) -> None:
        self.apply_to(1 if self.events else 0)

    def to_end(self) -> None:
        self.apply_to(len(self.events))

    def next_mark(self, marks: list[int] | None = None) -> bool:
        """Seek to the next alert (or the next of ``marks``, event indices); False when there is none."""
        for i in self.alert_idx if marks is None else marks:
            if i >= self.cursor:
                self.apply_to(i + 1)
                return True
        return False

    def prev_mark(self, marks: list[int] | None = None) -> bool:
        for i in reversed(self.alert_idx if marks is None else marks):
            if i < self.cursor - 1:
                self.apply_to(i + 1)
                return True
        return False

    def marks(self) -> list[int]:
        """Alerts and interventions, in log order: what n/N jump between."""
        return sorted(self.alert_idx + self.intervention_idx)
