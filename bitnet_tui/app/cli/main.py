"""The ``bitnet-tui`` entry point: the app with every command registered.

Each command lives in its own module and registers itself on :data:`bitnet_tui.app.cli.app.app` when imported;
no command module imports another's private names. Only ``run`` (and the processes ``sweep`` starts)
import torch: the viewer's commands (``sessions``, ``summary``, ``compare``, ``diagnose``, ``replay``,
``watch``, ``attach``, ``ctl``, ``--help``, ``--version``) start in a fraction of a second
(``bench/startup.py``; ``tests/cli/test_import_hygiene.py``).
"""

from __future__ import annotations

import os
import re
import sys

# OpenMP threads that spin while waiting steal the CPU from the dashboard's thread and from other jobs on a
# shared box; passive waiting measured far faster under load (docs/performance.md). The program sets it for
# itself, before torch is imported; an explicit OMP_WAIT_POLICY wins. Importing the library never sets it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer
from typer.exceptions import TyperException

from bitnet_tui.app.cli import diagnose, export, logs, plot, remote, run, serve, sweep, view  # noqa: F401  (registers)
from bitnet_tui.app.cli.app import app
from bitnet_tui.app.cli.errors import USAGE, fail


def main() -> None:
    """The program: a usage error (an unknown option, a value of the wrong type) is one line and exit 2, like
    every other error; help, the version and the commands' own exit statuses pass through unchanged."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        sys.exit(130)
    except TyperException as e:  # Click's usage errors (typer vendors Click)
        if type(e).__name__ == "NoArgsIsHelpError":
            app(["--help"])
            return
        ctx = getattr(e, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        format_message = getattr(e, "format_message", None)
        message = format_message() if format_message is not None else str(e)
        option = getattr(e, "option_name", "") or ""
        if re.fullmatch(r"-\d[\d.e+-]*", option):  # ``ctl latest set-wd -1``: a negative number, not an option
            message = f"{option} is read as an option; a negative value is out of range here (LR, weight decay " \
                "and factors are >= 0)"
        try:
            fail(f"{where}{message} (see --help)", getattr(e, "exit_code", USAGE) or USAGE)
        except typer.Exit as ex:
            sys.exit(ex.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
