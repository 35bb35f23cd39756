"""How a run ends: the ``run_ended`` reason and error for whatever ended the loop.

One rule for every way out: a ``with Monitor`` block, bitnet-tui's trainer, Lightning's ``on_exception``, and
a process that exits with the Monitor still open (:meth:`~bitnet_tui.instrument.monitor.Monitor.close_for`).
"""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass

from bitnet_tui.instrument.dist import RankFailed, peer_failure
from bitnet_tui.session.log.events import RunEnded

STILL_OPEN = "the process exited with the Monitor still open (close() it, or use `with`)"


@dataclass(frozen=True)
class Ending:
    reason: str
    error: str = ""
    final_checkpoint: bool = False
    crash: str = ""
    """For a crash: the alert's text (the exception and the end of its traceback); empty otherwise."""


def ending_for(exc: BaseException | None, *, stop_reason: str | None = None, distributed: bool = False) -> Ending:
    """None: the loop finished (or stopped when told to, ``stop_reason``). Ctrl+C: interrupted, checkpointed.
    A rank that stopped answering: rank_failed. Anything else: an error, with a crash alert."""
    if exc is None:
        return Ending(stop_reason or "finished", final_checkpoint=True)
    if isinstance(exc, KeyboardInterrupt):
        return Ending("interrupted", final_checkpoint=True)
    msg = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, RankFailed):
        return Ending("rank_failed", str(exc))
    if distributed and peer_failure(exc):
        return Ending("rank_failed", f"a rank stopped responding ({msg.splitlines()[0][:300]})")
    trace = "".join(traceback.format_exception(exc))[-2000:]
    return Ending("error", msg[:2000], crash=f"training crashed: {msg[:500]}\n{trace}")


def ending_at_exit() -> Ending:
    """A process exiting with the Monitor open: the exception that is ending it (``sys.last_value``), if any."""
    exc = getattr(sys, "last_value", None)
    return ending_for(exc) if exc is not None else Ending("error", STILL_OPEN)


def unlogged_end(step: int, how: Ending, exc: BaseException | None) -> RunEnded:
    """How a loop ended before its Monitor started: the ``run_ended`` it would have logged, kept but not written."""
    return RunEnded(step=step, time=time.time(), reason=how.reason,
                    error=how.error or (f"{type(exc).__name__}: {exc}"[:2000] if exc else ""))
