"""``bitnet-tui replay`` and ``bitnet-tui watch``: the dashboard over a session log, read-only."""

from __future__ import annotations

from typing import Annotated

import typer

from bitnet_tui.app.cli.app import command
from bitnet_tui.app.cli.options import SessionArg, SessionsDirOption, parse_speed
from bitnet_tui.session.log.paths import resolve_session, sessions_dir


@command("replay")
def replay(
    session: Annotated[list[str], typer.Argument(help="A session log (a path, a name, a unique prefix, or 'latest'); "
                                                     "several: side by side, as `compare --plot` shows them.",
                                                show_default=False)],
    speed: Annotated[
        str, typer.Option(help="Playback speed relative to the logged times: 1, 10, 100, any positive number, or max.")
    ] = "1",
    sessions_dir_: SessionsDirOption = None,
    at_end: Annotated[bool, typer.Option("--end", help="Open at the end of the log, paused.")] = False,
) -> None:
    """Play a session log back in the dashboard: speed, pause, seek, next/previous alert or intervention.
    Several sessions: their loss, unique tokens, flip rate and LR overlaid, one colour a run."""
    factor = parse_speed(speed)
    if len(session) > 1:
        from bitnet_tui.app.cli.errors import note
        from bitnet_tui.app.cli.options import resolve_sessions
        from bitnet_tui.app.cli.plot import show_overlay

        if speed != "1" or at_end:
            note("several sessions are shown whole, side by side; --speed and --end apply to one")
        show_overlay(resolve_sessions(session, sessions_dir_))
        return
    from bitnet_tui.app.dashboard.app import make_app

    path = resolve_session(session[0], sessions_dir(sessions_dir_))
    make_app("replay", session_path=path, speed=factor, start_at="end" if at_end else None).run()


@command("watch")
def watch(session: SessionArg, sessions_dir_: SessionsDirOption = None) -> None:
    """Follow a session log that is still being written (read-only; a rewind is followed into its fork)."""
    from bitnet_tui.app.dashboard.app import make_app

    path = resolve_session(session, sessions_dir(sessions_dir_))
    make_app("watch", session_path=path).run()
