"""``bitnet-tui run``: train a BitNet b1.58 model with the dashboard, or headless, or in the background."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from bitnet_model.train.distributed import launched
from bitnet_model.train.presets import preset as get_preset
from bitnet_tui.app.cli.app import command
from bitnet_tui.app.cli.errors import fail, note
from bitnet_tui.app.cli.options import SessionsDirOption, with_knobs
from bitnet_tui.app.runs.plan import parse_lr, plan_run
from bitnet_tui.session.text import printable, shown_path

Resume = Annotated[Optional[str], typer.Option(help="Continue SESSION from its last checkpoint, in a new linked "
                                                     "session (a checkpoint that will not load falls back to the "
                                                     "previous one, and says so).")]
From = Annotated[Optional[str], typer.Option("--from", help="Fork SESSION@STEP (the checkpoint at STEP; SESSION alone: "
                                                            "its last checkpoint) with changed knobs.")]
Preset = Annotated[Optional[str], typer.Option(help="Start from a named configuration (e.g. seed-report); flags "
                                                    "override it.")]
Headless = Annotated[bool, typer.Option("--headless", help="No dashboard: a progress line (plain lines if piped): "
                                        "step, bar, ETA and steps/s (mean step time over the last 100 steps, "
                                        "pauses left out), tok/s (median of the last 15 steps), elapsed.")]
Detach = Annotated[bool, typer.Option("--detach", help="Run in the background (survives logout); attach later.")]
Control = Annotated[bool, typer.Option("--control/--no-control", help="Serve the owner-only control socket beside "
                                       "the log (ctl, attach and watch from any shell of this user).")]
Autopilot = Annotated[bool, typer.Option("--autopilot", help="Apply the audit's decay fix when the weights decay, and "
                                         "lower the LR on a loss spike; each an undoable intervention (source auto).")]
CheckpointEvery = Annotated[int, typer.Option(min=0, max=1_000_000_000,
                                              help="Save a checkpoint every N steps (0: on demand and at the end).")]
KeepCheckpoints = Annotated[int, typer.Option(min=0, max=1_000_000, help="Periodic checkpoints kept (the newest); "
                                              "ones asked for with c or ctl, and the final one, are always kept. "
                                              "0 keeps all.")]
SessionFile = Annotated[Optional[str], typer.Option(hidden=True, help="Write this (already created, empty) log: "
                                                                      "how a parent process names its child's run.")]
Nproc = Annotated[Optional[int], typer.Option(min=1, max=1024, help="Processes to train with (torch.distributed: "
                                              "NCCL on CUDA, gloo on CPU); one log, one dashboard.")]
TensorBoard = Annotated[Optional[str], typer.Option(help="Also write TensorBoard scalars to this folder "
                                                         "(pip install tensorboard).")]


def resolve_knobs(knobs: dict[str, Any], preset: str | None) -> dict[str, Any]:
    """The knobs as the run will use them: the LR parsed, a preset's values under the flags given."""
    knobs = dict(knobs, lr=parse_lr(knobs.get("lr")))
    if preset is None:
        return knobs
    p = get_preset(preset)
    first = {k: v[0] for k, v in p.get("sweep", {}).items()}
    return {**p["knobs"], **first, **{k: v for k, v in knobs.items() if v is not None}}


@command("run")
@with_knobs()
def run(
    *,
    knobs: dict[str, Any],
    headless: Headless = False,
    sessions_dir: SessionsDirOption = None,
    checkpoint_every: CheckpointEvery = 0,
    keep_checkpoints: KeepCheckpoints = 3,
    resume: Resume = None,
    from_: From = None,
    preset: Preset = None,
    detach: Detach = False,
    control: Control = True,
    autopilot: Autopilot = False,
    nproc: Nproc = None,
    tensorboard: TensorBoard = None,
    session_file: SessionFile = None,
) -> None:
    """Train a BitNet b1.58 model and watch it: the dashboard on a terminal, headless otherwise."""
    knobs = resolve_knobs(knobs, preset)
    opts = {"checkpoint_every": checkpoint_every, "keep_checkpoints": keep_checkpoints, "tensorboard": tensorboard,
            "autopilot": autopilot}
    if nproc is not None and nproc > 1 and not launched():
        from bitnet_tui.app.cli.launch import launch

        launch(knobs, nproc=nproc, sessions=sessions_dir, resume=resume, fork=from_, detach=detach,
               session_file=session_file, **opts)
        return
    if launched():  # one rank of a torchrun / --nproc job: join the group, and leave it on the way out
        from bitnet_model.train.distributed import joined

        with joined(knobs.get("device")):  # the run (its model, DDP's reducer) is gone before the group is
            ended = _train(knobs, headless=True, sessions_dir=sessions_dir, resume=resume, from_=from_,
                           control=control, session_file=session_file, opts=opts)
    else:
        ended = _train(knobs, headless=headless, sessions_dir=sessions_dir, resume=resume, from_=from_,
                       control=control, session_file=session_file, opts=opts, detach=detach)
    if ended is not None:
        _finish(*ended)


def _train(knobs: dict[str, Any], *, headless: bool, sessions_dir: str | None, resume: str | None,
           from_: str | None, control: bool, session_file: str | None, opts: dict[str, Any],
           detach: bool = False) -> tuple[Any, Any, bool] | None:
    """Train in front of the user; return how it ended, where its log is, and whether this rank stays quiet."""
    if detach:
        from bitnet_tui.app.cli.detach import detach_run

        detach_run(knobs, sessions=sessions_dir, resume=resume, fork=from_, **opts)
        return None
    plan = plan_run(knobs, sessions=sessions_dir, resume=resume, fork=from_)
    tty = sys.stdout.isatty() and sys.stdin.isatty()
    if not headless and not tty:
        note("output is not a terminal; running headless (use --headless to say so)")
        headless = True
    from bitnet_tui.app.runs.build import build_run

    live = build_run(plan, session_file=session_file, argv=sys.argv, control=control,
                     on_nonfinite="stop" if headless and not opts["autopilot"] else "pause", **opts)
    main = live.trainer.rank == 0
    for n in plan.notes if main else ():
        note(n)
    if live.session_path is not None and main:
        typer.echo(f"session: {shown_path(live.session_path)}", err=True)
    return _watch(live, headless=headless, control=control), live.session_path, not main


def _watch(live: Any, *, headless: bool, control: bool) -> Any:
    """Run it in front of the user (dashboard or headless) until it ends; return how it ended."""
    from bitnet_tui.instrument.dist import World

    if headless or not World.detect().main:
        from bitnet_tui.app.headless import HeadlessView

        view = HeadlessView(live, tty=sys.stdout.isatty(), out=sys.stdout)
        with live.signals():
            return view.watch()
    from bitnet_tui.app.dashboard.app import make_app

    app = make_app("live", run=live,
                   no_rewind="the control socket serves this run; fork it with --from" if control else "")
    with live.signals(also=app.hang_up):
        app.run()
    final = app.source.run  # a rewind replaced the run the app started with
    return final.last_end


def _finish(end: Any, path: Any, quiet: bool = False) -> None:
    from bitnet_tui.app.runs.local import exit_code

    if quiet:  # another rank of a job: rank 0 speaks for it
        raise typer.Exit(exit_code(end.reason if end else None))
    if end is None:
        fail(f"the run ended without saying how (log: {path})", code=1)
    code = exit_code(end.reason)
    if code == 1:
        fail(f"the run ended: {end.reason}{': ' + end.error if end.error else ''} (log: {path})", code=1)
    typer.echo(f"run ended ({printable(end.reason, 40)}) at step {end.step}; log: {shown_path(path)}", err=True)
    if code:
        raise typer.Exit(code)
