"""One truth: after every eval of a log, the state the run logged, the dashboard feed's state (fed event by
event) and ``summary`` of the log cut at that point are the same word, for fixture logs, synthetic forks and
real runs (a fresh one, and a fork of it that starts from its parent's detector state)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.app.runs.build import build_run
from bitnet_tui.app.runs.plan import plan_run
from bitnet_tui.session.analysis.summary import summarize
from bitnet_tui.session.analysis.verdict import HEALTHY
from bitnet_tui.session.log.events import EvalDone
from bitnet_tui.session.log.reader import read_session
from tests.conftest import TINY_KNOBS
from tests.dashboard.synth import write_three

FIXTURE = Path(__file__).parents[1] / "fixtures" / "collapse.jsonl"


def cuts(path: Path, tmp: Path) -> list[tuple[int, str, str, str]]:
    """(step, logged state, feed state, summary state of the log cut just after that eval) per eval."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    data = read_session(path)
    events = [data.header, *data.events]
    assert len(events) == len(lines), "a clean log: one event per line"
    feed, out = Feed(), []
    for i, ev in enumerate(events):
        feed.apply(ev)
        if isinstance(ev, EvalDone):
            cut = tmp / f"cut{i:05d}.jsonl"
            cut.write_text("".join(lines[: i + 1]), encoding="utf-8")
            s = summarize(read_session(cut))
            out.append((ev.step, ev.state, feed.state, s.detector_state))
            assert s.verdict_since is None or s.verdict_since <= ev.step
    return out


def assert_one_truth(path: Path, tmp: Path) -> list[str]:
    tmp.mkdir(parents=True, exist_ok=True)
    rows = cuts(path, tmp)
    assert rows, f"{path.name} has no evals"
    for step, logged, live, summary in rows:
        assert logged == live == summary, f"{path.name} step {step}: logged {logged!r}, feed {live!r}, " \
            f"summary {summary!r}"
    return [r[1] for r in rows]


def test_fixture_logs_agree_at_every_eval(tmp_path):
    states = assert_one_truth(FIXTURE, tmp_path / "fixture")
    assert {"unigram", "healthy", "collapsed", "recovered"} <= set(states)  # the cut points cover every phase
    for i, p in enumerate(write_three(tmp_path / "three")):
        assert_one_truth(p, tmp_path / f"cut{i}")


@pytest.mark.slow
def test_a_real_run_and_its_fork_agree_at_every_eval(tmp_path):
    knobs = {**TINY_KNOBS, "steps": 80, "lr": 3e-3, "warmup_steps": 4, "eval_every": 5, "gen_tokens": 16}
    parent = build_run(plan_run(knobs, sessions=str(tmp_path / "s")), checkpoint_every=40)
    assert parent.run().reason == "finished"
    before = assert_one_truth(parent.session_path, tmp_path / "p")
    assert len(set(before)) >= 2  # the run moved through states: the cut points test something
    child = parent.fork(40, 1e-3)  # the dashboard's rewind: r, step 40, a new LR
    assert child.run().reason == "finished"
    header = read_session(child.session_path).header
    assert header.detector["state"]["state"] == before[40 // 5]  # the fork starts where its parent stood at 40
    assert_one_truth(child.session_path, tmp_path / "c")


def test_a_fork_is_judged_from_its_parents_history_not_from_scratch(tmp_path):
    a, fork, _ = write_three(tmp_path)
    data = read_session(fork)
    s = summarize(data)
    assert data.header.detector["state"]["diverse"] is True  # its parent had been diverse before the fork
    assert s.detector_state == "recovered" and s.verdict != HEALTHY
    bare = dict(data.header.detector)
    bare.pop("state")
    fresh = fork.with_name("fresh.jsonl")
    lines = fork.read_text().splitlines(keepends=True)
    head = json.loads(lines[0])
    head["detector"] = bare
    fresh.write_text(json.dumps(head) + "\n" + "".join(lines[1:]))
    assert summarize(read_session(fresh)).detector_state != "recovered"  # without the parent's state: not the same


def test_export_writes_the_folds_state_for_every_eval(tmp_path):
    import csv

    from bitnet_tui.app.cli.export import export_csv

    a, fork, _ = write_three(tmp_path)
    for p in (FIXTURE, fork):
        out = tmp_path / f"out-{p.stem}"
        out.mkdir()
        export_csv(read_session(p).stream(), out)
        with open(out / "evals.csv", encoding="utf-8") as f:
            exported = [(int(r["step"]), r["state"]) for r in csv.DictReader(f)]
        (tmp_path / f"cuts-{p.stem}").mkdir()
        assert exported == [(s, live) for s, _, live, _ in cuts(p, tmp_path / f"cuts-{p.stem}")]
