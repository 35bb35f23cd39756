"""Command-line arguments shared by several commands, declared once."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

SessionArg = Annotated[
    str,
    typer.Argument(
        help="A session log: a path, a name in the sessions directory (with or without .jsonl), "
        "a unique prefix of one, or 'latest'.",
        show_default=False,
    ),
]
SessionsDirOption = Annotated[
    Optional[str],
    typer.Option(
        "--sessions-dir",
        help="Where session logs live. Default: $BITNET_TUI_SESSIONS, else ./sessions.",
        show_default=False,
    ),
]
