"""``bitnet-tui replay`` and ``bitnet-tui watch``: the dashboard over a session log.

replay plays a finished (or crashed) log back; watch follows a log that another
process is still writing. Both are read-only. A SESSION that cannot be used is
one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import math
from typing import Annotated

import typer

from bitnet_model.log.errors import SessionError
from bitnet_model.log.paths import resolve_session, sessions_dir
from bitnet_model.log.text import safe_text
from bitnet_tui.cli.options import SessionArg, SessionsDirOption


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {safe_text(message, newlines=False, limit=1000)}", err=True)
    raise typer.Exit(code)


def parse_speed(raw: str) -> float:
    """'1', '10', '100', '2.5' or 'max'; positive and finite unless 'max'."""
    if raw.strip().lower() in ("max", "inf"):
        return math.inf
    try:
        v = float(raw)
    except ValueError:
        raise typer.BadParameter(f"{raw!r} is not a number or 'max'") from None
    if not math.isfinite(v) or v <= 0:
        raise typer.BadParameter("speed must be a positive number or 'max'")
    return v


def replay(
    session: SessionArg,
    speed: Annotated[
        str, typer.Option(help="Playback speed relative to the logged times: 1, 10, 100, any positive number, or max.")
    ] = "1",
    sessions_dir_: SessionsDirOption = None,
    at_end: Annotated[bool, typer.Option("--end", help="Open at the end of the log, paused.")] = False,
) -> None:
    """Play a session log back in the dashboard: speed, pause, seek, next/previous alert."""
    factor = parse_speed(speed)
    from bitnet_tui.dashboard.app import make_app

    try:
        path = resolve_session(session, sessions_dir(sessions_dir_))
        app = make_app("replay", session_path=path, speed=factor, start_at="end" if at_end else None)
    except SessionError as e:
        fail(str(e))
        return
    app.run()


def watch(session: SessionArg, sessions_dir_: SessionsDirOption = None) -> None:
    """Follow a session log that is still being written (read-only; no steering)."""
    from bitnet_tui.dashboard.app import make_app

    try:
        path = resolve_session(session, sessions_dir(sessions_dir_))
        if path.is_dir():
            raise SessionError(f"{safe_text(str(path), newlines=False)} is a directory")
        app = make_app("watch", session_path=path)
    except SessionError as e:
        fail(str(e))
        return
    app.run()


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
    app.command("watch")(watch)
