"""``bitnet-tui serve``: the same dashboard in a browser, through Textual's web serving (the ``serve`` extra).

Read-only by default: a finished log is replayed, a running one watched. ``--steer`` serves ``attach`` (every
control) to the owner only: a token printed here and nowhere else (bitnet_tui/app/web.py; docs/security.md).
"""

from __future__ import annotations

import os
import secrets
import shlex
import sys
from typing import Annotated

import typer

from bitnet_tui.app.cli.app import command
from bitnet_tui.app.cli.errors import fail, warn
from bitnet_tui.app.cli.options import SessionArg, SessionsDirOption, parse_speed
from bitnet_tui.session.errors import UserError
from bitnet_tui.session.log.paths import SUFFIX, resolve_session, sessions_dir
from bitnet_tui.session.log.writer import writer_lock_held
from bitnet_tui.session.text import printable

EXTRA = "serve needs the serve extra: pip install 'bitnet-tui[serve]'"


@command("serve")
def serve(
    session: SessionArg,
    port: Annotated[int, typer.Option(min=1, max=65535, help="The port on 127.0.0.1 to serve on.")] = 8000,
    steer: Annotated[bool, typer.Option("--steer", help="Serve the dashboard with every control (attach), to the "
                                        "owner only: the page needs the token printed here.")] = False,
    speed: Annotated[str, typer.Option(help="A replay's speed relative to the logged times: 1, 10, any positive "
                                       "number, or max.")] = "1",
    sessions_dir_: SessionsDirOption = None,
) -> None:
    """The dashboard in a browser at http://127.0.0.1:PORT: a replay of a finished log, a watch of a running one;
    --steer: attach, with control. Anyone on this machine who can reach the port can view a read-only one."""
    parse_speed(speed)
    try:
        from bitnet_tui.app.web import DashboardServer
    except ImportError:
        fail(EXTRA)
    path = resolve_session(session, sessions_dir(sessions_dir_))
    name = path.name.removesuffix(SUFFIX)
    token: str | None = None
    if steer:
        from bitnet_tui.session.control.remote import RemoteRun

        try:
            RemoteRun(path).ping()
        except UserError as e:
            fail(f"{e}; to look without steering: bitnet-tui serve {name}")
        mode, token = "attach", secrets.token_urlsafe(24)
    else:
        mode = "watch" if writer_lock_held(path) else "replay"
    argv = [sys.executable, "-m", "bitnet_tui", mode, os.path.abspath(path)]
    cmd = shlex.join(argv + (["--speed", speed] if mode == "replay" else []))
    server = DashboardServer(cmd, port=port, title=f"bitnet-tui {mode} {printable(name, 200)}", token=token)
    url = f"http://127.0.0.1:{port}/" + (f"?token={token}" if token else "")
    typer.echo(f"serving {mode} of {printable(name, 200)} at {url}", err=True)
    if token:
        typer.echo("the token is the key to steering this run: share the address with no one", err=True)
    else:
        warn("read-only, on 127.0.0.1: anyone who can reach this port on this machine can view the run")
    try:
        server.serve()
    except OSError as e:
        fail(f"cannot serve on 127.0.0.1:{port}: {e.strerror or e}")
