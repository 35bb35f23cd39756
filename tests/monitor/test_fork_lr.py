"""A fork runs at the LR it was given: the parent's LR changes (set, scale, undo) do not scale the new LR."""

from __future__ import annotations

import math

from bitnet_tui.app.runs.build import build_run
from bitnet_tui.app.runs.plan import plan_run
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.log.reader import read_session
from tests.conftest import TINY_KNOBS

KNOBS = {**TINY_KNOBS, "steps": 30, "lr": 1.5e-3, "warmup_steps": 4, "eval_every": 10}


def parent_with_lr_changes(tmp_path):
    """The issue's parent: LR set to 5e-4, x2, x0.5, undo, so the rule in force is 5e-4 (from 1.5e-3)."""
    run = build_run(plan_run(KNOBS, sessions=str(tmp_path / "s")), checkpoint_every=10)
    for cmd in (C.SetLR(value=5e-4), C.ScaleLR(factor=2.0), C.ScaleLR(factor=0.5), C.UndoLR()):
        run.send(cmd)
    assert run.run().reason == "finished"
    applied = [e.lr for e in read_session(run.session_path).events if e.kind == "step"]
    assert applied[-1] < 1.5e-3 * 0.6  # the parent ran under a person's rule
    return run


def first_lr(path):
    return next(e.lr for e in read_session(path).events if e.kind == "step")


def test_a_fork_from_the_dashboard_and_from_run_from_runs_at_the_lr_typed(tmp_path):
    parent = parent_with_lr_changes(tmp_path)
    child = parent.fork(20, 7e-4)  # the dashboard's rewind (r): LocalRun.fork
    assert child.run().reason == "finished"
    assert math.isclose(first_lr(child.session_path), 7e-4, rel_tol=1e-9)
    header = read_session(child.session_path).header
    assert header.config["train"]["lr"] == 7e-4 and header.parent["step"] == 20
    cli = build_run(plan_run({"lr": 7e-4}, sessions=str(tmp_path / "s"), fork=f"{parent.session_path}@20"))
    assert cli.run().reason == "finished"  # run --from SESSION@20 --lr 7e-4 (and a sweep's or detached child)
    assert math.isclose(first_lr(cli.session_path), 7e-4, rel_tol=1e-9)
    lrs = [e.lr for e in read_session(cli.session_path).events if e.kind == "step"]
    assert max(lrs) <= 7e-4 * (1 + 1e-9)  # never exceeded later
    same = build_run(plan_run({"optimizer": "adam"}, sessions=str(tmp_path / "s"),
                              fork=f"{parent.session_path}@20"))
    assert same.run().reason == "finished"  # a fork that keeps the LR keeps the parent's rule
    at21 = next(e.lr for e in read_session(parent.session_path).events if e.kind == "step" and e.step == 21)
    assert math.isclose(first_lr(same.session_path), at21, rel_tol=1e-9)
