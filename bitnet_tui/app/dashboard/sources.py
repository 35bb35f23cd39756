"""Where the dashboard's events come from: a live run, a finished log, or a log another process is writing.

The dashboard is handed one source and never branches on where events come from: it calls
:meth:`Source.tick` on its clock, draws ``source.feed``, asks ``source.can(action)`` before steering, and
runs ``source.work`` (if any) in a thread worker. Events cross from the worker thread to the UI through an
:class:`EventBuffer` (a deque: appending never blocks the training thread).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.app.dashboard.player import Checkpoints, Player, folding
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.control.handle import RunHandle
from bitnet_tui.session.log.errors import LogReplaced, SessionError
from bitnet_tui.session.log.events import Event, RunStarted
from bitnet_tui.session.log.follow import Follower
from bitnet_tui.session.log.index import LogIndex, Positions
from bitnet_tui.session.log.paths import SUFFIX, list_sessions
from bitnet_tui.session.log.reader import open_regular, read_session
from bitnet_tui.session.text import fmt_duration

LIVE_ACTIONS = frozenset({"set_lr", "scale_lr", "undo_lr", "checkpoint", "eval_now", "rewind", "steer", "decouple",
                          "set_wd", "no_decay", "undo_optim"})
"""What steers a run (``toggle_pause`` too, which replay uses for its playback)."""
REPLAY_ACTIONS = frozenset({"speed", "to_start", "to_end", "goto_step"})
"""What moves a replay's cursor."""
STALE_S = 30.0
"""In watch mode, a log silent this long without run_ended is reported as possibly crashed."""
POLL_S = 0.5


class EventBuffer:
    """Thread-safe hand-off from a producer thread to the UI: append now, drain later."""

    def __init__(self) -> None:
        self._events: deque[Event] = deque()

    def __call__(self, event: Event) -> None:
        self._events.append(event)

    def __len__(self) -> int:
        return len(self._events)

    def drain(self, limit: int | None = None) -> list[Event]:
        out: list[Event] = []
        pop = self._events.popleft
        for _ in range(len(self._events) if limit is None else min(limit, len(self._events))):
            out.append(pop())
        return out


def parent_history(header: RunStarted) -> Feed | None:
    """The parent run's events up to the fork or resume step, for the plots to show dimmed."""
    parent = header.parent if isinstance(header.parent, dict) else None
    session, step = (parent or {}).get("session"), (parent or {}).get("step")
    if not isinstance(session, str) or not isinstance(step, int):
        return None
    hist = Feed()

    def upto(e: Event) -> None:
        if e.step <= step or isinstance(e, RunStarted):
            hist.apply(e)

    try:
        read_session(session, sink=upto)  # folded as read: the parent is never held whole
    except SessionError:
        return None
    return hist


class Source:
    """Base: a feed and what may be done to it."""

    mode = ""
    work: Callable[[], Any] | None = None
    """Blocking work to run in a thread worker (training, following a log), or None."""

    def __init__(self) -> None:
        self.feed = Feed()

    def tick(self, dt: float) -> None:
        """Bring the feed up to date (called on the UI's clock)."""

    def can(self, action: str) -> bool | None:
        """True: available; None: unavailable now (the palette says why, :meth:`why_not`); False: not offered.
        The footer lists only what is True."""
        return False

    def why_not(self, action: str) -> str:
        return ""

    def send(self, cmd: C.Command) -> None:
        raise RuntimeError(self.why_not("steer") or "this view cannot steer a run")

    def notice(self) -> tuple[str, str]:
        """(text, style) for the header's last words."""
        return "", ""

    def alarm(self) -> str:
        """What makes the figures shown stale (the run not answering, the log silent), for the header's first line;
        "" when nothing does."""
        return ""

    # -- what this source can do: the dashboard asks these, never what kind of source it is ----------
    player: Any = None
    """The playback clock of a replay (None: events arrive as they happen)."""
    detachable = False
    """Quitting the dashboard detaches it from a run that goes on elsewhere."""

    @property
    def running(self) -> bool:
        """A run this dashboard steers is still training."""
        return False

    def toggle_playback(self) -> bool:
        """Pause or resume playback; False when this source has no playback (the run is paused by a command)."""
        return False

    def checkpoint_steps(self) -> list[int]:
        """The steps a rewind may fork from (none: this source cannot rewind)."""
        return []

    def fork(self, step: int, lr: float) -> Any:
        """A new run forked from this one's checkpoint at ``step`` (blocking; off the event loop)."""
        raise RuntimeError(self.why_not("rewind") or "rewind forks a live run")

    def replace(self, run: Any) -> None:
        """Steer ``run`` (a fork of this one) from now on."""
        raise RuntimeError("only a live source follows a fork")

    def leave(self) -> None:
        """The dashboard is closing: what this source does then (detach, stop the run, stop following)."""


def _with_history(feed: Feed) -> None:
    if feed.header is not None and feed.history is None:
        feed.history = parent_history(feed.header) or False  # type: ignore[assignment]


class LiveSource(Source):
    """A run this dashboard steers: in this process (:class:`~bitnet_tui.app.runs.local.LocalRun`, which can also be
    rewound) or in another (:class:`~bitnet_tui.session.control.remote.RemoteRun`, where quitting detaches)."""

    mode = "live"

    def __init__(self, run: RunHandle, *, no_rewind: str = "") -> None:
        super().__init__()
        self.run = run
        self.no_rewind = no_rewind
        self.feed.name_hint = str(getattr(run, "run_name", "") or "")
        self.buffer = EventBuffer()
        run.subscribe(self.buffer)  # before the run starts, so the header is not missed
        self.work = run.run

    @property  # type: ignore[override]  # a property over the base's plain attribute
    def detachable(self) -> bool:
        return bool(getattr(self.run, "detachable", False))

    @property
    def running(self) -> bool:
        return self.feed.ended is None

    def fork(self, step: int, lr: float) -> Any:
        return self.run.fork(step, lr)

    def leave(self) -> None:
        if self.running:
            if self.detachable:
                self.run.detach()
            else:
                self.send(C.Stop(reason="interrupted", source="dashboard"))

    def tick(self, dt: float) -> None:
        events = self.buffer.drain()
        if events:
            self.feed.apply_all(events)
            _with_history(self.feed)

    def can(self, action: str) -> bool | None:
        if action in REPLAY_ACTIONS:
            return False
        if action == "rewind":
            return None if self.why_not("rewind") else True
        return True if self.running else None

    def why_not(self, action: str) -> str:
        if action == "rewind":
            if self.detachable:
                return "attached to a run in another process: fork it with `bitnet-tui run --from SESSION@STEP`"
            if self.no_rewind:
                return self.no_rewind
            if getattr(self.run, "session_path", None) is None:
                return "this run has no session log to fork from"
            return ""
        return "" if self.running else "the run has ended"

    def send(self, cmd: C.Command) -> None:
        self.run.send(cmd)

    def alarm(self) -> str:
        silent = getattr(self.run, "not_answering", lambda: None)()  # a run in another process; ours always answer
        return "" if silent is None or not self.running else f"NOT ANSWERING {fmt_duration(silent)}"

    def checkpoint_steps(self) -> list[int]:
        return list(getattr(self.run, "checkpoint_steps", lambda: [])())

    def replace(self, run: RunHandle) -> None:
        """Continue with a new run (a rewind's fork): new buffer, new feed, same dashboard."""
        self.run = run
        self.buffer = EventBuffer()
        run.subscribe(self.buffer)
        parent, self.feed = self.feed, Feed()
        self.feed.name_hint = str(getattr(run, "run_name", "") or "")
        self.feed.history = parent  # the run it forks from, already folded (the plots clip it at the fork)
        self.work = run.run


class ReplaySource(Source):
    """A logged run, played back."""

    mode = "replay"

    def __init__(self, events: Sequence[Event] | Positions, *, speed: float = 1.0, start_at: int | str | None = None,
                 folded: Feed | None = None, checkpoints: Checkpoints | None = None) -> None:
        """``folded``: a feed of every event already, with the ``checkpoints`` taken on the way (built while
        ``events`` was indexed), for ``start_at="end"``."""
        super().__init__()
        self.player = Player(events, speed=speed, folded=folded, checkpoints=checkpoints)
        if start_at == "end":
            self.player.to_end()
            self.player.playing = False
        elif isinstance(start_at, int):
            self.player.seek_step(start_at)
            self.player.playing = False
        else:
            self.player.to_start()
        self.feed = self.player.feed
        _with_history(self.feed)

    def toggle_playback(self) -> bool:
        p = self.player
        p.playing = not p.playing
        p.clock = None if p.at_end else p.clock
        return True

    def tick(self, dt: float) -> None:
        self.player.tick(dt)
        if self.feed is not self.player.feed:
            self.player.feed.history = self.feed.history
            self.feed = self.player.feed

    def can(self, action: str) -> bool | None:
        return action == "toggle_pause" or action in REPLAY_ACTIONS

    def leave(self) -> None:
        self.player.events.close()

    def why_not(self, action: str) -> str:
        return "replay is read-only: this run is over"

    def notice(self) -> tuple[str, str]:
        p = self.player
        speed = "max" if math.isinf(p.speed) else f"{p.speed:g}×"
        if p.at_end:
            if self.feed.ended:
                return f"end of log  {p.cursor}/{len(p.events)} events", "bold"
            return "log ends without run_ended (crashed?)", "bold yellow"
        state = f"▶ {speed}" if p.playing else f"⏸ paused ({speed})"
        return f"{state}  {p.cursor}/{len(p.events)} events", "bold"


def replay_log(path: str | Path, *, speed: float = 1.0,
               start_at: int | str | None = None) -> tuple[ReplaySource, list[str]]:
    """A replay of the log at ``path`` and the warnings its reading gave. The log is indexed, not held
    (:class:`~bitnet_tui.session.log.index.LogIndex`); opened at its end, it is folded in that same reading."""
    folded, marks = (Feed() if start_at == "end" else None), Checkpoints()
    index = LogIndex(path, sink=folding(folded, marks) if folded is not None else None)
    source = ReplaySource(index, speed=speed, start_at=start_at, folded=folded, checkpoints=marks)
    return source, list(index.data.warnings)


class WatchSource(Source):
    """A log another process is writing, followed read-only; a rewind in that process is followed into the
    forked session."""

    mode = "watch"

    def __init__(self, path: str | Path, *, stale_after: float = STALE_S) -> None:
        super().__init__()
        self.path = Path(path)
        self.feed.name_hint = self.path.name.removesuffix(SUFFIX)
        self.follower = Follower(self.path)
        self.buffer = EventBuffer()
        self.stale_after = stale_after
        self.last_event = time.monotonic()
        self.work = self._follow
        self.cancelled = False
        self.replaced = False
        """The log was replaced by another file while followed: the view restarted on the new one."""

    def _follow(self) -> None:
        while not self.cancelled:
            try:
                events = self.follower.poll()
            except LogReplaced:  # another run's log at this name: start over on it, never read on from the offset
                self.follower, self.replaced = Follower(self.path), True
                self.buffer(_SWITCH)
                continue
            for e in events:
                self.buffer(e)
            if self.follower.ended:
                nxt = self._successor() if events and events[-1].kind == "run_ended" and \
                    getattr(events[-1], "reason", "") == "rewound" else None
                if nxt is None:
                    return
                self.path, self.follower = nxt, Follower(nxt)
                self.buffer(_SWITCH)
                continue
            if not events:
                time.sleep(POLL_S)

    def _successor(self, wait_s: float = 10.0) -> Path | None:
        """The session forked from this one by a rewind (its header names this log as its parent)."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and not self.cancelled:
            for cand in reversed(list_sessions(self.path.parent)):
                try:
                    with open_regular(cand) as f:
                        first = f.readline(1 << 20)
                except (OSError, SessionError):
                    continue
                if str(self.path) in first.decode("utf-8", "replace") and b'"parent"' in first:
                    return cand
            time.sleep(POLL_S)
        return None

    def leave(self) -> None:
        self.cancelled = True

    def tick(self, dt: float) -> None:
        events = self.buffer.drain()
        if events:
            self.last_event = time.monotonic()
        for e in events:
            if e is _SWITCH:
                self.feed = Feed()
            else:
                self.feed.apply(e)
        if events:
            _with_history(self.feed)

    def why_not(self, action: str) -> str:
        return "watch is read-only: attach to steer"

    def can(self, action: str) -> bool | None:
        return None if action == "toggle_pause" or action in LIVE_ACTIONS else False

    def alarm(self) -> str:
        silent = time.monotonic() - self.last_event
        if self.feed.ended is None and self.feed.events and silent >= self.stale_after:
            return f"no new events for {fmt_duration(silent)} (crashed?)"
        return ""

    def notice(self) -> tuple[str, str]:
        if self.replaced:
            return "the log was replaced; following the new file from its start", "bold yellow"
        return "watch is read-only: attach to steer", "dim"


_SWITCH: Any = object()
"""Marker in the watch buffer: the followed run was rewound (what follows is the forked session) or its log was
replaced (what follows is the new file from its start)."""
