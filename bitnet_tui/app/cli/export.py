"""``bitnet-tui export SESSION --to tensorboard|csv DIR``: a session in the tools people already use.

CSV: ``steps.csv``, ``evals.csv``, ``weights.csv`` (one row per layer and snapshot), ``events.csv``
(alerts, interventions, checkpoints, the end), ``system.csv`` (the system samples) and ``probes.csv`` (one row
per eval-time probe figure, long format: step, where, figure, value; docs/diagnosis.md), written with Python's
``csv`` module. TensorBoard: the same scalars through TensorBoard's own ``SummaryWriter`` (``pip install tensorboard``).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from bitnet_tui.app.cli.app import command
from bitnet_tui.app.cli.errors import warn
from bitnet_tui.app.cli.options import SessionArg, SessionsDirOption
from bitnet_tui.session.analysis.disease_view import PROBE_COLS, probe_rows
from bitnet_tui.session.analysis.fold import RunFold, timeline_item
from bitnet_tui.session.errors import UserError
from bitnet_tui.session.log.events import EvalDone, Event, StepDone, SystemSample, WeightsSnapshot
from bitnet_tui.session.log.paths import resolve_session, sessions_dir
from bitnet_tui.session.log.reader import metric_names, read_session
from bitnet_tui.session.safefs import check_writable_dir

STEP_COLS = ("step", "time", "loss", "lr", "weight_decay", "grad_norm", "tokens_per_s", "stage", "lr_spread", "mfu",
             "peak_mem_mb")
EVAL_COLS = ("step", "time", "val_loss", "unique_tokens", "generated_tokens", "distinct2", "top_share", "repetition",
             "entropy", "kl_unigram", "report_unique", "report_prompts", "state")
LAYER_COLS = ("step", "name", "neg", "zero", "pos", "scale", "rms", "flip_rate", "near_boundary", "update_ratio",
              "flip_back")


SYSTEM_COLS = ("step", "time", "cpu_percent", "cpus", "rss_mb", "threads", "load1", "gpu_util", "gpu_mem_mb",
               "gpu_mem_total_mb", "gpu_temp_c")


class CsvExport:
    """Writes the CSV files as events arrive (one row at a time: an export holds no more of the log than one
    event); the user-metric columns are given up front (:func:`~bitnet_tui.session.log.reader.metric_names`)."""

    def __init__(self, out: Path, extra_steps: Sequence[str], extra_evals: Sequence[str]) -> None:
        self.files = {name: out / f"{name}.csv" for name in ("steps", "evals", "weights", "events", "probes", "system")}
        self.extra_steps, self.extra_evals = list(extra_steps), list(extra_evals)
        self._handles: dict[str, Any] = {}
        try:
            for name, p in self.files.items():
                self._handles[name] = open(p, "w", newline="", encoding="utf-8")  # noqa: SIM115
        except BaseException:
            self.close()
            raise
        w = self._w = {name: csv.writer(h) for name, h in self._handles.items()}
        w["steps"].writerow([*STEP_COLS, *self.extra_steps])
        w["evals"].writerow([*EVAL_COLS, *self.extra_evals])
        w["weights"].writerow(LAYER_COLS)
        w["events"].writerow(("step", "time", "kind", "level", "text"))
        w["probes"].writerow(PROBE_COLS)
        w["system"].writerow(SYSTEM_COLS)
        self.fold = RunFold()  # the state column is the one fold's, as every other screen shows it

    def __call__(self, e: Event) -> None:
        self.fold.apply(e)
        w = self._w
        if isinstance(e, StepDone):
            w["steps"].writerow([getattr(e, c) for c in STEP_COLS] + [e.extra.get(k) for k in self.extra_steps])
        elif isinstance(e, EvalDone):
            row = [self.fold.state if c == "state" else getattr(e, c) for c in EVAL_COLS]
            w["evals"].writerow(row + [e.extra.get(k) for k in self.extra_evals])
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

    def close(self) -> None:
        for h in self._handles.values():
            h.close()


def export_csv(events: Sequence[Event], out: Path) -> list[Path]:
    """The CSV files of an event list (header first)."""
    writer = CsvExport(out, sorted({k for e in events if isinstance(e, StepDone) for k in e.extra}),
                       sorted({k for e in events if isinstance(e, EvalDone) for k in e.extra}))
    try:
        for e in events:
            writer(e)
    finally:
        writer.close()
    return list(writer.files.values())


def tensorboard_export(out: Path) -> Any:
    """TensorBoard's writer over ``out``, or one sentence saying what to install."""
    from bitnet_tui.instrument.sinks import TensorBoardMirror

    try:
        return TensorBoardMirror(out)
    except ImportError as e:
        raise UserError(f"TensorBoard export needs the tensorboard package ({e}); "
                        "pip install 'bitnet-tui[tensorboard]'") from None


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
    path = resolve_session(session, sessions_dir(sessions_dir_opt))
    # Two passes, neither holding the log: the user-metric columns (and the header's check, before any file is
    # made), then every event written as it is read.
    extra_steps, extra_evals = metric_names(path)
    out = check_writable_dir(directory, "export folder")
    writer = CsvExport(out, extra_steps, extra_evals) if to == "csv" else tensorboard_export(out)
    try:
        data = read_session(path, sink=writer)
    finally:
        writer.close()
    for w in data.warnings:
        warn(w)
    written = list(writer.files.values()) if to == "csv" else sorted(out.glob("events.out.tfevents.*"))
    for p in written:
        typer.echo(str(p))
