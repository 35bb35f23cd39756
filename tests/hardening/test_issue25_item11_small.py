"""Issue 25, item 11 (a, b): torch's two-line UserWarning about a raw pickle never reaches the terminal (the
checkpoint is refused in one sentence of ours); ``run`` prints its session path escaped, as ``summary`` does (a
newline or U+202E in the sessions directory's name goes out as ``\\x0a``/``\\u202e``)."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import pytest
from typer.testing import CliRunner

from bitnet_model.train.checkpoint import CheckpointError, load_checkpoint
from bitnet_tui.app.cli.main import app
from bitnet_tui.session.log.paths import checkpoint_dir
from tests.conftest import tiny_args
from tests.hardening.hostile import ROOT, cli_env

runner = CliRunner()


def raw_pickle(path):
    path.write_bytes(pickle.dumps({"format": "bitnet-tui-checkpoint", "step": 6}, protocol=4))


def test_a_raw_pickle_is_refused_without_torchs_warning(tmp_path):
    p = tmp_path / "step00000006.pt"
    raw_pickle(p)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match="was refused"):
            load_checkpoint(p)
    assert [str(w.message)[:80] for w in seen] == []


@pytest.fixture
def finished_run(tmp_path):
    weird = tmp_path / "s\nx\u202e"
    r = runner.invoke(app, ["run", "--headless", *tiny_args(steps=4, eval_every=4), "--checkpoint-every", "4",
                            "--sessions-dir", str(weird)])
    assert r.exit_code == 0, r.output
    return weird, next(weird.glob("*.jsonl")), r


def test_run_prints_its_session_path_escaped(finished_run):
    weird, log, r = finished_run
    for line in r.output.splitlines():
        if line.startswith(("session: ", "run ended")):
            assert "\\x0ax\\u202e" in line and "\u202e" not in line, line
    assert "\u202e" not in r.output and "session: " in r.output


@pytest.mark.slow  # a fresh process (torch's import): the terminal as a user sees it; the fast check is above
@pytest.mark.timeout(120)
def test_resume_past_a_raw_pickle_says_one_line_of_its_own(finished_run):
    weird, log, _ = finished_run
    ck = checkpoint_dir(log)
    for p in ck.iterdir():
        p.unlink()
    raw_pickle(ck / "step00000004.pt")
    r = subprocess.run([sys.executable, "-m", "bitnet_tui", "run", "--headless", "--resume", str(log),
                        "--sessions-dir", str(weird)], capture_output=True, text=True, timeout=100, cwd=ROOT,
                       env=cli_env(), stdin=subprocess.DEVNULL)
    assert r.returncode == 2, r.stderr
    assert "Warning" not in r.stderr and "return Unpickler" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "was refused" in lines[0], r.stderr
