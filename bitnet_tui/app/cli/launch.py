"""``bitnet-tui run --nproc N``: one training job over N processes, through PyTorch's own launcher.

The parent plans the run and claims its session (one log for the whole job), then starts N workers with
``torch.distributed.run``'s launcher API (``elastic_launch``; rendezvous on loopback, no restarts), each
``python -m bitnet_tui run --headless --session-file LOG --control ...``: rank 0 writes the log, serves the
control socket and runs evals (:mod:`bitnet_tui.instrument.dist`). The launcher runs in a background thread, so
this process keeps its own signal handling: Ctrl+C or SIGTERM becomes a ``stop`` sent to rank 0, which ends
every rank at the same step with a checkpoint. In front: the dashboard attached to rank 0 on a terminal (quit
leaves the job running, as ``attach`` does; the parent then waits for it), progress lines otherwise.
Multi-node jobs use ``torchrun`` itself: ``torchrun --nnodes ... -m bitnet_tui run ...`` (docs/cluster.md).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import typer

from bitnet_tui.app.cli.detach import child_argv, claim, detach_run, header_written
from bitnet_tui.app.cli.errors import fail, note
from bitnet_tui.app.runs.plan import plan_run
from bitnet_tui.session.control.client import request
from bitnet_tui.session.control.peer import control_path
from bitnet_tui.session.errors import UserError
from bitnet_tui.session.log.paths import SUFFIX
from bitnet_tui.session.log.reader import read_session
from bitnet_tui.session.safefs import private_dir
from bitnet_tui.session.text import printable, shown_path


class Launch:
    """The workers of one job, launched in a background thread; ``failure`` says how a failed job failed."""

    def __init__(self, nproc: int, argv: list[str], log_dir: Path | None = None) -> None:
        self.nproc, self.argv, self.log_dir = nproc, argv, log_dir
        self.failure = ""
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._launch, name="bitnet-launch", daemon=True)

    def _launch(self) -> None:
        from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, Std
        from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
        from torch.distributed.launcher.api import LaunchConfig, elastic_launch

        # this thread runs the launcher on purpose (the CLI keeps its own signal handling): no warning about it
        logging.getLogger("torch.distributed.elastic.multiprocessing.api").setLevel(logging.ERROR)
        logs = DefaultLogsSpecs(log_dir=str(self.log_dir), redirects=Std.ALL) if self.log_dir else None
        cfg = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=self.nproc, run_id=uuid.uuid4().hex,
                           rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1,
                           logs_specs=logs)
        try:
            elastic_launch(cfg, self.argv[0])(*self.argv[1:])
        except ChildFailedError as e:
            rank, first = e.get_first_failure()
            how = f"signal {first.signal_name()}" if first.exitcode < 0 else f"exit code {first.exitcode}"
            self.failure = f"rank {rank} failed ({how})"
        except Exception as e:  # the launcher itself (rendezvous) failed
            self.failure = f"the launcher failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        finally:
            self.done.set()


def launch(knobs: dict[str, Any], *, nproc: int, sessions: str | None, resume: str | None, fork: str | None,
           detach: bool, session_file: str | None = None, **opts: Any) -> None:
    """Start the job; return when it ends (exit status as for one process), or at once with ``--detach``."""
    if detach:
        detach_run(knobs, sessions=sessions, resume=resume, fork=fork, extra=("--nproc", str(nproc)), **opts)
        return
    plan = plan_run(knobs, sessions=sessions, resume=resume, fork=fork)
    if session_file:
        log = Path(session_file).resolve()  # claimed by the parent that detached this launcher
    else:
        log, out = claim(plan)
        out.unlink()  # the workers print to this terminal (or to <name>.ranks/ under the dashboard)
    argv = child_argv(knobs, log, sessions=plan.sessions.resolve(), resume=resume, fork=fork, control=True, **opts)
    argv = [argv[0], "-u", *argv[1:]]
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    dashboard = sys.stdout.isatty() and sys.stdin.isatty()
    ranks = private_dir(log.with_name(log.name.removesuffix(SUFFIX) + ".ranks")) if dashboard else None
    job = Launch(nproc, argv, ranks)
    typer.echo(f"session: {shown_path(log)}", err=True)
    typer.echo(f"launching {nproc} processes (torch.distributed, "
               f"{'NCCL' if _cuda() else 'gloo'}); steer with: bitnet-tui ctl {log.stem} ...", err=True)
    job.thread.start()
    stop = _stopper(log)
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _front(log, job)
        job.done.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    _end(log, job)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _stopper(log: Path) -> Any:
    def on_signal(signum: int, frame: Any) -> None:  # noqa: ARG001
        reason = "interrupted" if signum == signal.SIGINT else "terminated"
        try:
            request(control_path(log), {"cmd": "stop", "reason": reason}, timeout=2.0)
        except UserError:
            pass  # rank 0 is not serving (yet, or any more): the launcher tears the job down

    return on_signal


def _front(log: Path, job: Launch) -> None:
    """The dashboard attached to rank 0 on a terminal; otherwise rank 0's own progress lines are the front."""
    if job.log_dir is None:
        return
    deadline = time.monotonic() + 300
    while not (header_written(log) and control_path(log).exists()) and not job.done.is_set():
        if time.monotonic() > deadline:
            return
        time.sleep(0.2)
    if job.done.is_set():
        return
    from bitnet_tui.app.dashboard.app import make_app
    from bitnet_tui.session.control.remote import RemoteRun

    remote = RemoteRun(log)
    make_app("live", run=remote).run()
    remote.detach()
    if not job.done.is_set():
        note(f"the dashboard is closed; the job goes on (attach again: bitnet-tui attach {log.stem}; "
             "Ctrl+C stops it)")


def _end(log: Path, job: Launch) -> None:
    from bitnet_tui.app.runs.local import exit_code

    try:
        end = read_session(log).end
    except UserError:
        end = None
    if end is None:
        fail(f"the job ended without run_ended in its log: {job.failure or 'rank 0 did not finish'} "
             f"(log: {log.name.removesuffix(SUFFIX)})", code=1)
    code = exit_code(end.reason)
    if code == 1 or job.failure and end.reason not in ("interrupted", "terminated", "stopped"):
        fail(f"the job ended: {end.reason}{': ' + end.error if end.error else ''}"
             f"{'; ' + job.failure if job.failure else ''} (log: {log})", code=1)
    typer.echo(f"run ended ({printable(end.reason, 40)}) at step {end.step}; log: {shown_path(log)}", err=True)
    if code:
        raise typer.Exit(code)
