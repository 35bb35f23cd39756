"""The ``bitnet-tui`` entry point: the app with every command registered.

Each command lives in its own module and registers itself on :data:`bitnet_tui.cli.app.app` when imported;
no command module imports another's private names. Only ``run`` (and the processes ``sweep`` starts)
import torch: the viewer's commands (``sessions``, ``summary``, ``compare``, ``diagnose``, ``replay``,
``watch``, ``attach``, ``ctl``, ``--help``, ``--version``) start in a fraction of a second
(``bench/startup.py``; ``tests/cli/test_import_hygiene.py``).
"""

from __future__ import annotations

from bitnet_tui.cli import diagnose, export, logs, plot, remote, run, sweep, view  # noqa: F401  (registers commands)
from bitnet_tui.cli.app import app


def main() -> None:
    app()
