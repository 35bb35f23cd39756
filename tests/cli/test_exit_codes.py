"""The README's exit-code table, one test per row: what every command does."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bitnet_tui.app.cli.main import app
from tests.conftest import tiny_args

FIXTURE = str(Path(__file__).resolve().parents[1] / "fixtures" / "collapse.jsonl")
runner = CliRunner()


def test_0_done(tmp_path):
    assert runner.invoke(app, ["summary", FIXTURE]).exit_code == 0
    r = runner.invoke(app, ["run", "--headless", *tiny_args(steps=2, eval_every=2),
                            "--sessions-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output


def test_1_a_headless_run_that_stops_on_a_non_finite_loss_failed(tmp_path, monkeypatch):
    from bitnet_model.nn.model import BitNetLM

    real = BitNetLM.forward

    def poisoned(self, idx, targets=None, label_smoothing=0.0):
        logits, loss = real(self, idx, targets, label_smoothing)
        return logits, (loss * math.nan if loss is not None and self.training else loss)

    monkeypatch.setattr(BitNetLM, "forward", poisoned)
    r = runner.invoke(app, ["run", "--headless", *tiny_args(steps=5, eval_every=5), "--sessions-dir", str(tmp_path)])
    assert r.exit_code == 1, r.output
    assert "the run ended: nonfinite" in r.stderr and "Traceback" not in r.output


@pytest.mark.parametrize("args", [
    ["run", "--hidden", "abc"], ["run", "--hidden", "1000000"], ["run", "--lr", "5e-324"], ["run", "--steps", "0"],
    ["run", "--device", "cuda:abc"], ["run", "--checkpoint-every", "-1"], ["run", "--seed", "1e30"],
    ["sweep", "--lr", "x"], ["replay", "--speed", "fast", FIXTURE], ["nonsense"],
], ids=lambda a: " ".join(a))
def test_2_usage_errors_are_one_line_and_start_nothing(args, tmp_path):
    r = runner.invoke(app, [*args, "--sessions-dir", str(tmp_path)] if args[0] in ("run", "sweep") else args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert not list(tmp_path.glob("*.jsonl"))


def test_2_the_same_unreadable_session_gives_the_same_code_from_every_command(tmp_path):
    bad = tmp_path / "notes.jsonl"
    bad.write_text("hello\n")
    for args in (["summary", str(bad)], ["summary", str(bad), "--json"], ["diagnose", str(bad)],
                 ["replay", str(bad)], ["watch", str(bad)], ["attach", str(bad)], ["ctl", str(bad), "pause"],
                 ["export", str(bad), "--to", "csv", str(tmp_path / "out")], ["compare", str(bad)]):
        r = runner.invoke(app, args)
        assert r.exit_code == 2, (args, r.output)
        assert r.stderr.startswith("error: ") and "Traceback" not in r.output, (args, r.stderr)


@pytest.mark.skipif(shutil.which("kill") is None, reason="needs signals")
def test_130_and_143_are_the_signal_rows():
    """SIGINT and SIGTERM end a run cleanly with 130 and 143: tests/e2e/test_faults.py sends the real signals."""
    from bitnet_tui.app.runs.local import exit_code

    assert (exit_code("interrupted"), exit_code("terminated"), exit_code("hangup")) == (130, 143, 129)
    assert (exit_code("finished"), exit_code("stopped"), exit_code("nonfinite"), exit_code("error")) == (0, 0, 1, 1)


def test_2_a_negative_value_is_named_as_such_not_as_an_unknown_option(tmp_path, monkeypatch, capsys):
    import sys

    from bitnet_tui.app.cli.main import main

    monkeypatch.setattr(sys, "argv", ["bitnet-tui", "ctl", "latest", "set-wd", "-1", "--sessions-dir", str(tmp_path)])
    with pytest.raises(SystemExit) as ex:
        main()
    err = capsys.readouterr().err
    assert ex.value.code == 2 and "-1 is read as an option; a negative value is out of range" in err
    assert err.count("\n") == 1
