"""Runs that outlive their terminal: ``attach`` (the dashboard on a detached run) and ``ctl`` (one command).

``run --detach`` is :mod:`bitnet_tui.app.cli.detach`. Commands reach a run over the Unix socket beside its log,
owner-only (:mod:`bitnet_tui.session.control.peer`).
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Optional

import typer

from bitnet_tui.app.cli.app import command
from bitnet_tui.app.cli.errors import fail
from bitnet_tui.app.cli.options import SessionArg, SessionsDirOption
from bitnet_tui.session.control.commands import WD_GROUPS
from bitnet_tui.session.control.peer import NoAnswer
from bitnet_tui.session.control.protocol import COMMAND_NAMES, ID_CHARS, check_request_id
from bitnet_tui.session.control.reach import reach
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


NUMBER_FIELD = {"set_lr": "value", "scale_lr": "factor", "set_wd": "wd"}
VALUE_HELP = ("set-lr: the LR; scale-lr: the factor; set-wd: the weight decay; no-decay-on: norms,embeddings,biases "
              "(default norms,embeddings); set-betas: B1,B2; stop: a reason.")


def ctl_request(cmd: str, value: str | None, groups: str | None) -> dict[str, object]:
    """The request a ``ctl`` command line means; exits 2 with one line when it means none."""
    name = cmd.strip().lower().replace("-", "_")
    req: dict[str, object] = {"cmd": name}
    if groups is not None and name != "set_wd":
        fail("--groups goes with set-wd")
    if name in NUMBER_FIELD:
        if value is None:
            fail(f"{cmd} needs a value")
        try:
            req[NUMBER_FIELD[name]] = float(value)  # type: ignore[arg-type]
        except ValueError:
            fail(f"{cmd} needs a number, got {value!r}")
        if groups is not None:
            req["groups"] = groups
    elif name == "set_betas":
        parts = (value or "").split(",")
        try:
            req["beta1"], req["beta2"] = (float(x) for x in parts)
        except ValueError:
            fail(f"set-betas needs B1,B2 (e.g. 0.9,0.95), got {value!r}")
    elif name in ("stop", "no_decay_on") and value is not None:
        req["reason" if name == "stop" else "kinds"] = value
    elif value is not None:
        fail(f"{cmd} takes no value")
    elif name not in COMMAND_NAMES:
        fail(f"unknown command {cmd!r}; known: {_CMD_HELP}")
    return req


@command("ctl")
def ctl(
    session: SessionArg,
    cmd: Annotated[str, typer.Argument(metavar="COMMAND", help=f"One of: {_CMD_HELP}.", show_default=False)],
    value: Annotated[Optional[str], typer.Argument(help=VALUE_HELP, show_default=False)] = None,
    groups: Annotated[Optional[str], typer.Option(help=f"set-wd: which parameters ({', '.join(WD_GROUPS)}; "
                                                  "default decayed: the groups the run decays now).")] = None,
    id_: Annotated[Optional[str], typer.Option("--id", help=f"Name this request (1-{ID_CHARS} letters, digits, "
                                               "'.', '_', ':', '-'; default: a new random one): a run applies a "
                                               "command once per id, so a retry with the same id after no answer "
                                               "is never applied twice.")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, max=600, help="Seconds to wait for the run's answer.")] = 5.0,
    sessions_dir_: SessionsDirOption = None,
) -> None:
    """Send one command to a running run's control socket and print the reply (JSON); a refused command exits 2,
    no answer in time exits 3 (the command may still be applied when the run's process runs again)."""
    path = resolve_session(session, sessions_dir(sessions_dir_))
    req = ctl_request(cmd, value, groups)
    rid = check_request_id(id_) if id_ is not None else uuid.uuid4().hex[:16]
    if req["cmd"] != "ping":
        req["id"] = rid
    try:
        reply = reach(path, req, timeout=timeout)
    except NoAnswer as e:
        again = f"; its id is {rid}: retry with --id {rid} and it is applied once" if "id" in req else ""
        fail(f"{e}{again}", e.exit_code)
    typer.echo(json.dumps(reply, ensure_ascii=True))
    if not reply.get("ok"):
        raise typer.Exit(2)
