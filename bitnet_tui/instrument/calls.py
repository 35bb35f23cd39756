"""What a training loop hands ``Monitor.step``, checked at the call: a clear error there, never a failure later
at a flush far from it, and never a write into a log that belongs to another process or a closed run."""

from __future__ import annotations

import numbers
import os
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch

from bitnet_tui.session.log.events import Alert, Event


def check_step(loss: Any, *, closed: bool, pid: int | None) -> Any:
    """``loss`` ready to keep (a detached one-element tensor or a float); raises before anything is recorded."""
    if closed:  # a ValueError, as Python's own I/O on a closed file is
        raise ValueError("Monitor.step after close(): this run's log is ended; make a new Monitor for a new run")
    if pid is not None and os.getpid() != pid:
        raise ValueError(f"Monitor.step from process {os.getpid()}: this Monitor writes the log of process {pid}; "
                           "a forked child must make its own Monitor")
    if isinstance(loss, torch.Tensor):
        if loss.numel() != 1:
            raise ValueError(f"Monitor.step(loss): the loss must be a scalar, got a tensor of shape "
                             f"{tuple(loss.shape)} (reduce it first, e.g. loss.mean())")
        return loss.detach()
    if isinstance(loss, bool) or not isinstance(loss, numbers.Real):
        raise TypeError(f"Monitor.step(loss): the loss must be a number or a one-element tensor, got "
                        f"{type(loss).__name__} {str(loss)[:40]!r}")
    return float(loss)


class Guarded:
    """Runs one measurement (an eval, a weight snapshot); one that raises becomes an alert and a skipped
    measurement, never an exception in the user's loop (a ``decode`` that fails, a prompt id out of range)."""

    def __init__(self) -> None:
        self.failures: Counter[str] = Counter()

    def __call__(self, what: str, fn: Callable[[int], list[Event]], step: int) -> list[Event]:
        try:
            return list(fn(step))
        except Exception as e:  # noqa: BLE001  (whatever a user's model or decode raises)
            n = self.failures[what] = self.failures[what] + 1
            if n & (n - 1):  # alert at the 1st, 2nd, 4th, 8th ... failure: never a flood
                return []
            more = f" ({n} failures so far)" if n > 1 else ""
            return [Alert(step=step, time=time.time(), level="error", code="measure-failed",
                          message=f"the {what} at step {step} failed and was skipped ({type(e).__name__}: "
                                  f"{str(e)[:300]}); training goes on{more}", data={"what": what, "failures": n})]
