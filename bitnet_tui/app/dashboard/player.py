"""Replay: a cursor over a logged run, played at 1x, 10x, 100x or as fast as possible.

Replay and live share everything after the events: the player applies logged events to a
:class:`~bitnet_tui.app.dashboard.feed.Feed` exactly as the live path does. The events are reached by
position (:mod:`bitnet_tui.session.log.index`): a log's are read back from its file, never held all at once.
"""

from __future__ import annotations

import bisect
import math
import pickle
from collections.abc import Callable, Sequence

from bitnet_tui.app.dashboard.feed import CAPACITY, Feed
from bitnet_tui.session.log.events import Event
from bitnet_tui.session.log.index import EventList, Positions

SPEEDS: dict[str, float] = {"1": 1.0, "2": 10.0, "3": 100.0, "0": math.inf}


class Checkpoints:
    """Pickled copies of the feed every ``every`` events, so that a seek backwards rebuilds from the nearest one
    instead of the start. At most ``most`` are kept: past that, every other one goes and the spacing doubles (a
    long log keeps ``most`` / 2 to ``most``, each the feed's bounded series and the run's evals so far)."""

    def __init__(self, every: int = 4096, most: int = 32) -> None:
        self.every, self.most = every, most
        self.at: list[int] = []
        self.blobs: list[bytes] = []

    def passed(self, cursor: int, feed: Feed) -> None:
        """The feed has every event before ``cursor`` applied: keep it if ``cursor`` is a checkpoint's place."""
        if cursor % self.every or (self.at and cursor <= self.at[-1]):
            return
        history, feed.history = feed.history, None  # the parent run is the replay's, not the checkpoint's
        try:
            blob = pickle.dumps(feed, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            return  # something in the header that does not pickle: seeks rebuild from the one before
        finally:
            feed.history = history
        self.blobs.append(blob)
        self.at.append(cursor)
        if len(self.at) > self.most:
            self.every *= 2
            kept = [i for i, at in enumerate(self.at) if at % self.every == 0]
            self.at, self.blobs = [self.at[i] for i in kept], [self.blobs[i] for i in kept]

    def before(self, index: int) -> tuple[int, Feed] | None:
        """(cursor, a fresh copy of the feed there) of the last checkpoint at or before ``index``."""
        i = bisect.bisect_right(self.at, index) - 1
        return None if i < 0 else (self.at[i], pickle.loads(self.blobs[i]))


def folding(feed: Feed, checkpoints: Checkpoints) -> Callable[[Event], None]:
    """Apply each event given to ``feed``, taking ``checkpoints`` on the way (the sink of an index's reading)."""
    n = 0
    apply = feed.apply

    def fold(e: Event) -> None:
        nonlocal n
        apply(e)
        n += 1
        if n % checkpoints.every == 0:
            checkpoints.passed(n, feed)

    return fold


class Player:
    """A cursor over a logged run's events: what replay has shown so far.

    ``cursor`` is how many events have been applied to ``feed``. Moving backwards
    rebuilds the feed from the nearest checkpoint before it (the feed is append-only by design).
    """

    MAX_GAP_S = 2.0
    """A pause in the log longer than this (in replay seconds) is skipped."""

    def __init__(self, events: Sequence[Event] | Positions, *, speed: float = 1.0, capacity: int = CAPACITY,
                 folded: Feed | None = None, checkpoints: Checkpoints | None = None) -> None:
        """``folded``: a feed of every event already, with the ``checkpoints`` taken on the way (:func:`folding`)."""
        self.checkpoints = checkpoints or Checkpoints()
        self.events = events if isinstance(events, Positions) else EventList(events)
        self.speed = speed
        self.capacity = capacity
        self.playing = True
        self.feed = Feed(capacity)
        self.cursor = 0
        self.clock: float | None = None
        """Logged time the replay has reached."""
        self.steps = self.events.steps
        """Running maximum of the logged steps: sorted, so seeking can bisect."""
        self.alert_idx = self.events.alerts
        self.intervention_idx = self.events.interventions
        if folded is not None:  # every event already applied (while the log was indexed): the cursor at the end
            self.feed, self.cursor = folded, len(self.events)
            self.clock = self.events.time(self.cursor - 1) if self.cursor else None

    @property
    def at_end(self) -> bool:
        return self.cursor >= len(self.events)

    def reset(self) -> None:
        self.feed = Feed(self.capacity)
        self.cursor = 0
        self.clock = None

    def apply_to(self, index: int) -> None:
        """Apply events until ``cursor == index`` (rebuilding from the nearest checkpoint if ``index`` is behind)."""
        index = max(0, min(index, len(self.events)))
        if index < self.cursor:
            history = self.feed.history
            self.reset()
            kept = self.checkpoints.before(index)
            if kept is not None:
                self.cursor, self.feed = kept
            self.feed.history = history
        apply, between, marks = self.feed.apply, self.events.between, self.checkpoints
        while self.cursor < index:
            stop = min(index, (self.cursor // marks.every + 1) * marks.every)
            for ev in between(self.cursor, stop):
                apply(ev)
            self.cursor = stop
            marks.passed(stop, self.feed)
        if index:
            self.clock = self.events.time(index - 1)

    def tick(self, wall_dt: float, budget_events: int = 20_000) -> int:
        """Advance by ``wall_dt`` seconds of replay time; returns events applied."""
        if not self.playing or self.at_end:
            return 0
        start = self.cursor
        if math.isinf(self.speed):
            self.apply_to(self.cursor + budget_events)
            return self.cursor - start
        time = self.events.time
        if self.clock is None:
            self.clock = time(0)
        self.clock += wall_dt * self.speed
        nxt = time(self.cursor)
        if nxt - self.clock > self.MAX_GAP_S * self.speed:
            self.clock = nxt
        end = self.cursor
        limit = min(len(self.events), self.cursor + budget_events)
        while end < limit and time(end) <= self.clock:
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
