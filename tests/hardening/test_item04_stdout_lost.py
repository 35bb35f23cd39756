"""Issue 13, item 4: losing stdout never kills a run.

``run --headless ... | head -3`` once aborted (exit 134) with no ``run_ended``. A real pipe closed early (a real
``| head -3`` in bash) and stdout on ``/dev/full`` (every write fails, ENOSPC): the process exits 0, the log ends
with ``run_ended`` (finished) after every step, and holds an ``output`` alert saying printing stopped.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from bitnet_tui.session.log.events import Alert, StepDone
from bitnet_tui.session.log.paths import list_sessions
from bitnet_tui.session.log.reader import read_session
from tests.conftest import tiny_args
from tests.hardening.hostile import ROOT, cli_env

STEPS = 300


def _check_log(sdir, why: str) -> None:
    logs = list_sessions(sdir)
    assert len(logs) == 1
    data = read_session(logs[0])
    assert data.end is not None and data.end.reason == "finished", data.end
    assert [e.step for e in data.events if isinstance(e, StepDone)] == list(range(1, STEPS + 1))
    lost = [e for e in data.events if isinstance(e, Alert) and e.code == "output"]
    assert len(lost) == 1 and lost[0].level == "warning" and why in lost[0].message, [e.message for e in lost]
    assert "training goes on" in lost[0].message


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash for PIPESTATUS")
def test_a_pipe_closed_early_leaves_the_run_to_finish(tmp_path, cache_dir):
    sdir = tmp_path / "s"
    cmd = " ".join([sys.executable, "-m", "bitnet_tui", "run", "--headless", *tiny_args(steps=STEPS, eval_every=10),
                    "--sessions-dir", str(sdir)])
    r = subprocess.run(["bash", "-c", f'{cmd} 2>"$ERR" | head -3; echo "rc=${{PIPESTATUS[0]}}"'], cwd=ROOT,
                       capture_output=True, text=True, timeout=150, stdin=subprocess.DEVNULL,
                       env=cli_env(BITNET_TUI_CACHE=cache_dir, ERR=str(tmp_path / "err.txt")))
    err = (tmp_path / "err.txt").read_text()
    head, rc = r.stdout.splitlines()[:-1], r.stdout.splitlines()[-1]
    assert rc == "rc=0", (r.stdout, err[-3000:])
    assert len(head) == 3 and head[0].startswith("eval  step 0")
    assert "Traceback" not in err and "Exception ignored" not in err, err[-3000:]
    assert err.strip().splitlines()[-1].startswith(f"run ended (finished) at step {STEPS}")
    _check_log(sdir, "BrokenPipeError")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_stdout_on_a_full_disk_leaves_the_run_to_finish(tmp_path, cache_dir):
    sdir = tmp_path / "s"
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "bitnet_tui", "run", "--headless",
                            *tiny_args(steps=STEPS, eval_every=10), "--sessions-dir", str(sdir)], cwd=ROOT,
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=150, stdin=subprocess.DEVNULL,
                           env=cli_env(BITNET_TUI_CACHE=cache_dir))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr[-3000:]
    _check_log(sdir, "No space left on device")
