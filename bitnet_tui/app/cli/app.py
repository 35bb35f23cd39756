"""The ``bitnet-tui`` Typer app and the decorator every command registers with (see :mod:`.main`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from bitnet_tui.app.cli.errors import guarded
from bitnet_tui.version import __version__

app = typer.Typer(
    name="bitnet-tui",
    help="Watch BitNet b1.58 training go wrong, and fix it while it runs.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
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


def command(name: str, **kw: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a command; its UserErrors become one line and the exit-code table's status."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        app.command(name, **kw)(guarded(fn))
        return fn

    return deco
