"""Handing events to their consumers: the session log, a dashboard's buffer, TensorBoard, tests.

Consumers are called in the training thread (and, for ``system`` samples, in the system sampler's thread), in
order, one event at a time (:attr:`Emitter.lock`), and must be fast. A consumer that fails (the session
log on a full disk) never kills the run: the emitter raises an ``io`` alert to everyone (the failed writer
keeps it in its backlog) and asks for a pause; :meth:`Emitter.retry` resumes once every failed consumer's
``retry()`` succeeds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from bitnet_tui.session.log.events import Alert, Event

Subscriber = Callable[[Event], None]


class Emitter:
    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []
        self.failed: list[Subscriber] = []
        self.step = 0
        """The step alerts raised here are stamped with."""
        self.lock = threading.RLock()
        """Held while an event is handed out: consumers never see two events at once, whichever thread emits."""

    def subscribe(self, fn: Subscriber) -> None:
        self.subscribers.append(fn)

    def emit(self, ev: Event) -> None:
        with self.lock:
            for fn in self.subscribers:
                try:
                    fn(ev)
                except Exception as e:  # a consumer failing (disk full) must not kill the run
                    self.consumer_failed(fn, e)

    def consumer_failed(self, fn: Subscriber, e: BaseException) -> None:
        """A consumer could not take an event: alert everyone once, and remember it for :meth:`retry`."""
        if fn in self.failed:
            return
        self.failed.append(fn)
        alert = Alert(step=self.step, time=time.time(), level="error", code="io",
                      message=f"an event consumer failed ({type(e).__name__}: {str(e)[:200]}); "
                              "training is paused until it works again")
        for other in self.subscribers:  # the failed one too: a writer keeps it in its backlog
            try:
                other(alert)
            except Exception:
                pass

    def retry(self) -> bool:
        """Give failed consumers a chance to catch up (``retry() -> bool``); True when none is failing now."""
        still = []
        for fn in self.failed:
            retry = getattr(fn, "retry", None)
            try:
                ok = bool(retry()) if retry is not None else False
            except Exception:
                ok = False
            if not ok:
                still.append(fn)
        self.failed = still
        return not still
