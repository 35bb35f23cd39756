"""Commands that read session logs: ``sessions``, ``summary``, ``compare``.

A log that cannot be used is one line and exit 2 (the same from every command); among several, unreadable
ones are warnings and the rest is shown. Text from a log is shown literally (:mod:`bitnet_tui.app.cli.render`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from bitnet_tui.app.cli.app import command
from bitnet_tui.app.cli.errors import fail, warn
from bitnet_tui.app.cli.options import JsonOption, SessionArg, SessionsDirOption, resolve_sessions
from bitnet_tui.app.cli.render import (
    STATUS_STYLE,
    at,
    cell,
    console,
    emit_json,
    key_cells,
    print_compare,
    status,
    step_text,
    when,
)
from bitnet_tui.session.analysis.compare import compare
from bitnet_tui.session.analysis.summary import Summary, read_summary
from bitnet_tui.session.log.errors import SessionError
from bitnet_tui.session.log.paths import list_sessions, resolve_session, sessions_dir, short_name
from bitnet_tui.session.text import fmt_value, printable

WideOption = Annotated[bool, typer.Option("--wide", help="Full session names and every key setting (no width limit).")]


def load(paths: list[Path]) -> tuple[list[Summary], list[tuple[Path, str]]]:
    """Summaries of the readable logs, and (path, reason) for the others."""
    good, bad = [], []
    for p in paths:
        try:
            good.append(read_summary(p))
        except SessionError as e:
            bad.append((p, str(e)))
    return good, bad


@command("sessions")
def sessions(sessions_dir_opt: SessionsDirOption = None, wide: WideOption = False, as_json: JsonOption = False) -> None:
    """List the session logs, oldest first (the newest ends up next to your prompt); one line each."""
    d = sessions_dir(sessions_dir_opt)
    if not d.exists():
        fail(f"{d} does not exist (set --sessions-dir or $BITNET_TUI_SESSIONS)")
    if not d.is_dir():
        fail(f"{d} is not a directory")
    if not os.access(d, os.R_OK | os.X_OK):
        fail(f"{d} cannot be read (permission denied)")
    good, bad = load(list_sessions(d))
    if as_json:
        emit_json({"directory": str(d), "sessions": [_session_json(s) for s in good],
                   "unreadable": [{"path": str(p), "error": why} for p, why in bad]})
        return
    if not good and not bad:
        typer.echo(f"no sessions in {printable(d)}")
        return
    rows: list[tuple[float, list[Any]]] = []
    for s in good:
        k = key_cells(s.key_config)
        cells = [Text(when(s.started)), cell(s.name if wide else short_name(s.name)),
                 Text(f"{s.last_step}/{s.total_steps or '?'}"), cell(s.last_loss), cell(s.verdict),
                 status(s, short=not wide)]
        if wide:
            cells[3:3] = [cell(k[key]) for key in ("hidden", "lr", "optimizer", "schedule", "ls", "clip", "quant")]
            cells.insert(-2, at(s.min_unique, s.min_unique_step))
        rows.append((s.started, cells))
    for p, reason in bad:
        warn(reason)
        mtime = p.stat().st_mtime if p.exists() else 0.0
        cells = [Text(when(mtime)), cell(p.name), Text(""), Text(""), Text("(see the warning above)", style="red"),
                 Text("unreadable", style="red")]
        if wide:
            cells[3:3] = [Text("")] * 7
            cells.insert(-2, Text(""))
        rows.append((mtime, cells))
    rows.sort(key=lambda r: r[0])
    table = Table(title=Text(f"sessions in {printable(d)}"), title_justify="left", box=None, pad_edge=False,
                  header_style="bold", padding=(0, 1, 0, 0))
    cols = ["started", "name", "steps"] + (["hidden", "lr", "opt", "schedule", "ls", "clip", "quant"] if wide else []) \
        + ["loss"] + (["min unique"] if wide else []) + ["verdict", "status"]
    mins = {"started": 11, "steps": 5, "loss": 5, "verdict": 22, "status": 8, "name": 12}
    for col in cols:
        table.add_column(col, no_wrap=True, overflow="ellipsis", max_width=None if wide or col != "name" else 18,
                         min_width=mins.get(col), justify="right" if col in ("steps", "loss", "hidden", "lr", "ls",
                                                                              "clip") else "left")
    for _, row in rows:
        table.add_row(*row)
    console(wide).print(table)


def _session_json(s: Summary) -> dict[str, Any]:
    return {k: v for k, v in s.to_json().items() if k not in ("timeline", "config", "weights")}


@command("summary")
def summary(session: SessionArg, sessions_dir_opt: SessionsDirOption = None, as_json: JsonOption = False) -> None:
    """One session: configuration, optimizer audit, verdict with its figures, weights, alerts and interventions."""
    s = read_summary(resolve_session(session, sessions_dir(sessions_dir_opt)))
    for w in s.warnings:
        warn(w)
    if as_json:
        emit_json(s.to_json())
        return
    con = console()
    head = Text()
    head.append(printable(s.name), style="bold")
    head.append("  ")
    head.append_text(status(s))
    head.append(f"  step {s.last_step}/{s.total_steps or '?'}")
    if s.parent:
        head.append(f"  from {printable(s.parent)}", style="dim")
    con.print(head)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    for key, value in key_cells(s.key_config).items():
        grid.add_row(key, cell(value))
    if s.optimizer:
        o = s.optimizer
        raw = o.get("decay_on")  # from a file: shown literally whatever its type
        on = ", ".join(map(str, raw)) if isinstance(raw, (list, tuple)) else "nothing" if raw in (None, "") \
            else fmt_value(raw)
        on = on or "nothing"
        grid.add_row("optimizer", cell(f"{o.get('name')} ({o.get('decay')} weight decay "
                                       f"{fmt_value(o.get('weight_decay'))} on {on})"))
    con.print(grid)
    for a in s.audit:
        style = "yellow" if a.get("level") == "warning" else ""
        con.print(Text(f"audit: {printable(a.get('message', ''), 400)}; fix: {printable(a.get('fix', ''), 200)}",
                       style=style))
    con.print(_final_table(s))
    if s.weights:
        con.print(_weights_table(s))
    if s.timeline:
        tl = Table(title="alerts and interventions", title_justify="left", box=None, header_style="bold")
        tl.add_column("step", justify="right")
        tl.add_column("what", overflow="fold")
        for item in s.timeline:
            tl.add_row(str(item.step), Text(printable(item.text, 600),
                                            style={"error": "red", "warning": "yellow"}.get(item.level, "")))
        con.print(tl)
    else:
        con.print("no alerts or interventions")


def _final_table(s: Summary) -> Table:
    final = Table(title="final", title_justify="left", show_header=False, box=None)
    final.add_column(style="dim")
    final.add_column()
    uniq = None if s.last_unique is None else f"{s.last_unique}/{s.generated or '?'}"
    for label, value in (
        ("verdict", s.verdict), ("detector state", s.detector_state or "—"),
        ("since step", step_text(s.verdict_since)), ("figures", s.evidence or "—"),
        ("last loss / held-out", f"{fmt_value(s.last_loss)} / {fmt_value(s.last_val_loss)}"),
        ("ln(vocab) / unigram entropy", f"{fmt_value(s.ln_vocab)} / {fmt_value(s.unigram_entropy)}"),
        ("lowest held-out loss", at(s.min_loss, s.min_loss_step)), ("last unique tokens", uniq),
        ("min unique tokens", at(s.min_unique, s.min_unique_step)),
        ("collapse / recovery step", f"{s.collapse_step or '—'} / {s.recovery_step or '—'}"),
        ("ternary scale fall", "—" if s.scale_fall is None else f"{s.scale_fall:.1f}x from its peak"),
        ("norm gain / embedding rms", f"{fmt_value(s.norm_gain)} / {fmt_value(s.embed_norm)}"),
    ):
        final.add_row(label, value if isinstance(value, Text) else cell(value))
    for k, v in s.user_metrics.items():
        final.add_row(Text(printable(k, 60)), cell(v))
    if s.damaged_values:
        final.add_row("values out of range", Text(f"{s.damaged_values} (shown as missing)", style="yellow"))
    return final


def _weights_table(s: Summary) -> Table:
    t = Table(title="ternary weights (last snapshot)", title_justify="left", box=None, header_style="bold")
    for col in ("layer", "zero", "scale", "latent rms", "flip rate"):
        t.add_column(col, justify="left" if col == "layer" else "right", no_wrap=True)
    for lw in s.weights:
        t.add_row(cell(lw.name), f"{lw.zero:.2f}", fmt_value(lw.scale), fmt_value(lw.rms), fmt_value(lw.flip_rate))
    return t


@command("compare")
def compare_cmd(
    session: Annotated[list[str], typer.Argument(help="Two or more sessions (paths, names, prefixes, latest).")],
    sessions_dir_opt: SessionsDirOption = None,
    as_json: JsonOption = False,
    wide: WideOption = False,
    plot: Annotated[bool, typer.Option("--plot", help="Then loss, unique tokens, flip rate and LR of every run "
                                       "overlaid (a dashboard on a terminal, text on a pipe).")] = False,
) -> None:
    """Side by side: what differs between the runs, and what their decoding did (the report's Phase 4 table)."""
    paths = resolve_sessions(session, sessions_dir_opt)
    good, bad = ([read_summary(paths[0])], []) if len(paths) == 1 else load(paths)  # one: its error is the command's
    for _, reason in bad:
        warn(reason)
    for s in good:
        for w in s.warnings:
            warn(w)
    if not good:
        fail("none of the sessions could be read")
    table = compare(good)
    if as_json:
        emit_json(table.to_json())
        return
    print_compare(table, wide=wide)
    if plot:
        from bitnet_tui.app.cli.plot import show_overlay

        show_overlay([s.path for s in good])


__all__ = ["STATUS_STYLE", "load"]
