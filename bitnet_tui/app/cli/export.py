"""``bitnet-tui export SESSION --to tensorboard|csv DIR``: a session in the tools people already use.

CSV: ``steps.csv``, ``evals.csv``, ``weights.csv`` (one row per layer and snapshot), ``events.csv``
(alerts, interventions, checkpoints, the end), ``system.csv`` (the system samples) and ``probes.csv`` (one row
per eval-time probe figure, long format: step, where, figure, value; docs/diagnosis.md), written with Python's
``csv`` module. TensorBoard: the same scalars through TensorBoard's own ``SummaryWriter`` (``pip install tensorboard``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Any

import typer

from bitnet_tui.app.cli.app import command
from bitnet_tui.app.cli.errors import warn
from bitnet_tui.app.cli.options import SessionArg, SessionsDirOption
from bitnet_tui.session.analysis.disease_view import PROBE_COLS, probe_rows
from bitnet_tui.session.analysis.fold import RunFold, timeline_item
from bitnet_tui.session.errors import UserError
from bitnet_tui.session.log.events import EvalDone, StepDone, SystemSample, WeightsSnapshot
from bitnet_tui.session.log.paths import resolve_session, sessions_dir
from bitnet_tui.session.log.reader import read_session
from bitnet_tui.session.safefs import check_writable_dir

STEP_COLS = ("step", "time", "loss", "lr", "weight_decay", "grad_norm", "tokens_per_s", "stage", "lr_spread", "mfu",
             "peak_mem_mb")
EVAL_COLS = ("step", "time", "val_loss", "unique_tokens", "generated_tokens", "distinct2", "top_share", "repetition",
             "entropy", "kl_unigram", "report_unique", "report_prompts", "state")
LAYER_COLS = ("step", "name", "neg", "zero", "pos", "scale", "rms", "flip_rate", "near_boundary", "update_ratio",
              "flip_back")


SYSTEM_COLS = ("step", "time", "cpu_percent", "cpus", "rss_mb", "threads", "load1", "gpu_util", "gpu_mem_mb",
               "gpu_mem_total_mb", "gpu_temp_c")


def export_csv(events: list[Any], out: Path) -> list[Path]:
    files = {name: out / f"{name}.csv" for name in ("steps", "evals", "weights", "events", "probes", "system")}
    handles = {name: open(p, "w", newline="", encoding="utf-8") for name, p in files.items()}  # noqa: SIM115
    try:
        w = {name: csv.writer(h) for name, h in handles.items()}
        extra_steps = sorted({k for e in events if isinstance(e, StepDone) for k in e.extra})
        extra_evals = sorted({k for e in events if isinstance(e, EvalDone) for k in e.extra})
        w["steps"].writerow([*STEP_COLS, *extra_steps])
        w["evals"].writerow([*EVAL_COLS, *extra_evals])
        w["weights"].writerow(LAYER_COLS)
        w["events"].writerow(("step", "time", "kind", "level", "text"))
        w["probes"].writerow(PROBE_COLS)
        w["system"].writerow(SYSTEM_COLS)
        fold = RunFold()  # the state column is the one fold's, as every other screen shows it
        for e in events:
            fold.apply(e)
            if isinstance(e, StepDone):
                w["steps"].writerow([getattr(e, c) for c in STEP_COLS] + [e.extra.get(k) for k in extra_steps])
            elif isinstance(e, EvalDone):
                row = [fold.state if c == "state" else getattr(e, c) for c in EVAL_COLS]
                w["evals"].writerow(row + [e.extra.get(k) for k in extra_evals])
                w["probes"].writerows((e.step, *r) for r in probe_rows(e.probes))
            elif isinstance(e, WeightsSnapshot):
                for lw in e.layers:
                    w["weights"].writerow([e.step] + [getattr(lw, c) for c in LAYER_COLS[1:]])
            elif isinstance(e, SystemSample):
                w["system"].writerow([getattr(e, c) for c in SYSTEM_COLS])
            else:
                item = timeline_item(e)
                if item is not None:
                    w["events"].writerow((item.step, item.time, item.kind, item.level, item.text))
    finally:
        for h in handles.values():
            h.close()
    return list(files.values())


def export_tensorboard(events: list[Any], out: Path) -> list[Path]:
    from bitnet_tui.instrument.sinks import TensorBoardMirror

    try:
        mirror = TensorBoardMirror(out)
    except ImportError as e:
        raise UserError(f"TensorBoard export needs the tensorboard package ({e}); "
                        "pip install 'bitnet-tui[tensorboard]'") from None
    try:
        for e in events:
            mirror(e)
    finally:
        mirror.close()
    return sorted(out.glob("events.out.tfevents.*"))


@command("export")
def export(
    session: SessionArg,
    to: Annotated[str, typer.Option("--to", help="tensorboard or csv.")],
    directory: Annotated[str, typer.Argument(help="Folder to write into (created if needed).")],
    sessions_dir_opt: SessionsDirOption = None,
) -> None:
    """Write a session's figures for TensorBoard or a spreadsheet."""
    if to not in ("tensorboard", "csv"):
        raise UserError(f"--to must be tensorboard or csv, got {to[:40]!r}")
    data = read_session(resolve_session(session, sessions_dir(sessions_dir_opt)))
    for w in data.warnings:
        warn(w)
    out = check_writable_dir(directory, "export folder")
    written = (export_csv if to == "csv" else export_tensorboard)(data.stream(), out)
    for p in written:
        typer.echo(str(p))
