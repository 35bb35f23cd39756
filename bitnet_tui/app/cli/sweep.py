"""``bitnet-tui sweep``: one knob or a grid, as headless sessions, then the compare table (and ``diagnose``).

Each run is its own ``bitnet-tui run --headless`` process (``--jobs`` at once, the CPU threads split between
them), so a sweep is exactly the runs you could have started by hand, each with its own session log. The
sweep claims each run's session before starting it (``--session-file``) and follows the log for progress.
Ctrl+C or SIGTERM stops the running ones cleanly (they write ``run_ended`` and a checkpoint) and keeps
every session.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from bitnet_model.train.presets import preset as get_preset
from bitnet_tui.app.cli.app import command
from bitnet_tui.app.cli.detach import child_argv, child_env, claim, last_error
from bitnet_tui.app.cli.errors import fail, warn
from bitnet_tui.app.cli.options import JsonOption, SessionsDirOption, knob_table, with_knobs
from bitnet_tui.app.cli.presets import PresetHelp, point_label, preset_grid
from bitnet_tui.app.cli.render import emit_json, print_compare
from bitnet_tui.app.runs.plan import plan_run
from bitnet_tui.session.analysis.compare import compare
from bitnet_tui.session.analysis.fold import RunFold
from bitnet_tui.session.analysis.summary import read_summary
from bitnet_tui.session.errors import ConfigError
from bitnet_tui.session.knobs import check_value
from bitnet_tui.session.log.errors import SessionError
from bitnet_tui.session.log.follow import Follower
from bitnet_tui.session.text import fmt_value, printable


@dataclass
class Job:
    knobs: dict[str, Any]
    label: str
    autopilot: bool = False
    log: Path | None = None
    out: Path | None = None
    proc: subprocess.Popen | None = None
    follower: Follower | None = None
    fold: RunFold = field(default_factory=RunFold)
    status: str = "queued"
    error: str = ""


def grid_of(knobs: dict[str, Any]) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """(grid: knob -> values, fixed knobs) from the options as given (sweepable knobs as comma lists)."""
    grid: dict[str, list[Any]] = {}
    fixed: dict[str, Any] = {}
    table = {name: k for name, _, k, _ in knob_table()}
    for name, raw in knobs.items():
        if raw is None:
            continue
        k = table[name]
        if k.sweep and isinstance(raw, str):
            vals = [_parse(name, k, part.strip()) for part in raw.split(",") if part.strip()]
            if not vals:
                raise ConfigError(f"--{name.replace('_', '-')} is empty")
            if len(vals) > 1:
                grid[name] = vals
            else:
                fixed[name] = vals[0]
        else:
            fixed[name] = raw
    return grid, fixed


def _parse(name: str, k: Any, part: str) -> Any:
    if k.special and part in k.special:
        return part
    if k.kind is bool:
        if part.lower() not in ("true", "false", "yes", "no", "1", "0"):
            raise ConfigError(f"--{name.replace('_', '-')} takes true/false values, got {part[:40]!r}")
        return part.lower() in ("true", "yes", "1")
    try:
        value = k.kind(part) if k.kind is not int else int(float(part)) if "e" in part.lower() else int(part)
    except ValueError:
        raise ConfigError(f"--{name.replace('_', '-')} takes a comma-separated list of {k.kind.__name__} values, "
                          f"got {part[:40]!r}") from None
    return check_value(name, k, value)


def _progress(jobs: list[Job]) -> Table:
    t = Table(title="sweep", box=None, header_style="bold")
    for col in ("run", "status", "step", "loss", "unique", "state"):
        t.add_column(col, justify="right" if col in ("step", "loss", "unique") else "left", no_wrap=True)
    for j in jobs:
        f = j.fold
        uniq = f.last_eval.unique_tokens if f.last_eval else None
        t.add_row(Text(printable(j.label, 60)), Text(j.status, style={"finished": "green", "failed": "red",
                                                                       "running": "cyan"}.get(j.status, "")),
                  f"{f.step}/{f.total_steps or '?'}", fmt_value(f.loss if f.last_step_event else None),
                  "" if uniq is None else str(uniq), Text(printable(f.state or j.error, 80)))
    return t


def _follow(job: Job) -> None:
    if job.follower is not None:
        with contextlib.suppress(SessionError, OSError):
            job.fold.apply_all(job.follower.poll())
    if job.proc is not None and job.proc.poll() is not None and job.status in ("starting", "running"):
        if job.follower is not None:
            with contextlib.suppress(SessionError, OSError):
                job.fold.apply_all(job.follower.poll())
        job.status = "finished" if job.proc.returncode == 0 else "failed"
        if job.proc.returncode != 0 and job.out is not None:
            job.error = last_error(job.out)[0]


def run_sweep(jobs: list[Job], n_jobs: int, start: Any, con: Console, live: bool) -> bool:
    """Run the jobs, ``n_jobs`` at a time; True when all ran to the end. Ctrl+C/SIGTERM stop them cleanly."""
    queue, running = list(jobs), []
    stopping = False

    def on_term(signum: int, frame: Any) -> None:  # noqa: ARG001
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)
    view = Live(_progress(jobs), console=con, refresh_per_second=2) if live else None
    last_plain = 0.0
    try:
        if view is not None:
            view.start()
        while queue or running:
            try:
                while queue and len(running) < n_jobs and not stopping:
                    job = queue.pop(0)
                    start(job)
                    running.append(job)
                for j in list(running):
                    _follow(j)
                    if j.proc is None or j.proc.poll() is not None:
                        running.remove(j)
                if view is not None:
                    view.update(_progress(jobs))
                elif time.monotonic() - last_plain > 10:
                    last_plain = time.monotonic()
                    for j in jobs:
                        con.print(f"{j.label}: {j.status} step {j.fold.step}/{j.fold.total_steps or '?'} "
                                  f"{printable(j.fold.state, 40)}", markup=False, highlight=False)
                time.sleep(0.5)
            except KeyboardInterrupt:
                stopping = True
                queue.clear()
                for j in running:
                    if j.proc is not None and j.proc.poll() is None:
                        j.proc.send_signal(signal.SIGTERM)
                con.print("stopping: the running sessions end cleanly and are kept", markup=False)
    finally:
        signal.signal(signal.SIGTERM, old)
        if view is not None:
            view.stop()
        for j in jobs:
            if j.proc is not None and j.proc.poll() is None:
                j.proc.wait()
            _follow(j)
            if j.status == "queued":
                j.status = "not started"
                if j.log is not None and j.log.exists() and j.log.stat().st_size == 0:
                    j.log.unlink()
            if j.out is not None and j.status == "finished":
                j.out.unlink(missing_ok=True)
    return not stopping and all(j.status == "finished" for j in jobs)


@command("sweep", cls=PresetHelp)
@with_knobs(sweep=True)
def sweep(
    *,
    knobs: dict[str, Any],
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=64,
                                      help="Runs at once (CPU threads are split between them).")] = 1,
    preset: Annotated[str | None, typer.Option(help="A named sweep (e.g. seed-report); flags override it. With "
                                               "--help: what it runs, its flags and steps, how long it took.")] = None,
    sessions_dir_opt: SessionsDirOption = None,
    as_json: JsonOption = False,
    diagnose: Annotated[bool, typer.Option("--diagnose/--no-diagnose", help="End with diagnose on every run.")] = True,
) -> None:
    """Run a grid of headless sessions and compare them (the report's experiments, one command)."""
    grid, fixed = grid_of(knobs)
    if preset is not None:
        p = get_preset(preset)
        given = {k for k in knobs if knobs[k] is not None}
        fixed = {**{k: v for k, v in p.get("knobs", {}).items() if k not in given}, **fixed}
        pgrid: list[dict[str, Any]] | None = preset_grid(p)
    else:
        pgrid = None
    if pgrid is None:
        if not grid:
            fail("nothing to sweep: give a knob several values (e.g. --lr 1e-3,3e-3) or --preset")
        keys = list(grid)
        pgrid = [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]
    else:
        pgrid = [{**point, **{k: v[0] for k, v in grid.items()}} for point in pgrid] if grid else pgrid
    job_list = []
    for point in pgrid:
        kn = {**fixed, **point}
        job_list.append(Job(knobs=kn, label=point_label(point)))
    for extra in (p.get("runs", ()) if preset is not None else ()):  # a preset's own runs, e.g. with --autopilot
        job_list.append(Job(knobs={**fixed, **extra["knobs"]}, label=extra["label"],
                            autopilot=bool(extra.get("autopilot"))))
    plans = [plan_run(j.knobs, sessions=sessions_dir_opt) for j in job_list]  # every config is checked first
    threads = max(1, (os.cpu_count() or 1) // jobs)

    def start(job: Job) -> None:
        plan = plans[job_list.index(job)]
        job.log, job.out = claim(plan)
        argv = child_argv(job.knobs, job.log, sessions=plan.sessions.resolve(), control=True,
                          autopilot=job.autopilot)
        with open(job.out, "ab") as out:
            job.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        env=child_env(OMP_NUM_THREADS=str(threads)))
        job.follower = Follower(job.log)
        job.status = "running"

    con = Console(stderr=True)
    typer.echo(f"sweep: {len(job_list)} runs, {jobs} at a time, sessions in {plans[0].sessions}", err=True)
    ok = run_sweep(job_list, jobs, start, con, live=con.is_terminal)
    for j in job_list:
        if j.error:
            warn(f"{j.label}: {j.error}")
    summaries = []
    for j in job_list:
        if j.log is not None and j.log.exists() and j.log.stat().st_size:
            try:
                summaries.append(read_summary(j.log))
            except SessionError as e:
                warn(e)
    if not summaries:
        fail("no run of the sweep produced a readable session", code=1)
    table = compare(summaries)
    if as_json:
        emit_json(table.to_json())
    else:
        print_compare(table, wide=False)
        if diagnose:
            from bitnet_tui.app.cli.diagnose import print_diagnoses

            print_diagnoses([Path(s.path) for s in summaries])
    if not ok:
        raise typer.Exit(0 if all(j.status in ("finished", "not started") for j in job_list) else 1)
