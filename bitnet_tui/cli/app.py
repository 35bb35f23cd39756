"""The ``bitnet-tui`` command line. Commands delegate to plain functions in other modules."""

from __future__ import annotations

from typing import Annotated

import typer

from bitnet_model import __version__

app = typer.Typer(
    name="bitnet-tui",
    help="Watch BitNet b1.58 training go wrong, and fix it while it runs.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bitnet-tui {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Watch BitNet b1.58 training go wrong, and fix it while it runs."""


def main() -> None:
    app()


# Commands live in their own modules; each adds itself to ``app``.
from bitnet_tui.cli import logs, remote, run, sweep, view  # noqa: E402

for _module in (run, logs, view, remote, sweep):
    _module.register(app)
