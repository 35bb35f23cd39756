"""Faults a real run meets: a killed process, signals, a full disk, a non-finite loss, a training-thread crash."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import bitnet_tui.session.log.writer as session_mod
from bitnet_model.train.trainer import Trainer
from bitnet_tui.app.cli.main import app
from bitnet_tui.instrument.for_trainer import monitor_for
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.log.events import Alert, CheckpointSaved, Intervention, RunEnded, StepDone
from bitnet_tui.session.log.follow import Follower
from bitnet_tui.session.log.paths import list_sessions
from bitnet_tui.session.log.reader import read_session
from bitnet_tui.session.log.writer import SessionWriter

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TINY = ["--hidden", "32", "--layers", "1", "--heads", "2", "--vocab-size", "300", "--context", "16",
        "--batch-size", "4", "--eval-every", "20"]
runner = CliRunner()


def start_headless(sdir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "bitnet_tui", "run", "--headless", *TINY, "--sessions-dir", str(sdir), *args]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def wait_for(sdir: Path, proc: subprocess.Popen, until, timeout: float = 90.0) -> tuple[Path, list]:
    """Follow the run's log until ``until(events)`` holds; returns (log path, events so far)."""
    deadline = time.monotonic() + timeout
    follower, events = None, []
    while time.monotonic() < deadline:
        if follower is None:
            logs = list_sessions(sdir)
            if logs:
                follower = Follower(logs[0])
        if follower is not None:
            events += follower.poll()
            if until(events):
                return follower.path, events
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"the run exited early ({proc.returncode}): {out[-2000:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the run did not get there in time")


def test_sigkill_leaves_a_readable_log_and_resume_continues_from_the_last_checkpoint(tmp_path):
    sdir = tmp_path / "s"
    proc = start_headless(sdir, "--steps", "300", "--checkpoint-every", "5")
    try:
        path, _ = wait_for(sdir, proc, lambda evs: sum(isinstance(e, CheckpointSaved) for e in evs) >= 2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    data = read_session(path)
    assert data.status == "crashed" and not data.ended
    assert all(line.endswith(b"}") for line in path.read_bytes().splitlines()[:-1])
    ckpt_steps = [e.step for e in data.events if isinstance(e, CheckpointSaved)]
    last = max(ckpt_steps)
    target = max(last + 3, 20)  # past the warmup (5% of 300 steps)
    result = runner.invoke(app, ["run", "--headless", "--resume", str(path), "--steps", str(target),
                                 "--sessions-dir", str(sdir)])
    assert result.exit_code == 0, result.output
    new = [p for p in list_sessions(sdir) if p != path]
    assert len(new) == 1
    resumed = read_session(new[0])
    assert resumed.header.parent["step"] == last and resumed.header.parent["relation"] == "resume"
    steps = [e.step for e in resumed.events if isinstance(e, StepDone)]
    assert steps == list(range(last + 1, target + 1))
    assert resumed.end.reason == "finished"


@pytest.mark.parametrize("sig,reason,code", [(signal.SIGINT, "interrupted", 130), (signal.SIGTERM, "terminated", 143)])
def test_sigint_and_sigterm_end_the_run_cleanly(tmp_path, sig, reason, code):
    sdir = tmp_path / "s"
    proc = start_headless(sdir, "--steps", "5000")
    path, _ = wait_for(sdir, proc, lambda evs: any(isinstance(e, StepDone) for e in evs))
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == code, out.decode(errors="replace")[-2000:]
    data = read_session(path)
    assert data.ended and data.end.reason == reason and data.status == "finished"
    ck = [e for e in data.events if isinstance(e, CheckpointSaved)]
    assert ck and Path(ck[-1].path).exists() and ck[-1].step == data.end.step
    assert b"Traceback" not in out


def _strict(line: bytes):
    def refuse(name):
        raise ValueError(name)

    return json.loads(line, parse_constant=refuse)


def test_disk_full_pauses_training_keeps_what_was_written_and_resumes(tiny, tmp_path, monkeypatch):
    path = tmp_path / "run.jsonl"
    path.touch()
    tr = Trainer(tiny(steps=30))
    mon = monitor_for(tr, path)
    mon.start()
    writer = mon.writer
    real_write = os.write
    state = {"failing": False, "calls": 0, "before": b""}

    def flaky_write(fd, data):
        if fd == writer._fd and state["failing"]:
            state["calls"] += 1
            if state["calls"] == 1:  # half a line reaches the disk, then the disk is full
                return real_write(fd, bytes(data[: len(data) // 2]))
            if state["calls"] <= 4:
                raise OSError(errno.ENOSPC, "No space left on device")
            state["failing"] = False
        return real_write(fd, data)

    def trigger(ev):
        if isinstance(ev, StepDone) and ev.step == 10 and not state["before"]:
            state["before"] = path.read_bytes()
            state["failing"] = True

    mon.subscribe(trigger)
    monkeypatch.setattr(session_mod.os, "write", flaky_write)
    end = tr.run()
    assert end.reason == "finished" and state["calls"] > 4
    raw = path.read_bytes()
    assert raw.startswith(state["before"]) and len(state["before"]) > 0
    for line in raw.splitlines():
        _strict(line)
    data = read_session(path)
    assert data.malformed == 0 and not data.truncated_last_line
    io = [e for e in data.events if isinstance(e, Alert) and e.code == "io"]
    assert io and "No space left" in io[0].message
    resumed = [e for e in data.events if isinstance(e, Intervention) and e.action == "resume"]
    assert resumed and resumed[0].source.startswith("auto")
    assert [e.step for e in data.events if isinstance(e, StepDone)] == list(range(1, 31))


def test_nonfinite_loss_alerts_pauses_and_every_line_stays_strict_json(tiny, tmp_path):
    path = tmp_path / "nan.jsonl"
    path.touch()
    tr = Trainer(tiny(steps=20), on_nonfinite="pause")
    tr.setup()
    with torch.no_grad():
        next(p for p in tr.model.parameters() if p.dim() >= 2).fill_(math.nan)
    mon = monitor_for(tr, path)
    seen = []

    def on_event(ev):
        seen.append(ev)
        if isinstance(ev, Intervention) and ev.action == "pause":
            mon.send(C.Stop(reason="stopped", source="test"))

    mon.subscribe(on_event)
    end = tr.run()
    assert end.reason == "stopped"
    alerts = [e for e in seen if isinstance(e, Alert) and e.code == "nonfinite"]
    assert alerts and alerts[0].level == "error"
    pauses = [e for e in seen if isinstance(e, Intervention) and e.action == "pause"]
    assert pauses and pauses[0].source.startswith("auto")
    lines = path.read_bytes().splitlines()
    assert any(b'"NaN"' in line for line in lines)
    for line in lines:
        _strict(line)


def test_a_crash_in_the_training_thread_ends_the_log_with_an_error(tiny, tmp_path):
    path = tmp_path / "crash.jsonl"
    tr = Trainer(tiny(steps=30))
    tr.setup()
    batches = tr.batches

    class Exploding:
        def __init__(self):
            self.n = 0

        def __next__(self):
            self.n += 1
            if self.n > 5:
                raise RuntimeError("the data loader fell over")
            return next(batches)

    tr.batches = Exploding()
    path.touch()
    monitor_for(tr, path)
    end = tr.run()
    assert end.reason == "error" and "fell over" in end.error
    data = read_session(path)
    assert data.ended and data.end.reason == "error" and "fell over" in data.end.error
    crash = [e for e in data.events if isinstance(e, Alert) and e.code == "crash"]
    assert crash and crash[0].level == "error"
    assert [e.step for e in data.events if isinstance(e, StepDone)] == [1, 2, 3, 4, 5]
    assert isinstance(data.events[-1], RunEnded)


def test_two_runs_started_in_the_same_second_get_different_logs(tiny, tmp_path, monkeypatch):
    from datetime import datetime

    from bitnet_tui.app.runs.build import prepare_run

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 1, 1, 12, 0, 0)

    import bitnet_tui.app.runs.plan as plan_mod
    from bitnet_tui.session.log.paths import checkpoint_dir

    monkeypatch.setattr(plan_mod, "datetime", Frozen)
    a = prepare_run({"steps": 2}, sessions=str(tmp_path), base=tiny())
    b = prepare_run({"steps": 2}, sessions=str(tmp_path), base=tiny())
    assert a.session_path != b.session_path and a.session_path.parent == b.session_path.parent
    assert b.session_path.name == a.session_path.name.replace(".jsonl", "-2.jsonl")
    assert checkpoint_dir(a.session_path) != checkpoint_dir(b.session_path)


def test_two_followers_on_one_growing_log_both_see_every_event(tmp_path):
    from tests.fixtures.scripted import scripted_run

    events = scripted_run([20, 10, 5, 3], eval_every=25)
    path = tmp_path / "grow.jsonl"
    writer = SessionWriter(path)
    followers = [Follower(path), Follower(path)]
    seen: list[list] = [[], []]
    for i, ev in enumerate(events):
        writer(ev)
        if i % 7 == 0:
            for f, s in zip(followers, seen, strict=True):
                s += f.poll()
    writer.close()
    for f, s in zip(followers, seen, strict=True):
        s += f.poll()
        assert f.ended
        assert [e.to_dict() for e in s] == [e.to_dict() for e in events]
