"""Past one process: `run --nproc 2` (gloo on CPU) and a user's DDP loop under Monitor, steered mid-run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bitnet_tui.session.log.events import Intervention, StepDone
from bitnet_tui.session.log.paths import list_sessions
from bitnet_tui.session.log.reader import read_session
from tests.conftest import ROOT, cli, tiny_args, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def start(args: list[str]) -> subprocess.Popen:
    """A launcher in its own process group, so a failed test can take its workers down with it."""
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def steps_in(log: Path) -> int:
    try:
        return max((e.step for e in read_session(log).events if isinstance(e, StepDone)), default=0)
    except Exception:
        return 0


def steer_mid_run(sdir: Path, proc: subprocess.Popen, lr: str) -> Path:
    log = wait_until(lambda: next(iter(list_sessions(sdir)), None), 120, "the job's log")
    wait_until(lambda: steps_in(log) >= 5 or proc.poll() is not None, 120, "five steps")
    out = cli("ctl", str(log), "set-lr", lr)
    assert out.returncode == 0, out.stderr
    target = steps_in(log) + 15
    wait_until(lambda: steps_in(log) >= target or proc.poll() is not None, 120, "steps after the change")
    assert cli("ctl", str(log), "stop").returncode == 0
    return log


def check_one_voice(log: Path, lr: float) -> list[StepDone]:
    data = read_session(log)
    assert data.header.world["size"] == 2 and data.header.world["backend"] == "gloo"
    changes = [e for e in data.events if isinstance(e, Intervention) and e.action == "set_lr"]
    assert len(changes) == 1 and changes[0].source == "remote"  # one intervention for the whole job
    later = [e for e in data.events if isinstance(e, StepDone) and e.step > changes[0].step]
    assert later and all(e.lr_spread == 0.0 for e in later)  # every rank applied it at the same step
    assert all(e.lr == pytest.approx(lr) for e in later)
    assert data.end is not None and data.end.reason == "stopped"
    return later


@pytest.mark.timeout(600)
def test_nproc_2_one_log_one_voice_and_resume_on_one_process(tmp_path):
    sdir = tmp_path / "s"
    args = [*tiny_args(steps=100_000, eval_every=50, schedule="constant", warmup=0), "--checkpoint-every", "10"]
    proc = start([sys.executable, "-m", "bitnet_tui", "run", "--nproc", "2", "--headless", *args, "--sessions-dir",
                  str(sdir)])
    try:
        log = steer_mid_run(sdir, proc, "1e-3")
        out, _ = proc.communicate(timeout=120)
    finally:
        kill_group(proc)
    assert proc.returncode == 0, out.decode(errors="replace")[-3000:]
    assert len(list_sessions(sdir)) == 1
    later = check_one_voice(log, 1e-3)
    last = later[-1].step
    r = cli("run", "--headless", "--resume", str(log), "--nproc", "1", "--steps", str(last + 10),
            "--sessions-dir", str(sdir))
    assert r.returncode == 0, r.stderr[-3000:]
    child = next(p for p in list_sessions(sdir) if p != log)
    d = read_session(child)
    assert d.header.parent["relation"] == "resume" and d.header.world == {}
    steps = [e.step for e in d.events if isinstance(e, StepDone)]
    assert steps[0] == d.header.parent["step"] + 1 and steps[-1] == last + 10


@pytest.mark.timeout(600)
def test_a_users_ddp_loop_under_monitor(tmp_path):
    sdir = tmp_path / "s"
    script = Path(__file__).with_name("ddp_user_loop.py")
    proc = start([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script),
                  str(sdir)])
    try:
        log = steer_mid_run(sdir, proc, "2e-3")
        out, _ = proc.communicate(timeout=120)
    finally:
        kill_group(proc)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert len(list_sessions(sdir)) == 1  # rank 1 wrote nothing
    check_one_voice(log, 2e-3)
    finals = sorted(re.findall(r"final lr rank \d: [0-9.e-]+", text))  # two processes share one pipe
    assert finals == ["final lr rank 0: 0.002", "final lr rank 1: 0.002"], text[-2000:]


@pytest.mark.timeout(300)
def test_a_rank_that_dies_ends_the_run_with_a_reason_on_rank_0(tmp_path):
    sdir = tmp_path / "s"
    proc = start([sys.executable, "-m", "bitnet_tui", "run", "--nproc", "2", "--headless",
                  *tiny_args(steps=100_000, eval_every=50), "--sessions-dir", str(sdir)])
    try:
        log = wait_until(lambda: next(iter(list_sessions(sdir)), None), 120, "the job's log")
        wait_until(lambda: steps_in(log) >= 5, 120, "five steps")
        ranks = subprocess.run(["pgrep", "-f", "--", f"-u -m bitnet_tui run .*{log.name}"], capture_output=True,
                               text=True).stdout
        pids = sorted(int(p) for p in ranks.split())
        assert len(pids) == 2, ranks
        victim = next(p for p in pids if "RANK=1" in Path(f"/proc/{p}/environ").read_bytes().replace(b"\0", b" ")
                      .decode(errors="replace"))
        os.kill(victim, signal.SIGKILL)
        out, _ = proc.communicate(timeout=120)
    finally:
        kill_group(proc)
    assert proc.returncode == 1, out.decode(errors="replace")[-2000:]
    end = read_session(log).end
    assert end is not None and end.reason == "rank_failed" and "stopped responding" in end.error, end
