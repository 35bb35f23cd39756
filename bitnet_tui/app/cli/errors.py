"""The CLI's contract: one place turns every failure into one line on stderr and an exit status.

===== ===============================================================================================
exit  meaning
===== ===============================================================================================
0     done (a run that finished, or was stopped on purpose)
1     the run failed or diverged (an error, a non-finite loss that stopped a headless run, a rank lost)
2     a usage or input error: a bad flag or value, a file that is not a session, a run that cannot be
      reached; nothing was started
3     ``ctl``: the request reached the run's socket but no answer came in time; it may still be applied
      when the process runs again (a retry with the same ``--id`` is not applied twice)
129   the run was ended by SIGHUP (its terminal went away), after the clean end and checkpoint
130   the run was interrupted by SIGINT (Ctrl+C), after the clean end and checkpoint
143   the run was terminated by SIGTERM, after the clean end and checkpoint
===== ===============================================================================================

Everything a user can get wrong raises a :class:`~bitnet_tui.session.errors.UserError`; :func:`guarded` prints it
through the one escaping function and exits with its code. A traceback is a bug.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import typer

from bitnet_tui.session.errors import UserError
from bitnet_tui.session.text import printable

USAGE = 2
FAILED = 1


def fail(message: Any, code: int = USAGE) -> NoReturn:
    """One clear line on stderr (escaped: messages quote files), a non-zero exit, no traceback."""
    typer.echo(f"error: {printable(message, 2000)}", err=True)
    raise typer.Exit(code)


def warn(message: Any) -> None:
    typer.echo(f"warning: {printable(message, 2000)}", err=True)


def note(message: Any) -> None:
    typer.echo(f"note: {printable(message, 2000)}", err=True)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A command whose UserErrors become :func:`fail` (the README's exit-code table)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            fail(str(e), e.exit_code)
        except BrokenPipeError:  # ``ctl X | head``: typer's echo; the reader left early, not a failed run
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
            raise typer.Exit(0) from None

    return wrapper
