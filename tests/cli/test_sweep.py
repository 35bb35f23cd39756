"""`bitnet-tui sweep`: a grid of real headless runs, then the compare table."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bitnet_tui.app.cli.main import app
from bitnet_tui.session.log.reader import read_session

pytestmark = pytest.mark.slow

TINY = ["--hidden", "32", "--layers", "1", "--heads", "2", "--vocab-size", "300", "--context", "16",
        "--batch-size", "4", "--eval-every", "5"]


def test_lr_sweep_runs_every_point_and_prints_the_table(tmp_path):
    sd = tmp_path / "s"
    r = CliRunner().invoke(app, ["sweep", "--lr", "1e-3,3e-3", *TINY, "--steps", "10", "--jobs", "2",
                                 "--sessions-dir", str(sd), "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    table = json.loads(r.stdout)
    assert len(table["sessions"]) == 2
    assert table["differing_keys"] == ["train.lr"]
    logs = sorted(sd.glob("*.jsonl"))
    assert len(logs) == 2
    lrs = sorted(read_session(p).header.config["train"]["lr"] for p in logs)
    assert lrs == [1e-3, 3e-3]
    assert all(read_session(p).status == "finished" for p in logs)


def test_sweep_needs_something_to_sweep_and_good_numbers(tmp_path):
    r = CliRunner().invoke(app, ["sweep", "--steps", "5"])
    assert r.exit_code == 2 and "nothing to sweep" in r.output
    r = CliRunner().invoke(app, ["sweep", "--lr", "1e-3,abc"])
    assert r.exit_code == 2 and "comma-separated list of float values" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["sweep", "--lr", "1e-3,5e-324"])
    assert r.exit_code == 2 and "lr must be between" in r.output
