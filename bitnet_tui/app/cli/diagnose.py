"""``bitnet-tui diagnose SESSION...``: which disease, since when, the figures, the likely causes, what to try."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from bitnet_tui.app.cli.app import command
from bitnet_tui.app.cli.errors import fail, warn
from bitnet_tui.app.cli.options import JsonOption, SessionsDirOption, resolve_sessions
from bitnet_tui.app.cli.render import cell, console, distinct_names, emit_json, fit_keys, print_left_out
from bitnet_tui.session.analysis.compare import compare, short_key
from bitnet_tui.session.analysis.diagnose import Diagnosis, diagnose
from bitnet_tui.session.analysis.fold import RunFold
from bitnet_tui.session.analysis.summary import summarize
from bitnet_tui.session.control.peer import control_path
from bitnet_tui.session.errors import UserError
from bitnet_tui.session.log.paths import checkpoint_dir, list_checkpoints
from bitnet_tui.session.log.reader import read_session
from bitnet_tui.session.text import printable


def diagnose_path(path: Path) -> tuple[Diagnosis, object]:
    fold = RunFold()
    data = read_session(path, sink=fold.apply)  # folded as read: the log is never held whole
    s = summarize(data, fold)
    for w in data.warnings:
        warn(w)
    steps = [st for st, _ in list_checkpoints(checkpoint_dir(path))]
    return diagnose(s, fold, steps, live=control_path(path).exists()), s


def print_diagnosis(d: Diagnosis) -> None:
    con = console()
    head = Text()
    head.append(printable(d.name), style="bold")
    head.append(f"  {d.headline()}", style="bold red" if d.trouble or d.failed else "bold green")
    if d.began is not None:
        head.append(f"  (since step {d.began})")
    if d.running:
        head.append(f"  running, at step {d.step}" + (" (steerable: bitnet-tui ctl)" if d.live else ""),
                    style="bold")
    elif d.ended and not d.failed:
        head.append(f"  run_ended: {d.ended}", style="dim")
    con.print(head)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    for label, value in d.figures:
        grid.add_row(label, cell(value))
    con.print(grid)
    if d.causes:
        con.print(Text("likely causes, most supported first (hypotheses with their evidence):" if d.trouble else
                       "worth knowing (settings that usually matter):" if d.failed else
                       "worth knowing (the run ended well; settings that usually matter):" if d.ended_well else
                       "worth knowing (no trouble measured so far; settings that usually matter):", style="bold"))
        for i, c in enumerate(d.causes, 1):
            con.print(Text(f" {i}. {printable(c.title, 200)} [{c.code}; {c.evidence_kind}]: "
                           f"{printable(c.evidence, 600)}"))
    con.print(Text("what to try:", style="bold"))
    for what, cmd in d.tries:
        con.print(Text(f" - {printable(what, 200)}: ") + Text(printable(cmd, 400), style="bold"))


def top_cause(d: Diagnosis) -> str:
    """The first cause with measured or configured evidence, a few words; "(fixed live)" once it was."""
    if not d.causes or d.causes[0].tier > 3:
        return "—"
    c = d.causes[0]
    return c.title.split(":")[0] + (" (fixed live)" if c.fixed else "")


def print_diagnoses(paths: list[Path], as_json: bool = False) -> None:
    results = []
    for p in paths:
        if len(paths) == 1:
            results.append(diagnose_path(p))  # one session: its error is the command's
            continue
        try:
            results.append(diagnose_path(p))
        except UserError as e:
            warn(e)
    if not results:
        fail("none of the sessions could be read")
    if as_json:
        emit_json({"diagnoses": [d.to_json() for d, _ in results]})
        return
    if len(results) > 1:
        table = compare([s for _, s in results])  # type: ignore[misc]
        by_path = {d.path: d for d, _ in results}
        con = console()
        keys, hidden = fit_keys(table.keys, con.width - 19 - 40)  # the disease, since and top cause keep 40
        t = Table(box=None, header_style="bold", pad_edge=False)
        t.add_column("session", no_wrap=True, overflow="ellipsis", max_width=18)
        for k in keys:
            t.add_column(Text(printable(short_key(k), 40)), justify="right", no_wrap=True, overflow="ellipsis",
                         max_width=10)
        for col in ("disease", "since", "top cause"):
            t.add_column(col, overflow="fold")
        for r, name in zip(table.rows, distinct_names([r.name for r in table.rows], 18)):
            d = by_path[r.path]
            t.add_row(cell(name), *[cell(r.differs.get(k)) for k in keys],
                      cell(d.headline(short=True)),
                      cell("—" if d.began is None else str(d.began)),
                      cell(top_cause(d)))
        con.print(t)
        print_left_out(con, hidden)
        con.print("")
    for d, _ in results:
        print_diagnosis(d)
        console().print("")


@command("diagnose")
def diagnose_cmd(
    session: Annotated[list[str], typer.Argument(help="One or more sessions (paths, names, prefixes, latest).")],
    sessions_dir_opt: SessionsDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """What went wrong and why: the disease, when it began, the figures, ranked causes and a command to try."""
    print_diagnoses(resolve_sessions(session, sessions_dir_opt), as_json)
