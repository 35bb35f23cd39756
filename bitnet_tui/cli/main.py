"""The ``bitnet-tui`` entry point: the app with every command registered.

Each command lives in its own module and registers itself on :data:`bitnet_tui.cli.app.app` when imported;
no command module imports another's private names. Only ``run`` (and the processes ``sweep`` starts)
import torch: the viewer's commands (``sessions``, ``summary``, ``compare``, ``diagnose``, ``replay``,
``watch``, ``attach``, ``ctl``, ``--help``, ``--version``) start in a fraction of a second
(``bench/startup.py``; ``tests/cli/test_import_hygiene.py``).
"""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from bitnet_tui.cli import diagnose, export, logs, plot, remote, run, sweep, view  # noqa: F401  (registers commands)
from bitnet_tui.cli.app import app
from bitnet_tui.cli.errors import USAGE, fail


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
        try:
            fail(f"{where}{message} (see --help)", getattr(e, "exit_code", USAGE) or USAGE)
        except typer.Exit as ex:
            sys.exit(ex.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
