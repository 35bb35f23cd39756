"""Commands that read session logs: ``sessions``, ``summary``, ``compare``.

Every failure is one line on stderr. Exit status 1 only when nothing usable
could be read; unreadable files among readable ones are warnings. Text from a
log is shown literally: control characters escaped (``safe_text``) and placed
in ``rich.text.Text`` so Rich markup in it is never interpreted.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bitnet_model.analysis.compare import CompareTable, compare, short_key
from bitnet_model.analysis.summary import Summary, read_summary
from bitnet_model.log.errors import SessionError
from bitnet_model.log.paths import list_sessions, resolve_session, sessions_dir
from bitnet_model.log.text import fmt_value, safe_text
from bitnet_tui.cli.options import SessionsDirOption

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]


def _console() -> Console:
    """Stdout; when it is not a terminal (a pipe, a file, a test) wide enough that nothing is cut."""
    out = sys.stdout
    width = None if out.isatty() else 1000
    return Console(file=out, highlight=False, soft_wrap=False, width=width)


def _key_cells(k: dict[str, Any]) -> dict[str, Any]:
    """The key settings as shown: clipping 0 is "off", quant is ternary/full."""
    shown = dict(k)
    if shown.get("clip") == 0:
        shown["clip"] = "off"
    if isinstance(shown.get("quant"), bool):
        shown["quant"] = "ternary" if shown["quant"] else "full"
    return shown


def _err(kind: str, message: Any) -> None:
    typer.echo(f"{kind}: {safe_text(message, newlines=False)}", err=True)


def _t(value: Any) -> Text:
    """A table cell that shows ``value`` literally."""
    return Text(fmt_value(value) if not isinstance(value, str) else safe_text(value, newlines=False))


def _status(s: Summary) -> Text:
    label = s.status if s.end_reason in (None, "finished") else f"{s.status} ({s.end_reason})"
    style = {"finished": "green", "running": "cyan", "crashed": "red"}.get(s.status, "")
    return Text(safe_text(label, newlines=False), style=style)


def _at(value: Any, step: int | None) -> str:
    if value is None:
        return "—"
    return f"{fmt_value(value)} @ {step}" if step is not None else fmt_value(value)


def _step(step: int | None) -> str:
    return "—" if step is None else str(step)


def _when(t: float) -> str:
    try:
        return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return "?"


def _load(paths: list[Path]) -> tuple[list[Summary], list[tuple[Path, str]]]:
    """Summaries of the readable logs, and (path, reason) for the others; read warnings go to stderr."""
    good, bad = [], []
    for p in paths:
        try:
            s = read_summary(p)
        except SessionError as e:
            bad.append((p, str(e)))
            continue
        good.append(s)
    return good, bad


# --------------------------------------------------------------------------- sessions

def sessions(sessions_dir_opt: SessionsDirOption = None) -> None:
    """List the session logs, oldest first (the newest ends up next to your prompt)."""
    d = sessions_dir(sessions_dir_opt)
    if not d.exists():
        _err("error", f"{d} does not exist (set --sessions-dir or $BITNET_TUI_SESSIONS)")
        raise typer.Exit(1)
    if not d.is_dir():
        _err("error", f"{d} is not a directory")
        raise typer.Exit(1)
    paths = list_sessions(d)
    if not paths:
        typer.echo(f"no sessions in {safe_text(d, newlines=False)}")
        return
    good, bad = _load(paths)
    rows: list[tuple[float, list[Any]]] = []
    for s in good:
        k = _key_cells(s.key_config)
        rows.append((s.started, [
            _when(s.started), _t(s.name), f"{s.last_step}/{s.total_steps}", _t(k["hidden"]), _t(k["lr"]),
            _t(k["schedule"]), _t(k["ls"]), _t(k["clip"]), _t(k["quant"]),
            _t(s.last_loss), _at(s.min_unique, s.min_unique_step), _t(s.verdict), _status(s),
        ]))
    for p, reason in bad:
        mtime = p.stat().st_mtime if p.exists() else 0.0
        why = reason.removeprefix(safe_text(str(p), newlines=False) + " ")
        rows.append((mtime, [
            _when(mtime), _t(p.name), "", "", "", "", "", "", "", "", "",
            Text(safe_text(why, newlines=False), style="red"), Text("unreadable", style="red"),
        ]))
    rows.sort(key=lambda r: r[0])
    table = Table(title=Text(f"sessions in {safe_text(d, newlines=False)}"), title_justify="left")
    for col, kw in (
        ("started", {}), ("name", {"overflow": "fold"}), ("steps", {"justify": "right"}),
        ("hidden", {"justify": "right"}), ("lr", {"justify": "right"}), ("schedule", {}), ("ls", {"justify": "right"}),
        ("clip", {"justify": "right"}), ("quant", {}), ("loss", {"justify": "right"}),
        ("min unique", {"justify": "right"}), ("verdict", {"overflow": "fold"}), ("status", {}),
    ):
        table.add_column(col, **kw)
    for _, cells in rows:
        table.add_row(*cells)
    _console().print(table)


# --------------------------------------------------------------------------- summary

def summary(
    session: Annotated[
        str, typer.Argument(help="A log path, a name (or unique prefix) in the sessions dir, or latest.")
    ],
    sessions_dir_opt: SessionsDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """One session: configuration, alerts and interventions, final numbers, verdict."""
    try:
        s = read_summary(resolve_session(session, sessions_dir(sessions_dir_opt)))
    except SessionError as e:
        _err("error", e)
        raise typer.Exit(1) from None
    for w in s.warnings:
        _err("warning", w)
    if as_json:
        typer.echo(json.dumps(s.to_json(), ensure_ascii=True, allow_nan=False))
        return
    con = _console()
    head = Text()
    head.append(safe_text(s.name, newlines=False), style="bold")
    head.append("  ")
    head.append_text(_status(s))
    head.append(f"  step {s.last_step}/{s.total_steps}")
    con.print(head)
    cfg = Table.grid(padding=(0, 2))
    cfg.add_column(style="dim")
    cfg.add_column()
    for key, value in _key_cells(s.key_config).items():
        cfg.add_row(key, _t(value))
    con.print(cfg)

    final = Table(title="final", title_justify="left", show_header=False)
    final.add_column(style="dim")
    final.add_column(justify="right")
    for label, value in (
        ("last step", s.last_step),
        ("last loss", s.last_loss),
        ("last val loss", s.last_val_loss),
        ("ln(vocab) / unigram entropy", f"{fmt_value(s.ln_vocab)} / {fmt_value(s.unigram_entropy)}"),
        ("last unique tokens", s.last_unique),
        ("min unique tokens", _at(s.min_unique, s.min_unique_step)),
        ("collapse step", _step(s.collapse_step)),
        ("recovery step", _step(s.recovery_step)),
        ("detector state", s.detector_state or "—"),
        ("verdict", s.verdict),
    ):
        final.add_row(label, _t(value))
    con.print(final)

    if s.timeline:
        tl = Table(title="alerts and interventions", title_justify="left")
        tl.add_column("step", justify="right")
        tl.add_column("what", overflow="fold")
        for item in s.timeline:
            style = {"error": "red", "warning": "yellow"}.get(item.level, "")
            tl.add_row(str(item.step), Text(safe_text(item.text, newlines=False), style=style))
        con.print(tl)
    else:
        con.print("no alerts or interventions")


# --------------------------------------------------------------------------- compare

def compare_cmd(
    session: Annotated[list[str], typer.Argument(help="Two or more sessions (paths, names, prefixes, latest).")],
    sessions_dir_opt: SessionsDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Side by side: what differs between the runs, and what their decoding did."""
    d = sessions_dir(sessions_dir_opt)
    paths: list[Path] = []
    unreadable = 0
    for arg in session:
        try:
            paths.append(resolve_session(arg, d))
        except SessionError as e:
            _err("warning", e)
            unreadable += 1
    good, bad = _load(paths)
    for _, reason in bad:
        _err("warning", reason)
    for s in good:
        for w in s.warnings:
            _err("warning", w)
    if not good:
        _err("error", "none of the sessions could be read")
        raise typer.Exit(1)
    table = compare(good)
    if as_json:
        typer.echo(json.dumps(table.to_json(), ensure_ascii=True, allow_nan=False))
        return
    _console().print(_compare_table(table))


def _compare_table(ct: CompareTable) -> Table:
    table = Table()
    table.add_column("session", overflow="fold")
    for k in ct.keys:
        table.add_column(short_key(k), justify="right")
    if not ct.keys:
        table.add_column("config")
    lineage = any(r.parent for r in ct.rows)
    if lineage:
        table.add_column("from", overflow="fold")
    for col in ("min unique", "collapse", "recovery", "final unique", "final loss", "verdict", "status"):
        table.add_column(col, justify="left" if col in ("verdict", "status") else "right")
    for r in ct.rows:
        cells: list[Any] = [_t(r.name)]
        cells += [_t(r.differs.get(k)) for k in ct.keys]
        if not ct.keys:
            cells.append("same" if len(ct.rows) > 1 else "—")
        if lineage:
            cells.append(_t(r.parent or "—"))
        style = {"finished": "green", "running": "cyan", "crashed": "red"}.get(r.status, "")
        cells += [
            _at(r.min_unique, r.min_unique_step), _step(r.collapse_step), _step(r.recovery_step),
            _t(r.final_unique), _t(r.final_loss), _t(r.verdict), Text(r.status, style=style),
        ]
        table.add_row(*cells)
    return table


def register(app: typer.Typer) -> None:
    app.command("sessions")(sessions)
    app.command("summary")(summary)
    app.command("compare")(compare_cmd)
