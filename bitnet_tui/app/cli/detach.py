"""Child processes of the CLI: a detached run (``run --detach``) and a sweep's runs.

The parent plans the run and claims its session name first (an empty log, ``O_EXCL``), then starts
``bitnet-tui run --headless --session-file LOG`` with the knobs as flags; so it knows its child's session
before the child exists, never scrapes the child's output for it, and a child that fails leaves no
orphan: the parent prints the child's own error line and removes the empty log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer

from bitnet_model.train.config import SECTIONS
from bitnet_tui.app.cli.errors import fail
from bitnet_tui.app.runs.plan import RunPlan, claim_session, plan_run
from bitnet_tui.session.analysis.detector import DetectorConfig
from bitnet_tui.session.control.peer import control_path
from bitnet_tui.session.knobs import knob_argv
from bitnet_tui.session.log.paths import SUFFIX
from bitnet_tui.session.safefs import create_new
from bitnet_tui.session.text import printable, shown_path

DETACH_WAIT_S = 300.0
"""How long ``run --detach`` waits for the background run to write its header."""


def child_argv(knobs: dict[str, Any], session_file: Path, *, sessions: Path, resume: str | None = None,
               fork: str | None = None, control: bool = False, checkpoint_every: int = 0,
               keep_checkpoints: int = 3, tensorboard: str | None = None, autopilot: bool = False,
               extra: tuple[str, ...] = ()) -> list[str]:
    """``python -m bitnet_tui run --headless ...`` reproducing ``knobs`` and the run options, writing
    ``session_file``."""
    plain = {k: v for k, v in knobs.items() if not k.startswith("detector_")}
    det = {k.removeprefix("detector_"): v for k, v in knobs.items() if k.startswith("detector_")}
    args = knob_argv(plain, tuple(SECTIONS.values()))
    args += [a.replace("--", "--detector-", 1) if a.startswith("--") else a
             for a in knob_argv(det, (DetectorConfig,))]
    args += ["--sessions-dir", str(sessions), "--session-file", str(session_file),
             "--checkpoint-every", str(checkpoint_every), "--keep-checkpoints", str(keep_checkpoints)]
    if resume:
        args += ["--resume", resume]
    if fork:
        args += ["--from", fork]
    args.append("--control" if control else "--no-control")
    if autopilot:
        args.append("--autopilot")
    if tensorboard:
        args += ["--tensorboard", tensorboard]
    return [sys.executable, "-m", "bitnet_tui", "run", "--headless", *extra, *args]


def child_env(**extra: str) -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])  # so the child imports this same bitnet_tui
    path_env = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path_env, **extra}


def claim(plan: RunPlan) -> tuple[Path, Path]:
    """The child's log (claimed) and its output file beside it (created here, never through a planted name)."""
    log = claim_session(plan).resolve()
    out = log.with_name(log.name.removesuffix(SUFFIX) + ".out")
    try:
        os.close(create_new(out))
    except Exception:
        log.unlink(missing_ok=True)
        raise
    return log, out


def last_error(out: Path) -> tuple[str, bool]:
    """The child's own error line (and True), or how it ended (and False)."""
    try:
        lines = out.read_text("utf-8", "replace").splitlines()
    except OSError:
        lines = []
    for line in reversed(lines):
        if line.startswith("error: "):
            return line.removeprefix("error: "), True
    tail = [line for line in lines if line.strip()][-1:]
    return f"the background run exited before writing its log ({tail[0] if tail else 'no output'}; see {out})", False


def header_written(log: Path) -> bool:
    try:
        with open(log, "rb") as f:
            return f.readline(1 << 20).endswith(b"\n")
    except OSError:
        return False


def detach_run(knobs: dict[str, Any], *, sessions: str | None, resume: str | None = None, fork: str | None = None,
               wait_s: float = DETACH_WAIT_S, extra: tuple[str, ...] = (), **opts: Any) -> None:
    """Start ``run --headless --control`` with these settings in the background; return once its log has a header."""
    plan = plan_run(knobs, sessions=sessions, resume=resume, fork=fork)
    log, out_path = claim(plan)
    argv = child_argv(knobs, log, sessions=plan.sessions.resolve(), resume=resume, fork=fork, control=True,
                      extra=extra, **opts)
    with open(out_path, "ab") as out:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, close_fds=True, env=child_env())
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and not header_written(log):
        if child.poll() is not None:
            message, own = last_error(out_path)
            if log.exists() and log.stat().st_size == 0:
                log.unlink()
            if own:
                out_path.unlink(missing_ok=True)
            fail(message, code=2 if child.returncode == 2 else 1)
        time.sleep(0.1)
    name = printable(log.name.removesuffix(SUFFIX), 300)
    typer.echo(f"detached run {'running' if header_written(log) else 'still starting'} (pid {child.pid})")
    typer.echo(f"session: {shown_path(log)}")
    typer.echo(f"output:  {shown_path(out_path)}")
    typer.echo(f"control: {shown_path(control_path(log))}")
    typer.echo(f"attach:  bitnet-tui attach {name}    (steer it; quitting the dashboard leaves it running)")
    typer.echo(f"watch:   bitnet-tui watch {name}     (read-only)")
    typer.echo(f"stop:    bitnet-tui ctl {name} stop")
