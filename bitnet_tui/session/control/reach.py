"""Reaching a run by its session log: one request to its control socket, and an error that says why not.

A socket that is gone (or that nothing serves) belongs to a run that ended, crashed or never served one; the
log says which: a run that ended is quoted from its ``run_ended`` (reason, step, error), never ``[Errno 2]``.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from bitnet_tui.session.control.client import request
from bitnet_tui.session.control.peer import ControlError, control_path
from bitnet_tui.session.errors import UserError
from bitnet_tui.session.text import printable, shown_path

GONE = (errno.ENOENT, errno.ECONNREFUSED)


def why_unreachable(log: Path, err: ControlError) -> ControlError:
    """``err`` for a socket that is gone, restated from the log: ended (quoting run_ended) or crashed."""
    if err.errno not in GONE:
        return err
    from bitnet_tui.session.log.reader import read_session

    try:
        data = read_session(log, skip=("step", "eval", "weights", "alert"))
    except (UserError, OSError):
        return err
    name = log.name.removesuffix(".jsonl")
    end = data.end
    if end is not None:
        how = f"{printable(end.reason, 40)} at step {end.step}"
        if end.error:
            how += f": {printable(end.error, 200)}"
        return ControlError(err.errno, f"the run ended ({how}); nothing to steer. What it did: bitnet-tui summary "
                                       f"{printable(name)}; continue it: bitnet-tui run --resume {printable(name)}")
    if err.errno == errno.ECONNREFUSED:
        return ControlError(err.errno, f"the run's process is gone without ending its log (it crashed); "
                                       f"continue it: bitnet-tui run --resume {printable(name)}")
    return ControlError(err.errno, f"{shown_path(control_path(log))} does not exist: the run is still starting, "
                                   "or was started with --no-control, or its process is gone")


def reach(log: str | os.PathLike[str], req: dict[str, Any], *, timeout: float = 5.0) -> dict[str, Any]:
    """:func:`~bitnet_tui.session.control.client.request` to the run of ``log``; a gone run's error says it ended."""
    p = Path(log)
    try:
        return request(control_path(p), req, timeout=timeout)
    except ControlError as e:
        raise why_unreachable(p, e) from None
