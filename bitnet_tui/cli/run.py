"""``bitnet-tui run``: train a BitNet b1.58 model with the dashboard, or headless."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from bitnet_model.run.build import USER_ERRORS, parse_lr, prepare_run
from bitnet_model.train.presets import preset as get_preset
from bitnet_tui.cli.options import SessionsDirOption

SCHEDULE_HELP = "LR schedule: two-stage (FAQ recipe), stage1 (report's Phase 1), constant, cosine."


def fail(message: str, code: int = 2) -> None:
    """One clear line on stderr, a non-zero exit, no traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _opt(kind, help_text: str, *names: str):
    return Annotated[Optional[kind], typer.Option(*names, help=help_text)]


# The run's knobs, shared by ``run`` (one value each) and documented once.
Hidden = _opt(int, "Model width; picks layers, heads, FFN and context.")
Layers = _opt(int, "Decoder blocks (default: by width).")
Heads = _opt(int, "Attention heads; must divide --hidden.")
Lr = _opt(str, "Peak learning rate, or 'auto' (by width).")
Steps = _opt(int, "Optimizer steps.")
BatchSize = _opt(int, "Sequences per step.")
Context = _opt(int, "Tokens per sequence (default: by width).")
LabelSmoothing = _opt(float, "Cross-entropy label smoothing (report: 0.1).")
GradClip = _opt(float, "Clip grad norm to this; 0 = off (report: 0.1).")
ScheduleOpt = _opt(str, SCHEDULE_HELP)
Seed = _opt(int, "Seed for weights, data order and sampling.")
Data = _opt(str, ".txt file, folder of .txt, or .jsonl with 'text' (default: embedded corpus).")
Tokenizer = _opt(str, "Your own tokenizer.json instead of training BPE.")
VocabSize = _opt(int, "BPE vocabulary size.")
EvalEvery = _opt(int, "Steps between evals (greedy samples, held-out loss).")
Device = _opt(str, "auto (CUDA if present), cpu, cuda, cuda:N.")
Quant = _opt(bool, "BitNet b1.58 (default) or the full-precision control.", "--quant/--no-quant")
Resume = _opt(str, "Continue SESSION from its last checkpoint, in a new linked session.")
From = _opt(str, "Fork SESSION@STEP from the nearest checkpoint at or before STEP, with changed knobs.", "--from")
Preset = _opt(str, "Start from a named configuration (e.g. seed-report); flags override it.")
Headless = Annotated[bool, typer.Option("--headless", help="No dashboard: a progress line (plain lines if piped).")]
Detach = Annotated[bool, typer.Option("--detach", help="Run in the background (survives logout); attach later.")]
Control = Annotated[bool, typer.Option("--control", help="Serve the owner-only control socket beside the log.")]
CheckpointEvery = Annotated[int, typer.Option(help="Save a checkpoint every N steps (0: on demand and at the end).")]


def run(
    hidden: Hidden = None,
    layers: Layers = None,
    heads: Heads = None,
    lr: Lr = None,
    steps: Steps = None,
    batch_size: BatchSize = None,
    context: Context = None,
    label_smoothing: LabelSmoothing = None,
    grad_clip: GradClip = None,
    schedule: ScheduleOpt = None,
    seed: Seed = None,
    data: Data = None,
    tokenizer: Tokenizer = None,
    vocab_size: VocabSize = None,
    eval_every: EvalEvery = None,
    device: Device = None,
    quant: Quant = None,
    headless: Headless = False,
    sessions_dir: SessionsDirOption = None,
    checkpoint_every: CheckpointEvery = 0,
    resume: Resume = None,
    from_: From = None,
    preset: Preset = None,
    detach: Detach = False,
    control: Control = False,
) -> None:
    """Train a BitNet b1.58 model and watch it: the dashboard on a terminal, headless otherwise."""
    try:
        knobs = {
            "hidden": hidden, "layers": layers, "heads": heads, "lr": parse_lr(lr), "steps": steps,
            "batch_size": batch_size, "context": context, "label_smoothing": label_smoothing,
            "grad_clip": grad_clip, "schedule": schedule, "seed": seed, "data": data, "tokenizer": tokenizer,
            "vocab_size": vocab_size, "eval_every": eval_every, "device": device, "quant": quant,
        }
    except USER_ERRORS as e:
        fail(str(e))
        return
    if detach:
        from bitnet_tui.cli.remote import detach_run

        detach_run(knobs, sessions=sessions_dir, checkpoint_every=checkpoint_every, resume=resume, fork=from_,
                   preset=preset)
        return
    if preset is not None:
        try:
            p = get_preset(preset)
        except USER_ERRORS as e:
            fail(str(e))
            return
        first = {k: v[0] for k, v in p.get("sweep", {}).items()}
        knobs = {**p["knobs"], **first, **{k: v for k, v in knobs.items() if v is not None}}
    tty = sys.stdout.isatty() and sys.stdin.isatty()
    if not headless and not tty:
        typer.echo("note: output is not a terminal; running headless (use --headless to say so)", err=True)
        headless = True
    try:
        prepared = prepare_run(knobs, sessions=sessions_dir, resume=resume, fork=from_,
                               checkpoint_every=checkpoint_every,
                               on_nonfinite="stop" if headless and not control else "pause")
    except USER_ERRORS as e:
        fail(str(e))
        return
    tr, path, writer = prepared.trainer, prepared.path, prepared.writer
    typer.echo(f"session: {path}", err=True)
    server = None
    if control:
        from bitnet_model.control.peer import ControlError, control_path
        from bitnet_model.control.server import ControlServer

        try:
            server = ControlServer(tr, control_path(path))
        except ControlError as e:
            prepared.writer.close()
            fail(str(e))
            return
        typer.echo(f"control: {server.path}", err=True)
    try:
        if headless:
            from bitnet_tui.headless import HeadlessView

            end = HeadlessView(tr, tty=sys.stdout.isatty()).run()
        else:
            from bitnet_tui.dashboard.app import make_app

            app = make_app(mode="live", trainer=tr, session_path=path, writer=writer,
                           no_rewind="the control socket serves this run; fork it with --from" if control else "")
            try:
                app.run()
            finally:
                tr, path, writer = app.trainer, app.session_path or path, app.writer
            end = tr.last_end
    finally:
        if server is not None:
            server.close()
        writer.close()
    if end is None or end.reason == "error":
        fail(f"the run ended with an error: {end.error if end else 'unknown'} (log: {path})", code=1)
    typer.echo(f"run ended ({end.reason}) at step {end.step}; log: {path}", err=True)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
