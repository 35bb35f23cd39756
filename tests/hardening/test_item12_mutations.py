"""Every field of every event kind of a real log, type-mutated (null, a negative, a bool, text, a list, a dict, a
huge number), through every reader a command uses (read, summary, the fold, diagnose, compare, export, the
dashboard's feed): never a traceback. A value of the wrong type is a malformed line or a value shown literally."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from bitnet_tui.app.cli.export import export_csv
from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.session.analysis.compare import compare
from bitnet_tui.session.analysis.diagnose import diagnose
from bitnet_tui.session.analysis.fold import RunFold
from bitnet_tui.session.analysis.summary import summarize
from bitnet_tui.session.errors import UserError
from bitnet_tui.session.log.events import EVENT_TYPES
from bitnet_tui.session.log.reader import read_session

FIXTURE = Path(__file__).parents[1] / "fixtures" / "collapse.jsonl"
MUTANTS = (None, -1, True, "x", [], {}, 1e308, [1, "a", None])
NESTED = ("config.diag.detector.window", "config.diag.detector.decay_factor", "config.train.lr", "config.model.hidden",
          "optimizer.decay_on", "optimizer.weight_decay", "optimizer.name", "detector.config.window",
          "detector.config.unigram_band", "detector.state.state", "detector.state.losses", "detector.state.min_level",
          "parent.step", "parent.name", "audit", "world.size")


EVERY_FIELD_OF = ("system",)
"""Kinds whose every field is mutated, also those the fixture's first event leaves out (a CPU run's GPU figures)."""


def cases() -> list[tuple[int, str]]:
    """(line, dotted key) of every top-level field of the first event of each kind, and the header's nested ones."""
    lines = FIXTURE.read_text().splitlines()
    seen: dict[str, int] = {}
    for i, line in enumerate(lines):
        seen.setdefault(json.loads(line)["kind"], i)
    assert set(EVENT_TYPES) == set(seen), "the fixture must hold an event of every kind"
    out = [(i, k) for kind, i in seen.items() for k in json.loads(lines[i]) if k != "kind"]
    out += [(seen[kind], f.name) for kind in EVERY_FIELD_OF for f in fields(EVENT_TYPES[kind])
            if f.name not in json.loads(lines[seen[kind]])]
    return out + [(0, k) for k in NESTED]


def mutated(lines: list[str], i: int, key: str, value) -> str:
    d = json.loads(lines[i])
    cur = d
    *path, last = key.split(".")
    for k in path:
        nxt = cur.get(k) if isinstance(cur, dict) else None
        if not isinstance(nxt, dict):
            nxt = cur[k] = {}
        cur = nxt
    cur[last] = value
    out = list(lines)
    out[i] = json.dumps(d)
    return "\n".join(out) + "\n"


def every_reader(path: Path, other: Path, out: Path) -> None:
    try:
        data = read_session(path)
    except UserError:
        return  # a clear one-line error (a header that is not one): what the commands print, exit 2
    fold = RunFold()
    fold.apply(data.header)
    fold.apply_all(data.events)
    s = summarize(data, fold)
    d = diagnose(s, fold, [100, 500])
    d.headline()
    d.to_json()
    s.to_json()
    compare([s, summarize(read_session(other))])
    Feed().apply_all(data.stream())
    out.mkdir(exist_ok=True)
    export_csv(data.stream(), out)


@pytest.mark.parametrize("value", MUTANTS, ids=repr)
def test_every_field_of_every_event_kind_mutated_breaks_no_reader(tmp_path, value):
    lines = FIXTURE.read_text().splitlines()
    failures = []
    for n, (i, key) in enumerate(cases()):
        p = tmp_path / f"2026-01-01T00-00-00_m{n}.jsonl"
        p.write_text(mutated(lines, i, key, value))
        try:
            every_reader(p, FIXTURE, tmp_path / f"out{n}")
        except Exception as e:  # noqa: BLE001
            failures.append(f"{json.loads(lines[i])['kind']}.{key}={value!r}: {type(e).__name__}: {e}")
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize("value", MUTANTS, ids=repr)
def test_the_summary_and_sessions_screens_show_a_mutated_header_literally(tmp_path, value):
    from typer.testing import CliRunner

    from bitnet_tui.app.cli.main import app

    lines = FIXTURE.read_text().splitlines()
    runner = CliRunner()
    for n, (i, key) in enumerate(c for c in cases() if c[0] == 0):
        d = tmp_path / f"d{n}"
        d.mkdir()
        (d / "2026-01-01T00-00-00_m.jsonl").write_text(mutated(lines, i, key, value))
        for cmd in (["summary", "latest"], ["sessions", "--wide"]):
            r = runner.invoke(app, [*cmd, "--sessions-dir", str(d)])
            assert r.exit_code in (0, 2) and r.exception is None or isinstance(r.exception, SystemExit), \
                f"{cmd} on {key}={value!r}: {r.exception!r}\n{r.output[-500:]}"
