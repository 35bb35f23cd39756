"""Issue 13, item 6: files that are not regular files (a FIFO, a device, a directory) never hang a reader.

A FIFO or a symlink to /dev/zero in a sessions directory once hung ``sessions`` and ``summary latest``;
``--data`` on a FIFO hung; ``--data /dev/zero`` read until memory ran out. Every test has a hard timeout, so a
regression fails instead of hanging; ``/dev/zero`` runs in a child process with a 3 GiB address-space limit, so
a regression there fails with a MemoryError instead of eating the machine's memory.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from bitnet_tui.app.cli.main import app
from bitnet_tui.session.log.writer import SessionWriter, writer_lock_held
from tests.conftest import tiny_args
from tests.fixtures.scripted import scripted_run
from tests.hardening.hostile import ROOT, cli_env, run_cli

runner = CliRunner()
GOOD = "2026-01-01T00-00-05_good"


@pytest.fixture
def sdir(tmp_path):
    """A sessions directory holding a good log beside a FIFO, a symlink to /dev/zero, a symlink to a FIFO and a
    directory, all named like logs (the FIFO is the newest, so ``latest`` picks it)."""
    d = tmp_path / "sessions"
    d.mkdir()
    with SessionWriter(d / f"{GOOD}.jsonl") as w:
        for e in scripted_run([20, 10, 5], eval_every=4):
            w(e)
    (d / "2026-01-01T00-00-01_dir.jsonl").mkdir()
    os.symlink("/dev/zero", d / "2026-01-01T00-00-02_zero.jsonl")
    os.mkfifo(tmp_path / "elsewhere.fifo")
    os.symlink(tmp_path / "elsewhere.fifo", d / "2026-01-01T00-00-03_linkfifo.jsonl")
    os.mkfifo(d / "2026-01-01T00-00-09_fifo.jsonl")
    return d


SPECIAL = ["2026-01-01T00-00-01_dir", "2026-01-01T00-00-02_zero", "2026-01-01T00-00-03_linkfifo",
           "2026-01-01T00-00-09_fifo"]


@pytest.mark.timeout(30)
def test_sessions_lists_the_good_log_and_warns_about_the_others(sdir):
    for extra in ([], ["--json"], ["--wide"]):
        r = runner.invoke(app, ["sessions", *extra, "--sessions-dir", str(sdir)])
        assert r.exit_code == 0, r.output
        assert GOOD in r.stdout or not extra  # the narrow table cuts names
        for name in SPECIAL:
            assert name in (r.stdout if extra == ["--json"] else r.stderr)  # JSON: listed as unreadable
        assert "Traceback" not in r.output


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", ["latest", *SPECIAL])
@pytest.mark.parametrize("cmd", ["summary", "diagnose", "export"])
def test_a_special_file_is_one_line_from_the_log_commands(sdir, tmp_path, cmd, name):
    extra = ["--to", "csv", str(tmp_path / "out")] if cmd == "export" else []
    r = runner.invoke(app, [cmd, name, *extra, "--sessions-dir", str(sdir)])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "not a regular file" in r.stderr or "is a directory" in r.stderr


@pytest.mark.timeout(30)
def test_compare_skips_the_special_files_and_compares_the_rest(sdir):
    r = runner.invoke(app, ["compare", *SPECIAL, GOOD, GOOD, "--sessions-dir", str(sdir)])
    assert r.exit_code == 0, r.output
    assert r.stderr.count("warning: ") >= len(SPECIAL) and "Traceback" not in r.output


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cmd", ["replay", "watch", "attach"])
def test_the_dashboard_commands_refuse_a_fifo_and_dev_zero(sdir, cmd):
    for name in ("2026-01-01T00-00-09_fifo", "2026-01-01T00-00-02_zero"):
        r = run_cli(cmd, name, "--sessions-dir", str(sdir), timeout=30)
        assert r.returncode == 2, r.stdout + r.stderr
        assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr


@pytest.mark.timeout(20)
def test_the_writer_lock_probe_does_not_block_on_a_fifo(tmp_path):
    """``read_session`` opens the log safely, then asks whether a writer holds it; that second open (by name)
    must not block either, should the name now be a FIFO."""
    fifo = tmp_path / "x.jsonl"
    os.mkfifo(fifo)
    assert writer_lock_held(fifo) is None


@pytest.mark.timeout(60)
@pytest.mark.parametrize("what", ["data-fifo", "data-folder-fifo", "tokenizer-fifo"])
def test_run_refuses_a_fifo_as_data_or_tokenizer(tmp_path, what):
    fifo = tmp_path / "a.txt"
    os.mkfifo(fifo)
    if what == "data-fifo":
        args = ["--data", str(fifo)]
    elif what == "tokenizer-fifo":
        args = ["--tokenizer", str(fifo)]
    else:
        (tmp_path / "b.txt").write_text("Plain words in a small file, enough for nothing much.\n\n" * 20)
        args = ["--data", str(tmp_path)]
    r = runner.invoke(app, ["run", "--headless", *tiny_args(steps=2), *args, "--sessions-dir", str(tmp_path / "s")])
    assert r.exit_code == 2, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in r.output, r.output
    if what != "data-folder-fifo":
        assert "not a regular file" in errors[0]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("flag", ["--data", "--tokenizer"])
def test_run_refuses_dev_zero_without_reading_it(tmp_path, flag, cache_dir):
    r = subprocess.run([sys.executable, "-m", "bitnet_tui", "run", "--headless", *tiny_args(steps=2), flag,
                        "/dev/zero", "--sessions-dir", str(tmp_path / "s")], capture_output=True, text=True,
                       timeout=90, cwd=ROOT, env=cli_env(BITNET_TUI_CACHE=cache_dir), stdin=subprocess.DEVNULL,
                       preexec_fn=_limit_memory)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1] == "error: /dev/zero is not a regular file", r.stderr[-2000:]
    assert not list((tmp_path / "s").glob("*.jsonl")) if (tmp_path / "s").exists() else True


@pytest.mark.timeout(60)
def test_resume_skips_a_checkpoint_that_is_a_fifo(tmp_path):
    """A FIFO among a run's checkpoints (the newest, by its name) is passed over like any checkpoint that will
    not load: the resume continues from the one before and says so."""
    sdir = tmp_path / "s"
    r = runner.invoke(app, ["run", "--headless", *tiny_args(steps=4, eval_every=4), "--checkpoint-every", "2",
                            "--sessions-dir", str(sdir)])
    assert r.exit_code == 0, r.output
    log = next(sdir.glob("*.jsonl"))
    ckpt = log.with_name(log.name.removesuffix(".jsonl") + ".ckpt")
    os.mkfifo(ckpt / "step00000009.pt")
    r = runner.invoke(app, ["run", "--headless", "--resume", str(log), "--steps", "6", "--sessions-dir", str(sdir)])
    assert r.exit_code == 0, r.output
    notes = [line for line in r.output.splitlines() if line.startswith("note: ")]
    assert any("step00000009.pt does not load" in n and "continuing from step00000004.pt" in n for n in notes), notes
