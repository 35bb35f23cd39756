"""Runs that outlive their terminal: ``run --detach``, ``attach`` and ``ctl``.

``run --detach`` starts ``run --headless --control`` as a background process in
its own session (a closed SSH connection does not reach it), waits until its
log has a header, and says how to attach. ``attach`` opens the dashboard on the
run through its control socket; ``ctl`` sends one command from a script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from bitnet_model.control.client import request
from bitnet_model.control.peer import ControlError, control_path
from bitnet_model.control.protocol import COMMAND_NAMES
from bitnet_model.control.remote import RemoteRun
from bitnet_model.log.errors import SessionError
from bitnet_model.log.paths import SUFFIX, resolve_session, sessions_dir
from bitnet_model.log.text import safe_text
from bitnet_tui.cli.options import SessionArg, SessionsDirOption

DETACH_WAIT_S = 300.0
"""How long ``run --detach`` waits for the background run to write its header."""


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {safe_text(message, newlines=False, limit=1000)}", err=True)
    raise typer.Exit(code)


def child_args(knobs: dict[str, Any], **options: Any) -> list[str]:
    """Command-line options for ``run`` that reproduce ``knobs`` (field names) and the other ``run`` options."""
    args: list[str] = []
    for name, value in {**knobs, **options}.items():
        if value is None or value is False and name not in knobs:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + name.replace("_", "-"))
        else:
            args += [flag, str(value)]
    return args


def _last_error(out: Path) -> tuple[str, bool]:
    """The background run's own error line (and True), or a description of how it ended (and False)."""
    try:
        lines = out.read_text("utf-8", "replace").splitlines()
    except OSError:
        lines = []
    for line in reversed(lines):
        if line.startswith("error: "):
            return line.removeprefix("error: "), True
    tail = [line for line in lines if line.strip()][-1:]
    return f"the background run exited before writing its log ({tail[0] if tail else 'no output'}; see {out})", False


def _header_written(log: Path) -> bool:
    try:
        with open(log, "rb") as f:
            return f.readline(1 << 20).endswith(b"\n")
    except OSError:
        return False


def detach_run(knobs: dict[str, Any], *, sessions: str | None, checkpoint_every: int = 0, resume: str | None = None,
               fork: str | None = None, preset: str | None = None, wait_s: float = DETACH_WAIT_S) -> None:
    """Start ``run --headless --control`` with these settings in the background; return once its log has a header."""
    sdir = sessions_dir(sessions).resolve()
    try:
        sdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        fail(f"cannot create the sessions directory {sdir} ({e.strerror})")
    opts = child_args(knobs, checkpoint_every=checkpoint_every or None, resume=resume, preset=preset)
    if fork is not None:
        opts += ["--from", fork]
    argv = [sys.executable, "-m", "bitnet_tui", "run", "--headless", "--control", *opts, "--sessions-dir", str(sdir)]
    tmp_out = sdir / f".detach-{os.getpid()}-{time.time_ns()}.out"
    root = str(Path(__file__).resolve().parent.parent)  # so the child imports this same bitnet_tui
    path_env = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path_env}
    with open(tmp_out, "wb") as out:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, close_fds=True, env=env)
    log: Path | None = None
    out_path = tmp_out
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if log is None:
            for line in out_path.read_text("utf-8", "replace").splitlines():
                if line.startswith("session: "):
                    log = Path(line.removeprefix("session: "))
                    if not log.is_absolute():
                        log = Path(os.path.abspath(log))
                    beside = log.with_name(log.name.removesuffix(SUFFIX) + ".out")
                    os.replace(out_path, beside)
                    out_path = beside
                    break
        if log is not None and _header_written(log):
            break
        if child.poll() is not None:
            message, own = _last_error(out_path)
            if log is not None and log.exists() and log.stat().st_size == 0:
                log.unlink()
            if own:
                out_path.unlink(missing_ok=True)
            fail(message, code=2 if child.returncode == 2 else 1)
        time.sleep(0.1)
    name = log.name.removesuffix(SUFFIX) if log else "?"
    state = "running" if log is not None and _header_written(log) else "still starting"
    typer.echo(f"detached run {state} (pid {child.pid})")
    typer.echo(f"session: {log if log else '(not yet known)'}")
    typer.echo(f"output:  {out_path}")
    if log is not None:
        typer.echo(f"control: {control_path(log)}")
        typer.echo(f"attach:  bitnet-tui attach {name}    (steer it; quitting the dashboard leaves it running)")
        typer.echo(f"watch:   bitnet-tui watch {name}     (read-only)")
        typer.echo(f"stop:    bitnet-tui ctl {name} stop")




def _resolve(session: str, sessions: str | None) -> Path:
    try:
        return resolve_session(session, sessions_dir(sessions))
    except SessionError as e:
        fail(str(e))
        raise  # unreachable: fail raises


def attach(session: SessionArg, sessions_dir_: SessionsDirOption = None) -> None:
    """Open the dashboard on a run in another process (e.g. started with run --detach) and steer it.

    Quitting the dashboard detaches: the run goes on."""
    path = _resolve(session, sessions_dir_)
    remote = RemoteRun(path)
    name = path.name.removesuffix(SUFFIX)
    try:
        remote.ping()
        remote.read_header()
    except (ControlError, SessionError) as e:
        fail(f"{e}; to look without steering: bitnet-tui watch {name}")
    from bitnet_tui.dashboard.app import make_app

    make_app(mode="live", trainer=remote, session_path=path).run()
    remote.detach()
    end = remote.last_end
    if end is not None:
        typer.echo(f"run ended ({safe_text(end.reason, newlines=False)}) at step {end.step}; log: {path}", err=True)
    else:
        typer.echo(f"detached; the run goes on. Attach again: bitnet-tui attach {name}", err=True)


def ctl(
    session: SessionArg,
    command: Annotated[str, typer.Argument(help=f"One of: {', '.join(c.replace('_', '-') for c in COMMAND_NAMES)}.",
                                           show_default=False)],
    value: Annotated[str | None, typer.Argument(help="set-lr: the LR; scale-lr: the factor; stop: a reason.",
                                                show_default=False)] = None,
    sessions_dir_: SessionsDirOption = None,
) -> None:
    """Send one command to a running run's control socket and print the reply (JSON)."""
    path = _resolve(session, sessions_dir_)
    name = command.strip().lower().replace("-", "_")
    req: dict[str, object] = {"cmd": name}
    if name in ("set_lr", "scale_lr"):
        if value is None:
            fail(f"{command} needs a value")
        try:
            req["value" if name == "set_lr" else "factor"] = float(value)  # type: ignore[arg-type]
        except ValueError:
            fail(f"{command} needs a number, got {value!r}")
    elif name == "stop" and value is not None:
        req["reason"] = value
    elif value is not None:
        fail(f"{command} takes no value")
    try:
        reply = request(control_path(path), req)
    except (ControlError, ValueError) as e:
        fail(str(e))
        return
    typer.echo(json.dumps(reply))
    if not reply.get("ok"):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("attach")(attach)
    app.command("ctl")(ctl)
