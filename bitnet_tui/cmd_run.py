"""``bitnet-tui run``: train a BitNet b1.58 model with the dashboard, or headless."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from bitnet_model.presets import preset as get_preset
from bitnet_tui.runbuild import USER_ERRORS, parse_lr, prepare_run

SCHEDULE_HELP = "LR schedule: two-stage (FAQ recipe), stage1 (report's Phase 1), constant, cosine."


def fail(message: str, code: int = 2) -> None:
    """One clear line on stderr, a non-zero exit, no traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def knob_options(
    hidden: Annotated[Optional[int], typer.Option(help="Model width; picks layers, heads, FFN and context.")] = None,
    layers: Annotated[Optional[int], typer.Option(help="Decoder blocks (default: by width).")] = None,
    heads: Annotated[Optional[int], typer.Option(help="Attention heads; must divide --hidden.")] = None,
    lr: Annotated[Optional[str], typer.Option(help="Peak learning rate, or 'auto' (by width).")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Optimizer steps.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Sequences per step.")] = None,
    context: Annotated[Optional[int], typer.Option(help="Tokens per sequence (default: by width).")] = None,
    label_smoothing: Annotated[Optional[float], typer.Option(help="Cross-entropy label smoothing (report: 0.1).")] = None,
    grad_clip: Annotated[Optional[float], typer.Option(help="Clip grad norm to this; 0 = off (report: 0.1).")] = None,
    schedule: Annotated[Optional[str], typer.Option(help=SCHEDULE_HELP)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for weights, data order and sampling.")] = None,
    data: Annotated[Optional[str], typer.Option(help=".txt file, folder of .txt, or .jsonl with 'text' (default: embedded corpus).")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(help="Your own tokenizer.json instead of training BPE.")] = None,
    vocab_size: Annotated[Optional[int], typer.Option(help="BPE vocabulary size.")] = None,
    eval_every: Annotated[Optional[int], typer.Option(help="Steps between evals (greedy samples, held-out loss).")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto (CUDA if present), cpu, cuda, cuda:N.")] = None,
    quant: Annotated[Optional[bool], typer.Option("--quant/--no-quant", help="BitNet b1.58 (default) or the full-precision control.")] = None,
) -> dict:
    return {
        "hidden": hidden, "layers": layers, "heads": heads, "lr": parse_lr(lr), "steps": steps,
        "batch_size": batch_size, "context": context, "label_smoothing": label_smoothing, "grad_clip": grad_clip,
        "schedule": schedule, "seed": seed, "data": data, "tokenizer": tokenizer, "vocab_size": vocab_size,
        "eval_every": eval_every, "device": device, "quant": quant,
    }


def run(
    hidden: Annotated[Optional[int], typer.Option(help="Model width; picks layers, heads, FFN and context.")] = None,
    layers: Annotated[Optional[int], typer.Option(help="Decoder blocks (default: by width).")] = None,
    heads: Annotated[Optional[int], typer.Option(help="Attention heads; must divide --hidden.")] = None,
    lr: Annotated[Optional[str], typer.Option(help="Peak learning rate, or 'auto' (by width).")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Optimizer steps.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Sequences per step.")] = None,
    context: Annotated[Optional[int], typer.Option(help="Tokens per sequence (default: by width).")] = None,
    label_smoothing: Annotated[Optional[float], typer.Option(help="Cross-entropy label smoothing (report: 0.1).")] = None,
    grad_clip: Annotated[Optional[float], typer.Option(help="Clip grad norm to this; 0 = off (report: 0.1).")] = None,
    schedule: Annotated[Optional[str], typer.Option(help=SCHEDULE_HELP)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for weights, data order and sampling.")] = None,
    data: Annotated[Optional[str], typer.Option(help=".txt file, folder of .txt, or .jsonl with 'text' (default: embedded corpus).")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(help="Your own tokenizer.json instead of training BPE.")] = None,
    vocab_size: Annotated[Optional[int], typer.Option(help="BPE vocabulary size.")] = None,
    eval_every: Annotated[Optional[int], typer.Option(help="Steps between evals (greedy samples, held-out loss).")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto (CUDA if present), cpu, cuda, cuda:N.")] = None,
    quant: Annotated[Optional[bool], typer.Option("--quant/--no-quant", help="BitNet b1.58 (default) or the full-precision control.")] = None,
    headless: Annotated[bool, typer.Option("--headless", help="No dashboard: a progress display, or plain lines when not a TTY.")] = False,
    sessions_dir: Annotated[Optional[str], typer.Option(help="Where session logs go (default: $BITNET_TUI_SESSIONS or ./sessions).")] = None,
    checkpoint_every: Annotated[int, typer.Option(help="Save a checkpoint every N steps (0: only on demand and at the end).")] = 0,
    resume: Annotated[Optional[str], typer.Option(help="Continue SESSION from its last checkpoint, in a new linked session.")] = None,
    from_: Annotated[Optional[str], typer.Option("--from", help="Fork SESSION@STEP from the nearest checkpoint at or before STEP, with the knobs you change.")] = None,
    preset: Annotated[Optional[str], typer.Option(help="Start from a named configuration (e.g. seed-report); flags override it.")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Run in the background, detached from this terminal (it survives logout); steer it with 'bitnet-tui attach'.")] = False,
    control: Annotated[bool, typer.Option("--control", help="Serve a control socket beside the log so 'bitnet-tui attach' and 'ctl' can steer the run.")] = False,
) -> None:
    """Train a BitNet b1.58 model and watch it: the dashboard on a terminal, headless otherwise."""
    try:
        knobs = knob_options(hidden, layers, heads, lr, steps, batch_size, context, label_smoothing, grad_clip,
                             schedule, seed, data, tokenizer, vocab_size, eval_every, device, quant)
    except USER_ERRORS as e:
        fail(str(e))
        return
    if detach:
        from bitnet_tui.cmd_remote import detach_run

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
    tr, path = prepared.trainer, prepared.path
    typer.echo(f"session: {path}", err=True)
    server = None
    if control:
        from bitnet_model.remote import ControlError, ControlServer, control_path

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
            from bitnet_tui.app import make_app

            make_app(mode="live", trainer=tr, session_path=path).run()
            end = tr.last_end
    finally:
        if server is not None:
            server.close()
        prepared.writer.close()
    if end is None or end.reason == "error":
        fail(f"the run ended with an error: {end.error if end else 'unknown'} (log: {path})", code=1)
    typer.echo(f"run ended ({end.reason}) at step {end.step}; log: {path}", err=True)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
