"""`bitnet-tui run` end to end through Typer's CliRunner, with a tiny real model."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bitnet_tui.app.cli.main import app
from bitnet_tui.session.log.reader import read_session

TINY = ["--hidden", "32", "--layers", "1", "--heads", "2", "--vocab-size", "300", "--context", "16",
        "--batch-size", "4", "--eval-every", "10"]


def strict(line: str):
    def no_constants(c):
        raise ValueError(f"bare {c} in the log")

    return json.loads(line, parse_constant=no_constants)


def run_cli(*args: str):
    return CliRunner().invoke(app, ["run", *args], catch_exceptions=False)


def only_log(d):
    logs = sorted(d.glob("*.jsonl"))
    assert len(logs) == 1, logs
    return logs[0]


def test_headless_run_writes_a_log_that_summary_and_compare_read(tmp_path):
    sd = tmp_path / "s"
    r = run_cli(*TINY, "--steps", "30", "--lr", "3e-3", "--sessions-dir", str(sd))
    assert r.exit_code == 0, r.output
    assert "running headless" in r.output  # CliRunner is not a TTY
    log = only_log(sd)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert [strict(x)["kind"] for x in lines][0] == "run_started"
    assert strict(lines[-1])["kind"] == "run_ended"
    data = read_session(log)
    assert data.status == "finished" and data.end_reason == "finished"
    assert (log.parent / (log.stem + ".ckpt") / "step00000030.pt").exists()
    s = CliRunner().invoke(app, ["summary", str(log), "--json"])
    assert s.exit_code == 0, s.output
    assert json.loads(s.output)["status"] == "finished"
    c = CliRunner().invoke(app, ["compare", str(log)])
    assert c.exit_code == 0 and "Traceback" not in c.output


def test_lr_auto_is_resolved_and_recorded(tmp_path):
    sd = tmp_path / "s"
    assert run_cli(*TINY, "--steps", "2", "--lr", "auto", "--sessions-dir", str(sd)).exit_code == 0
    header = strict(only_log(sd).read_text().splitlines()[0])
    assert header["config"]["train"]["lr"] == 1.5e-3 and header["config"]["lr_auto"] is True
    assert "_lr1.5e-3" in only_log(sd).name


@pytest.mark.slow
def test_fork_names_its_parent_and_compare_shows_the_difference(tmp_path):
    sd = tmp_path / "s"
    assert run_cli(*TINY, "--steps", "30", "--lr", "3e-3", "--checkpoint-every", "10",
                   "--sessions-dir", str(sd)).exit_code == 0
    parent = only_log(sd)
    r = CliRunner().invoke(app, ["run", "--from", f"{parent.name}@25", "--lr", "1e-3", "--sessions-dir", str(sd)])
    assert r.exit_code == 2 and "has no checkpoint at step 25" in r.output  # said before starting, never silent
    assert f"the nearest earlier is 20: --from {parent.stem}@20" in r.output
    r = run_cli("--from", f"{parent.name}@20", "--lr", "1e-3", "--sessions-dir", str(sd))
    assert r.exit_code == 0, r.output
    child = [p for p in sd.glob("*.jsonl") if p != parent][0]
    head = read_session(child).header
    assert head.parent["name"] == parent.stem and head.parent["step"] == 20 and head.parent["relation"] == "fork"
    steps = [e.step for e in read_session(child).events if e.kind == "step"]
    assert steps[0] == 21 and steps[-1] == 30
    c = CliRunner().invoke(app, ["compare", str(parent), str(child), "--json"])
    assert c.exit_code == 0, c.output
    table = json.loads(c.stdout)
    assert table["differing_keys"] == ["train.lr"]
    rows = table["sessions"]
    assert [r["first_step"] for r in rows] == [0, 20]  # lined up by step: the fork below its parent
    assert rows[1]["parent"] == f"{parent.stem}@20 (fork)"
    assert [r["differs"]["train.lr"] for r in rows] == [3e-3, 1e-3]


@pytest.mark.slow
def test_resume_continues_a_session_from_its_last_checkpoint(tmp_path):
    sd = tmp_path / "s"
    assert run_cli(*TINY, "--steps", "20", "--checkpoint-every", "10", "--sessions-dir", str(sd)).exit_code == 0
    parent = only_log(sd)
    r = run_cli("--resume", parent.stem, "--steps", "30", "--sessions-dir", str(sd))
    assert r.exit_code == 0, r.output
    child = [p for p in sd.glob("*.jsonl") if p != parent][0]
    d = read_session(child)
    assert d.header.parent["relation"] == "resume" and d.header.parent["step"] == 20
    assert [e.step for e in d.events if e.kind == "step"] == list(range(21, 31))


def test_resume_refuses_changed_knobs_and_forks_need_a_checkpoint(tmp_path):
    sd = tmp_path / "s"
    assert run_cli(*TINY, "--steps", "5", "--sessions-dir", str(sd)).exit_code == 0
    parent = only_log(sd)
    r = CliRunner().invoke(app, ["run", "--resume", parent.stem, "--lr", "1e-3", "--sessions-dir", str(sd)])
    assert r.exit_code == 2 and "fork it with --from" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["run", "--from", f"{parent.stem}@2", "--sessions-dir", str(sd)])
    assert r.exit_code == 2 and "has no checkpoint at step 2 (it has 5)" in r.output
