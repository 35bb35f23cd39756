"""``bitnet-tui sweep``: one knob or a grid, as headless sessions, then the compare table.

Each run is its own ``bitnet-tui run --headless`` process (``--jobs`` at once, the
CPU threads split between them), so a sweep is exactly the runs you could have
started by hand, each with its own session log. Ctrl+C stops the running ones
cleanly (they write ``run_ended`` and a checkpoint) and keeps every session.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from bitnet_model.analysis.compare import compare
from bitnet_model.analysis.summary import read_summary
from bitnet_model.log.errors import SessionError
from bitnet_model.log.events import EvalDone, RunEnded, StepDone
from bitnet_model.log.follow import Follower
from bitnet_model.log.paths import sessions_dir
from bitnet_model.log.text import safe_text
from bitnet_model.train.config import ConfigError
from bitnet_model.train.presets import preset as get_preset
from bitnet_tui.cli.logs import _compare_table, _console
from bitnet_tui.cli.options import SessionsDirOption
from bitnet_tui.cli.run import fail

GRID_KNOBS = ("lr", "hidden", "label_smoothing", "grad_clip", "schedule", "seed")
FIXED_KNOBS = ("steps", "batch_size", "context", "layers", "heads", "vocab_size", "eval_every", "data", "device")


def parse_list(name: str, raw: str | None, kind: type) -> list[Any] | None:
    if raw is None:
        return None
    out = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if kind is str:
            out.append(part)
            continue
        try:
            out.append(kind(part))
        except ValueError:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(f"{flag} takes a comma-separated list of numbers, got {part!r}") from None
    if not out:
        raise ConfigError(f"--{name.replace('_', '-')} is empty")
    return out


@dataclass
class Job:
    knobs: dict[str, Any]
    argv: list[str]
    proc: subprocess.Popen | None = None
    log: Path | None = None
    follower: Follower | None = None
    step: int = 0
    total: int = 0
    loss: float | None = None
    unique: int | None = None
    state: str = ""
    status: str = "queued"
    error: str = ""
    out_path: Path | None = None
    stderr_seen: list[str] = field(default_factory=list)

    def label(self, keys: list[str]) -> str:
        return " ".join(f"{k}={self.knobs[k]}" for k in keys)


def _flag(k: str) -> str:
    return "--" + k.replace("_", "-")


def build_jobs(grid: dict[str, list[Any]], fixed: dict[str, Any], sdir: Path) -> list[Job]:
    keys = list(grid)
    jobs = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        knobs = dict(zip(keys, combo))
        argv = [sys.executable, "-m", "bitnet_tui", "run", "--headless", "--sessions-dir", str(sdir)]
        for k, v in {**fixed, **knobs}.items():
            if v is None:
                continue
            if k == "quant":
                argv.append("--quant" if v else "--no-quant")
            else:
                argv += [_flag(k), str(v)]
        jobs.append(Job(knobs=knobs, argv=argv))
    return jobs


def _start(job: Job, threads: int, outdir: Path, n: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    job.out_path = outdir / f".sweep-{os.getpid()}-{n}.out"
    out = open(job.out_path, "w", encoding="utf-8")
    job.proc = subprocess.Popen(job.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
    out.close()
    job.status = "starting"


def _poll(job: Job) -> None:
    if job.log is None and job.out_path is not None:
        try:
            text = job.out_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        for line in text.splitlines():
            if line.startswith("session: "):
                job.log = Path(line[len("session: "):].strip())
                job.follower = Follower(job.log)
                job.status = "running"
            elif line.startswith("error: "):
                job.error = line[len("error: "):]
    _follow(job)
    if job.proc is not None and job.proc.poll() is not None and job.status in ("starting", "running", "queued"):
        job.status = "finished" if job.proc.returncode == 0 else "failed"
        _poll_last(job)


def _follow(job: Job) -> None:
    """Take the run's new events from its log into the progress row."""
    if job.follower is None:
        return
    try:
        for ev in job.follower.poll():
            if isinstance(ev, StepDone):
                job.step, job.loss = ev.step, ev.loss
            elif isinstance(ev, EvalDone):
                job.unique, job.state = ev.unique_tokens, ev.state
            elif isinstance(ev, RunEnded):
                job.status = ev.reason
            elif ev.kind == "run_started":
                job.total = ev.total_steps
    except (SessionError, OSError):
        pass


def _poll_last(job: Job) -> None:
    status = job.status
    _follow(job)
    job.status = status  # the process's exit code has the last word
    if job.proc is not None and job.proc.returncode not in (0, None) and not job.error and job.out_path:
        lines = [x for x in job.out_path.read_text(errors="replace").splitlines() if x.strip()]
        job.error = lines[-1] if lines else f"exit code {job.proc.returncode}"


def _table(jobs: list[Job], keys: list[str]) -> Table:
    t = Table(title="sweep")
    for col in ("run", "status", "step", "loss", "unique", "state"):
        t.add_column(col, justify="right" if col in ("step", "loss", "unique") else "left")
    for j in jobs:
        style = {"finished": "green", "failed": "red", "running": "cyan"}.get(j.status, "")
        t.add_row(
            Text(j.label(keys) or "run"), Text(j.status, style=style),
            f"{j.step}/{j.total or '?'}", "" if j.loss is None else f"{j.loss:.3f}",
            "" if j.unique is None else str(j.unique), Text(safe_text(j.state or j.error, newlines=False, limit=80)),
        )
    return t


def run_sweep(jobs: list[Job], keys: list[str], n_jobs: int, sdir: Path, console: Console, live: bool) -> bool:
    """Run the jobs; True when all of them ran to the end. Ctrl+C stops what is running, cleanly."""
    threads = max(1, (os.cpu_count() or 1) // n_jobs)
    queue = list(jobs)
    running: list[Job] = []
    interrupted = False
    sdir.mkdir(parents=True, exist_ok=True)
    n = 0
    last_plain = 0.0

    def tick(view: Live | None) -> None:
        nonlocal n, last_plain
        while queue and len(running) < n_jobs and not interrupted:
            job = queue.pop(0)
            n += 1
            _start(job, threads, sdir, n)
            running.append(job)
        for j in list(running):
            _poll(j)
            if j.proc is not None and j.proc.poll() is not None:
                _poll(j)
                running.remove(j)
        if view is not None:
            view.update(_table(jobs, keys))
        elif time.monotonic() - last_plain > 10:
            last_plain = time.monotonic()
            for j in jobs:
                console.print(f"{j.label(keys)}: {j.status} step {j.step}/{j.total or '?'} unique {j.unique} {j.state}",
                              markup=False, highlight=False)

    view = Live(_table(jobs, keys), console=console, refresh_per_second=2) if live else None
    try:
        if view is not None:
            view.start()
        while queue or running:
            try:
                tick(view)
                time.sleep(0.5)
            except KeyboardInterrupt:
                interrupted = True
                queue.clear()
                for j in running:
                    if j.proc is not None and j.proc.poll() is None:
                        j.proc.send_signal(signal.SIGTERM)
                console.print("stopping: the running sessions end cleanly and are kept", markup=False)
        tick(view)
    finally:
        if view is not None:
            view.stop()
        for j in jobs:
            if j.proc is not None and j.proc.poll() is None:
                j.proc.wait()
            if j.out_path is not None:
                j.out_path.unlink(missing_ok=True)
    for j in jobs:
        if j.status == "queued":
            j.status = "not started"
    return not interrupted and all(j.status == "finished" for j in jobs)


def sweep(
    lr: Annotated[Optional[str], typer.Option(help="Peak LRs, comma-separated (e.g. 4e-4,5e-4,6e-4,8e-4).")] = None,
    hidden: Annotated[Optional[str], typer.Option(help="Model widths, comma-separated (e.g. 256,512).")] = None,
    label_smoothing: Annotated[Optional[str], typer.Option(help="Label smoothing values (e.g. 0,0.1).")] = None,
    grad_clip: Annotated[Optional[str], typer.Option(help="Grad-clip values; 0 = off (e.g. 0,0.1).")] = None,
    schedule: Annotated[Optional[str], typer.Option(help="Schedules (e.g. two-stage,stage1).")] = None,
    seed: Annotated[Optional[str], typer.Option(help="Seeds (e.g. 0,1,2).")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Optimizer steps per run.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Sequences per step.")] = None,
    context: Annotated[Optional[int], typer.Option(help="Tokens per sequence.")] = None,
    layers: Annotated[Optional[int], typer.Option(help="Decoder blocks.")] = None,
    heads: Annotated[Optional[int], typer.Option(help="Attention heads.")] = None,
    vocab_size: Annotated[Optional[int], typer.Option(help="BPE vocabulary size.")] = None,
    eval_every: Annotated[Optional[int], typer.Option(help="Steps between evals.")] = None,
    data: Annotated[Optional[str], typer.Option(help="Your text (.txt, folder, .jsonl).")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda, cuda:N.")] = None,
    quant: Annotated[Optional[bool], typer.Option("--quant/--no-quant", help="BitNet b1.58 or full precision.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Runs at once (CPU threads are split between them).")] = 1,
    preset: Annotated[Optional[str], typer.Option(help="A named sweep (e.g. seed-report); flags override it.")] = None,
    sessions_dir_opt: SessionsDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the compare table as JSON at the end.")] = False,
) -> None:
    """Run a grid of headless sessions and compare them (the report's experiments, one command)."""
    try:
        if jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {jobs}")
        grid: dict[str, list[Any]] = {}
        fixed: dict[str, Any] = {}
        if preset is not None:
            p = get_preset(preset)
            fixed.update(p.get("knobs", {}))
            grid.update({k: list(v) for k, v in p.get("sweep", {}).items()})
        lists = {"lr": (lr, float), "hidden": (hidden, int), "label_smoothing": (label_smoothing, float),
                 "grad_clip": (grad_clip, float), "schedule": (schedule, str), "seed": (seed, int)}
        for k, (raw, kind) in lists.items():
            vals = parse_list(k, raw, kind)
            if vals is not None:
                grid[k] = vals
                fixed.pop(k, None)
        given = {"steps": steps, "batch_size": batch_size, "context": context, "layers": layers, "heads": heads,
                 "vocab_size": vocab_size, "eval_every": eval_every, "data": data, "device": device, "quant": quant}
        fixed.update({k: v for k, v in given.items() if v is not None})
        if not grid:
            raise ConfigError("nothing to sweep: give at least one list (e.g. --lr 1e-3,3e-3) or --preset")
        for k in list(grid):
            if k in fixed:
                fixed.pop(k)
    except ConfigError as e:
        fail(str(e))
        return
    sdir = sessions_dir(sessions_dir_opt)
    job_list = build_jobs(grid, fixed, sdir)
    keys = [k for k in grid if len(grid[k]) > 1] or list(grid)
    console = Console(stderr=True)
    typer.echo(f"sweep: {len(job_list)} runs, {jobs} at a time, sessions in {sdir}", err=True)
    ok = run_sweep(job_list, keys, jobs, sdir, console, live=console.is_terminal)
    for j in job_list:
        if j.error:
            typer.echo(f"warning: {j.label(keys)}: {safe_text(j.error, newlines=False, limit=300)}", err=True)
    logs = [j.log for j in job_list if j.log is not None and j.log.exists()]
    summaries = []
    for log in logs:
        try:
            summaries.append(read_summary(log))
        except SessionError as e:
            typer.echo(f"warning: {e}", err=True)
    if not summaries:
        fail("no run of the sweep produced a readable session", code=1)
    table = compare(summaries)
    if as_json:
        import json

        typer.echo(json.dumps(table.to_json(), ensure_ascii=False, allow_nan=False))
    else:
        _console().print(_compare_table(table))
    if not ok:
        raise typer.Exit(0 if all(j.status in ("finished", "interrupted", "terminated", "not started")
                                  for j in job_list) else 1)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
