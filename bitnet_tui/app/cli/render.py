"""How the CLI prints what it read from logs: Rich tables whose every cell is literal text.

Every string that came from a file (keys as well as values, file names) passes through
:func:`~bitnet_tui.session.text.printable` and into a ``rich.text.Text``: control characters are escaped and
Rich markup is never interpreted. ``--json`` output is ``ensure_ascii`` (no raw control byte can appear).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bitnet_tui.session.analysis.compare import CompareTable, short_key
from bitnet_tui.session.analysis.summary import Summary
from bitnet_tui.session.log.events import FAILED_ENDS
from bitnet_tui.session.log.paths import short_name
from bitnet_tui.session.text import fmt_value, printable

STATUS_STYLE = {"finished": "green", "running": "cyan", "crashed": "red", "unreadable": "red"}
NARROW = 80
"""Width a table is laid out for when stdout is not a terminal (``--wide``: unlimited)."""
SESSION_WIDTH = 16
"""The session column of a narrow compare table (names shortened to it by :func:`distinct_names`)."""


class ViewerConsole(Console):
    """A viewer's stdout: a reader that leaves early (``summary X | head -1``) is not a failed run (exit 0, not
    Rich's 1, which the README's table keeps for a run that failed)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
        raise SystemExit(0)


def console(wide: bool = False) -> Console:
    """Stdout; a pipe or a file gets an 80-column table (``--wide``: as wide as it needs, nothing cut)."""
    tty = sys.stdout.isatty()
    width = (10_000 if wide else None) if tty else (10_000 if wide else NARROW)
    return ViewerConsole(file=sys.stdout, highlight=False, soft_wrap=False, width=width, markup=False)


def emit_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=True, allow_nan=False))


def cell(value: Any, style: str = "") -> Text:
    """A table cell that shows ``value`` literally."""
    return Text(fmt_value(value) if not isinstance(value, str) else printable(value, 500), style=style)


def header_cell(text: Any) -> Text:
    return Text(printable(text, 60))


def status(s: Summary | Any, short: bool = False) -> Text:
    """``finished (stopped)``; ``short``: one word, the end reason where it is not ``finished`` (``stopped``,
    ``error``)."""
    reason = getattr(s, "end_reason", None)
    if reason in FAILED_ENDS:
        return Text(printable(reason if short else f"{s.status} ({reason})", 60), style="red")
    if short:
        label = s.status if reason in (None, "finished") else reason
    else:
        label = s.status if reason in (None, "finished") else f"{s.status} ({reason})"
    return Text(printable(label, 60), style=STATUS_STYLE.get(s.status, ""))


def at(value: Any, step: int | None) -> Text:
    if value is None:
        return Text("—")
    return Text(f"{fmt_value(value)} @ {step}" if step is not None else fmt_value(value))


def step_text(step: int | None) -> Text:
    return Text("—" if step is None else str(step))


def when(t: float | None) -> str:
    try:
        return datetime.fromtimestamp(t).strftime("%m-%d %H:%M") if t is not None else "?"
    except (OverflowError, OSError, ValueError):
        return "?"


def elide(name: str, keep: tuple[int, int], width: int) -> str:
    """``name`` in ``width`` cells, keeping ``name[keep[0]:keep[1]]`` (what tells it from its neighbours) and as
    much around it as fits; what is cut is marked ``…``."""
    if len(name) <= width:
        return name
    lo, hi = keep
    core = name[lo:hi]
    if len(core) + (lo > 0) >= width:  # the differing part alone fills the cell: its start shows
        return ("…" if lo else "") + core[:width - 1 - (lo > 0)] + "…"
    room = width - len(core)
    right = name[hi:]
    if len(right) > room - (lo > 0):
        keep_right = max(0, room - (1 if lo else 0) - 1)
        return ("…" if lo else "") + core + right[:keep_right] + "…"
    room -= len(right)
    left = name[:lo]
    return ("…" + left[len(left) - room + 1:] if len(left) > room else left) + core + right


def distinct_names(names: Sequence[str], width: int) -> list[str]:
    """Run names for a column ``width`` cells wide: without their start time, and shortened so the part where
    they differ stays (the shared start and end are what is cut, never what tells them apart)."""
    short = [short_name(n) for n in names]
    if len(set(short)) < len(set(names)):  # the same settings started twice: the start time is what differs
        short = [n.removesuffix(".jsonl") for n in names]
    if len(short) < 2:
        return [s if len(s) <= width else s[:width - 1] + "…" for s in short]
    first, last = min(short), max(short)
    pre = next((i for i, (a, b) in enumerate(zip(first, last)) if a != b), min(len(first), len(last)))
    word = short[0].rfind("_", 0, pre) + 1  # start at the word that differs: "lr3e-3", not "3e-3"
    pre = word if pre - word <= 6 else pre
    suf = 0
    while suf < min(len(s) for s in short) - pre and len({s[len(s) - suf - 1] for s in short}) == 1:
        suf += 1
    return [elide(s, (pre, len(s) - suf), width) for s in short]


def key_cells(k: dict[str, Any]) -> dict[str, Any]:
    """The key settings as shown: clipping 0 is "off", quant is ternary/full."""
    shown = dict(k)
    if shown.get("clip") == 0:
        shown["clip"] = "off"
    if isinstance(shown.get("quant"), bool):
        shown["quant"] = "ternary" if shown["quant"] else "full"
    return shown


def key_width(key: str) -> int:
    """Columns a differing setting's column takes in a narrow table (padding included)."""
    return min(10, max(6, len(short_key(key)))) + 1


def fit_keys(keys: Sequence[str], budget: int | None) -> tuple[list[str], list[str]]:
    """The differing settings that fit ``budget`` columns (None: all), in order (the report's knobs first), and
    the ones left out: the runs' own columns (verdict, loss) are never squeezed out by settings."""
    shown: list[str] = []
    for k in keys:
        if budget is not None and key_width(k) > budget:
            break
        shown.append(k)
        budget = None if budget is None else budget - key_width(k)
    return shown, list(keys[len(shown):])


def print_left_out(con: Console, hidden: Sequence[str]) -> None:
    if hidden:
        names = ", ".join(printable(k, 60) for k in hidden[:12]) + (f", +{len(hidden) - 12} more" if len(hidden) > 12
                                                                   else "")
        con.print(Text(f"also differ ({len(hidden)}; all with --wide or --json): {names}", style="dim"))


def print_compare(ct: CompareTable, *, wide: bool) -> None:
    """The compare table on stdout: at 80 columns (or the terminal's width) the verdict always shows; settings
    that do not fit are named under it."""
    con = console(wide)
    lineage = any(r.parent for r in ct.rows)
    collapses = wide or any(r.collapse_step is not None or r.recovery_step is not None for r in ct.rows)
    cols = ["min@step", *(["collapse", "recov"] if collapses else []), *(["uniq"] if wide else []), "loss",
            "verdict"] + (["status"] if wide else [])  # collapse columns only where a run collapsed
    mins = {"min@step": 8, "collapse": 8, "recov": 5, "uniq": 4, "loss": 5, "verdict": 22}
    fixed = 17 + (17 if lineage else 0) + sum(mins.get(c, 8) + 1 for c in cols)
    keys, hidden = fit_keys(ct.keys, None if wide else con.width - fixed)
    table = Table(box=None, pad_edge=False, header_style="bold", padding=(0, 1, 0, 0))
    table.add_column("session", no_wrap=True, overflow="ellipsis", max_width=None if wide else SESSION_WIDTH,
                     min_width=12)
    for k in keys:
        head = header_cell(short_key(k))
        table.add_column(head, justify="right", no_wrap=True, overflow="ellipsis", max_width=None if wide else 10,
                         min_width=min(10, max(6, len(head))))
    if lineage:
        table.add_column("from", no_wrap=True, overflow="ellipsis", max_width=None if wide else 16)
    for col in cols:
        table.add_column(col, justify="left" if col in ("verdict", "status") else "right", no_wrap=True,
                         overflow="ellipsis", min_width=mins.get(col))
    names = [r.name for r in ct.rows] if wide else distinct_names([r.name for r in ct.rows], SESSION_WIDTH)
    for r, name in zip(ct.rows, names):
        cells: list[Any] = [cell(name)]
        cells += [cell(r.differs.get(k)) for k in keys]
        if lineage:
            cells.append(cell(r.parent or "—"))
        cells += [at(r.min_unique, r.min_unique_step),
                  *([step_text(r.collapse_step), step_text(r.recovery_step)] if collapses else []),
                  *([cell(r.final_unique)] if wide else []), cell(r.final_loss), cell(r.verdict)]
        if wide:
            cells.append(Text(printable(r.status, 40), style=STATUS_STYLE.get(r.status, "")))
        table.add_row(*cells)
    con.print(table)
    print_left_out(con, hidden)
