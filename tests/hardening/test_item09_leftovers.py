"""Issue 13, item 9: SIGTERM to ``sweep``, continuations shorter than the warmup, slow clients on the control
socket, and ``--resume`` of a run that is still running."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from typer.testing import CliRunner

import bitnet_tui.instrument.server as server_mod
from bitnet_tui.app.cli.main import app
from bitnet_tui.app.runs.build import prepare_run
from bitnet_tui.app.runs.plan import plan_run
from bitnet_tui.instrument.server import MAX_CLIENTS, ControlServer
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.control.client import request
from bitnet_tui.session.log.events import StepDone
from bitnet_tui.session.log.follow import Follower
from bitnet_tui.session.log.paths import checkpoint_dir, list_sessions
from bitnet_tui.session.log.reader import read_session
from bitnet_tui.session.log.writer import SessionWriter, writer_lock_held
from tests.conftest import tiny_args, tiny_config, wait_until
from tests.control.helpers import RecordingRun
from tests.fixtures.scripted import scripted_run
from tests.hardening.hostile import ROOT, cli_env

runner = CliRunner()


# --------------------------------------------------------------------------- SIGTERM to sweep

@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigterm_to_sweep_ends_its_runs_cleanly_and_keeps_their_sessions(tmp_path, cache_dir):
    sdir = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-m", "bitnet_tui", "sweep", "--lr", "1e-3,2e-3", "--jobs", "2",
                             *tiny_args(steps=100000, eval_every=1000), "--no-diagnose", "--sessions-dir", str(sdir)],
                            cwd=ROOT, env=cli_env(BITNET_TUI_CACHE=cache_dir), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        followers: dict = {}

        def both_training() -> bool:
            for p in list_sessions(sdir):
                followers.setdefault(p, [Follower(p), False])
            for entry in followers.values():
                entry[1] = entry[1] or any(isinstance(e, StepDone) for e in entry[0].poll())
            return len(followers) == 2 and all(ok for _, ok in followers.values())

        wait_until(both_training, timeout=150, what="both runs of the sweep to train", every=0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None or any(writer_lock_held(p) for p in list_sessions(sdir)):
            os.killpg(proc.pid, signal.SIGKILL)  # a regression leaves runs training: do not leave them behind
    assert "Traceback" not in err, err[-3000:]
    assert "stopping" in err
    for log in list_sessions(sdir):
        assert writer_lock_held(log) is False  # no process writes it any more
        data = read_session(log)
        assert data.end is not None and data.end.reason == "terminated", (log, data.end)
        assert data.status == "finished"


# --------------------------------------------------------------------------- shorter than the warmup

def _parent(sdir, steps=200, **train):
    """A parent session (its header is all ``plan_run`` reads) with a checkpoint file named at step 4."""
    sdir.mkdir(exist_ok=True)
    cfg = tiny_config(None, steps=steps, **train)
    log = sdir / "2026-01-01T00-00-00_parent.jsonl"
    with SessionWriter(log) as w:
        for e in scripted_run([20, 10], config=cfg, eval_every=4):
            w(e)
    checkpoint_dir(log).mkdir()
    (checkpoint_dir(log) / "step00000004.pt").write_bytes(b"")
    return log, cfg


@pytest.mark.parametrize("how", ["resume", "fork"])
@pytest.mark.parametrize("parent_warmup", [None, 150])
def test_a_continuation_shorter_than_the_warmup_re_derives_it(tmp_path, how, parent_warmup):
    log, cfg = _parent(tmp_path / "s", warmup_steps=parent_warmup)
    assert cfg.train.warmup_steps >= 8
    kw = {"resume": str(log)} if how == "resume" else {"fork": f"{log}@4"}
    plan = plan_run({"steps": 8}, sessions=str(tmp_path / "s"), **kw)
    assert plan.cfg.train.steps == 8 and plan.cfg.train.warmup_steps < 8


def test_a_warmup_given_beyond_the_continuation_is_one_line(tmp_path):
    log, _ = _parent(tmp_path / "s")
    for how in (["--resume", str(log)], ["--from", f"{log}@4"]):
        r = runner.invoke(app, ["run", "--headless", *how, "--steps", "8", "--warmup", "20",
                                "--sessions-dir", str(tmp_path / "s")])
        assert r.exit_code == 2 and r.output.startswith("error: ") and "warmup" in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1


def test_a_real_resume_shorter_than_the_parents_warmup_trains_to_its_end(tmp_path, tiny):
    live = prepare_run({}, sessions=str(tmp_path / "s"), base=tiny(steps=200))
    assert live.trainer.cfg.train.warmup_steps == 10
    live.subscribe(lambda ev: isinstance(ev, StepDone) and ev.step == 4 and live.send(C.Stop(source="test")))
    assert live.run().reason == "stopped"
    r = runner.invoke(app, ["run", "--headless", "--resume", str(live.session_path), "--steps", "8",
                            "--sessions-dir", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    child = [p for p in list_sessions(tmp_path / "s") if p != live.session_path][0]
    data = read_session(child)
    assert [e.step for e in data.events if isinstance(e, StepDone)] == [5, 6, 7, 8]
    assert data.header.config["train"]["warmup_steps"] < 8


# --------------------------------------------------------------------------- --resume of a running run

def test_resume_of_a_run_that_is_still_running_is_refused(tmp_path):
    sdir = tmp_path / "s"
    sdir.mkdir()
    log = sdir / "2026-01-01T00-00-00_live.jsonl"
    writer = SessionWriter(log)
    try:
        for e in scripted_run([20, 10], config=tiny_config(None, steps=8), eval_every=4, end=None):
            writer(e)
        checkpoint_dir(log).mkdir()
        (checkpoint_dir(log) / "step00000004.pt").write_bytes(b"")
        r = runner.invoke(app, ["run", "--headless", "--resume", log.name, "--sessions-dir", str(sdir)])
        assert r.exit_code == 2, r.output
        assert r.output.startswith("error: ") and "still running" in r.output and "--from" in r.output
        assert list_sessions(sdir) == [log]
    finally:
        writer.close()


# --------------------------------------------------------------------------- slow clients

def _trickle(path, stop: threading.Event) -> None:
    """A client that sends a byte every 0.3 s and never finishes a line (until the server hangs up)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(path))
        s.settimeout(0.3)
        try:
            while not stop.is_set():
                s.sendall(b" ")
                try:
                    if s.recv(4096) == b"":
                        return  # the server hung up on us
                except TimeoutError:
                    pass
        except OSError:
            return


@pytest.mark.timeout(60)
def test_eight_trickling_clients_cannot_lock_ctl_out(tmp_path, monkeypatch):
    monkeypatch.setattr(server_mod, "CONNECTION_S", 2.0)  # the bound under test, shortened for the suite
    log = tmp_path / "r.jsonl"
    log.write_text("")
    path = tmp_path / "r.sock"
    server = ControlServer(RecordingRun(step_count=3), path)
    stop = threading.Event()
    threads = [threading.Thread(target=_trickle, args=(path, stop), daemon=True)
               for _ in range(MAX_CLIENTS)]
    try:
        for t in threads:
            t.start()
        wait_until(lambda: len(server._clients) == MAX_CLIENTS, timeout=10, what="eight clients to hold every slot")
        first = request(path, {"cmd": "ping"})
        assert first == {"ok": False, "error": "too many connections"}  # every slot is held: the lock-out
        t0 = time.monotonic()
        reply = wait_until(lambda: (r := request(path, {"cmd": "ping"}))["ok"] and r, timeout=server_mod.CONNECTION_S
                           + 3, what="a ping to get through", every=0.1)
        assert reply == {"ok": True, "run": "r", "step": 3, "paused": False}
        assert time.monotonic() - t0 <= server_mod.CONNECTION_S + 3
        r = runner.invoke(app, ["ctl", str(log), "ping"])
        assert r.exit_code in (0, 2) and "Traceback" not in r.output  # the CLI answers either way, in one line
        assert len(r.output.strip().splitlines()) == 1 and json.loads(r.output)
    finally:
        stop.set()
        server.close()
        for t in threads:
            t.join(5)
