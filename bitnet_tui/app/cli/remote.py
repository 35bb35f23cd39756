"""Runs that outlive their terminal: ``attach`` (the dashboard on a detached run) and ``ctl`` (one command).

``run --detach`` is :mod:`bitnet_tui.app.cli.detach`. Commands reach a run over the Unix socket beside its log,
owner-only (:mod:`bitnet_tui.session.control.peer`).
"""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from bitnet_tui.app.cli.app import command
from bitnet_tui.app.cli.errors import fail
from bitnet_tui.app.cli.options import SessionArg, SessionsDirOption
from bitnet_tui.session.control.client import request
from bitnet_tui.session.control.peer import control_path
from bitnet_tui.session.control.protocol import COMMAND_NAMES
from bitnet_tui.session.errors import UserError
from bitnet_tui.session.log.paths import SUFFIX, resolve_session, sessions_dir
from bitnet_tui.session.text import printable


@command("attach")
def attach(session: SessionArg, sessions_dir_: SessionsDirOption = None) -> None:
    """Open the dashboard on a run in another process (e.g. started with run --detach) and steer it.

    Quitting the dashboard detaches: the run goes on."""
    from bitnet_tui.session.control.remote import RemoteRun

    path = resolve_session(session, sessions_dir(sessions_dir_))
    remote = RemoteRun(path)
    name = path.name.removesuffix(SUFFIX)
    try:
        remote.ping()
        remote.read_header()
    except UserError as e:
        fail(f"{e}; to look without steering: bitnet-tui watch {name}")
    from bitnet_tui.app.dashboard.app import make_app

    make_app("live", run=remote).run()
    remote.detach()
    end = remote.last_end
    if end is not None:
        typer.echo(f"run ended ({printable(end.reason, 40)}) at step {end.step}; log: {printable(path)}", err=True)
    else:
        typer.echo(f"detached; the run goes on. Attach again: bitnet-tui attach {printable(name)}", err=True)


_CMD_HELP = ", ".join(c.replace("_", "-") for c in COMMAND_NAMES)


@command("ctl")
def ctl(
    session: SessionArg,
    cmd: Annotated[str, typer.Argument(metavar="COMMAND", help=f"One of: {_CMD_HELP}.", show_default=False)],
    value: Annotated[Optional[str], typer.Argument(help="set-lr: the LR; scale-lr: the factor; stop: a reason.",
                                                   show_default=False)] = None,
    sessions_dir_: SessionsDirOption = None,
) -> None:
    """Send one command to a running run's control socket and print the reply (JSON); a refused command exits 2."""
    path = resolve_session(session, sessions_dir(sessions_dir_))
    name = cmd.strip().lower().replace("-", "_")
    req: dict[str, object] = {"cmd": name}
    if name in ("set_lr", "scale_lr"):
        if value is None:
            fail(f"{cmd} needs a value")
        try:
            req["value" if name == "set_lr" else "factor"] = float(value)  # type: ignore[arg-type]
        except ValueError:
            fail(f"{cmd} needs a number, got {value!r}")
    elif name == "stop" and value is not None:
        req["reason"] = value
    elif value is not None:
        fail(f"{cmd} takes no value")
    elif name not in COMMAND_NAMES:
        fail(f"unknown command {cmd!r}; known: {_CMD_HELP}")
    reply = request(control_path(path), req)
    typer.echo(json.dumps(reply, ensure_ascii=True))
    if not reply.get("ok"):
        raise typer.Exit(2)


