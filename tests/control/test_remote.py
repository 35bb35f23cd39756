"""The control socket, the RemoteRun proxy, run --detach, attach and ctl."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bitnet_tui.app.cli.main import app
from bitnet_tui.instrument.server import ControlServer
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.control.client import request
from bitnet_tui.session.control.peer import ControlError, control_path
from bitnet_tui.session.control.protocol import command_request, parse_request
from bitnet_tui.session.control.remote import RemoteRun
from bitnet_tui.session.log.events import Alert, Intervention, RunEnded, RunStarted, StepDone
from bitnet_tui.session.log.reader import read_session
from bitnet_tui.session.log.writer import SessionWriter
from tests.conftest import wait_until
from tests.control.helpers import RecordingRun, reply_to
from tests.fixtures.scripted import scripted_run

REPO = Path(__file__).resolve().parents[2]
TINY = ["--hidden", "32", "--layers", "1", "--heads", "2", "--vocab-size", "300", "--context", "16",
        "--batch-size", "4", "--eval-every", "20"]
runner = CliRunner()


@pytest.fixture
def served(tmp_path):
    tr = RecordingRun("fake", 7)
    server = ControlServer(tr, tmp_path / "run.sock")
    yield tr, server
    server.close()


# --------------------------------------------------------------------------- requests

@pytest.mark.parametrize("req,cmd", [
    ({"cmd": "set_lr", "value": 1e-3}, C.SetLR(value=1e-3, source="remote")),
    ({"cmd": "set_lr", "value": 2}, None),
    ({"cmd": "scale_lr", "factor": 0.5}, C.ScaleLR(factor=0.5, source="remote")),
    ({"cmd": "undo_lr"}, C.UndoLR(source="remote")),
    ({"cmd": "pause"}, C.Pause(source="remote")),
    ({"cmd": "resume"}, C.Resume(source="remote")),
    ({"cmd": "stop"}, C.Stop(reason="stopped", source="remote")),
    ({"cmd": "stop", "reason": "night"}, C.Stop(reason="night", source="remote")),
    ({"cmd": "checkpoint"}, C.CheckpointNow(source="remote")),
    ({"cmd": "eval"}, C.EvalNow(source="remote")),
])
def test_requests_become_commands_from_remote(req, cmd):
    if cmd is None:
        with pytest.raises(ValueError, match="below"):
            parse_request(req)
        return
    assert parse_request(req) == cmd
    assert parse_request(command_request(cmd)) == cmd


@pytest.mark.parametrize("req", [
    [], "pause", None, {}, {"cmd": "rm -rf"}, {"cmd": 3}, {"cmd": "set_lr"}, {"cmd": "set_lr", "value": "1e-3"},
    {"cmd": "set_lr", "value": True}, {"cmd": "set_lr", "value": 0}, {"cmd": "set_lr", "value": -1e-3},
    {"cmd": "set_lr", "value": float("nan")}, {"cmd": "set_lr", "value": 1e-3, "extra": 1},
    {"cmd": "scale_lr", "factor": 0}, {"cmd": "scale_lr", "factor": float("inf")}, {"cmd": "pause", "value": 1},
    {"cmd": "stop", "reason": "\x1b]0;pwned\x07"}, {"cmd": "stop", "reason": "x" * 100}, {"cmd": "stop", "reason": 5},
])
def test_bad_requests_are_refused(req):
    with pytest.raises(ValueError):
        parse_request(req)


# --------------------------------------------------------------------------- the server

def test_server_queues_commands_and_answers(served):
    tr, server = served
    assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o600
    assert request(server.path, {"cmd": "set_lr", "value": 1e-3}) == {"ok": True}
    assert tr.sent == [C.SetLR(value=1e-3, source="remote")]
    assert request(server.path, {"cmd": "ping"}) == {"ok": True, "run": "fake", "step": 7, "paused": False}
    bad = request(server.path, {"cmd": "explode"})
    assert bad["ok"] is False and "unknown cmd" in bad["error"]
    assert reply_to(server.path, b"{not json\n")["ok"] is False
    assert reply_to(server.path, b'{"cmd": "set_lr", "value": NaN}\n')["ok"] is False
    assert reply_to(server.path, b"[" * 3000 + b"\n")["ok"] is False
    assert reply_to(server.path, b"x" * 10000)["error"] == "request too long"
    assert len(tr.sent) == 1


def test_several_requests_on_one_connection(served):
    tr, server = served
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(server.path))
        s.sendall(b'{"cmd": "pause"}\n{"cmd": "resume"}\n')
        f = s.makefile("rb")
        assert json.loads(f.readline()) == {"ok": True}
        assert json.loads(f.readline()) == {"ok": True}
    assert tr.sent == [C.Pause(source="remote"), C.Resume(source="remote")]


def test_close_removes_the_socket_and_a_second_server_is_refused(tmp_path):
    path = tmp_path / "run.sock"
    first = ControlServer(RecordingRun("fake", 7), path)
    with pytest.raises(ControlError, match="already served"):
        ControlServer(RecordingRun("fake", 7), path)
    first.close()
    assert not path.exists()
    with pytest.raises(ControlError, match="does not exist"):
        request(path, {"cmd": "ping"})


def test_a_stale_socket_is_replaced_and_a_plain_file_is_not(tmp_path):
    path = tmp_path / "run.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens
    with pytest.raises(ControlError, match="gone"):
        request(path, {"cmd": "ping"})
    with ControlServer(RecordingRun("fake", 7), path) as server:
        assert request(server.path, {"cmd": "ping"})["ok"]
    plain = tmp_path / "plain.sock"
    plain.write_text("data")
    with pytest.raises(ControlError, match="not a socket"):
        ControlServer(RecordingRun("fake", 7), plain)
    assert plain.read_text() == "data"


def test_a_directory_others_can_write_is_refused(tmp_path):
    d = tmp_path / "open"
    d.mkdir()
    d.chmod(0o777)
    with pytest.raises(ControlError, match="writable by other users"):
        ControlServer(RecordingRun("fake", 7), d / "run.sock")
    d.chmod(0o1777)  # sticky, like /tmp: others cannot replace our file
    ControlServer(RecordingRun("fake", 7), d / "run.sock").close()


def test_a_long_path_still_works(tmp_path):
    d = tmp_path / ("x" * 60) / ("y" * 60)
    d.mkdir(parents=True)
    path = d / "2026-01-01T00-00-00_h32_lr3e-3.sock"
    assert len(str(path)) > 110
    with ControlServer(RecordingRun("fake", 7), path) as server:
        assert path.exists()
        assert request(server.path, {"cmd": "ping"})["ok"]


def test_other_users_are_refused_by_peer_credentials(tmp_path):
    tr = RecordingRun("fake", 7)
    with ControlServer(tr, tmp_path / "run.sock", allowed_uid=os.geteuid() + 12345) as server:
        reply = reply_to(server.path, b'{"cmd": "stop"}\n')
        assert reply == {"ok": False, "error": "this run belongs to another user"}
        assert tr.sent == [] and server.refused == 1


SYSTEM_PYTHON = "/usr/bin/python3"
"""A Python another user can run (the test's own may live in root's home)."""


@pytest.mark.skipif(os.geteuid() != 0 or not os.access(SYSTEM_PYTHON, os.X_OK),
                    reason="needs root and a system python3 to connect as another user")
def test_another_real_user_is_refused_even_with_an_open_socket():
    tr = RecordingRun("fake", 7)
    with tempfile.TemporaryDirectory(dir="/tmp") as d, ControlServer(tr, Path(d) / "run.sock") as server:
        Path(d).chmod(0o755)
        server.path.chmod(0o666)  # only SO_PEERCRED stands in the way now
        code = (f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({str(server.path)!r}); "
                "print(s.recv(200).decode())")  # refused on connect, before any request
        out = subprocess.run([SYSTEM_PYTHON, "-c", code], user=65534, capture_output=True, text=True, timeout=30)
        assert "another user" in out.stdout, out.stderr
        assert tr.sent == []


# --------------------------------------------------------------------------- the proxy

@pytest.mark.slow
def test_remote_run_follows_a_run_and_steers_it(tiny, tmp_path):
    from bitnet_tui.app.runs.build import prepare_run

    local = prepare_run({}, sessions=str(tmp_path), base=tiny(steps=40, warmup_steps=0, schedule="constant"),
                        control=True, argv=["bitnet-tui", "run"])
    log = local.session_path
    local.send(C.Pause(source="test"))  # hold it until the proxy has steered it
    trainer_thread = threading.Thread(target=local.run)
    trainer_thread.start()
    remote = RemoteRun(log, poll_s=0.02)
    seen = []
    remote.subscribe(seen.append)
    result = []
    proxy_thread = threading.Thread(target=lambda: result.append(remote.run()))
    proxy_thread.start()
    try:
        wait_until(lambda: remote.paused, 60, "the run to pause")
        assert remote.run_name == log.stem and remote.total_steps == 40
        assert remote.send(C.SetLR(value=1e-3, source="dashboard")) == {"ok": True}
        remote.send(C.Resume(source="dashboard"))
        trainer_thread.join(120)
        proxy_thread.join(30)
    finally:
        if trainer_thread.is_alive():
            local.send(C.Stop(source="test"))
            trainer_thread.join(60)
    end = result[0]
    assert end.reason == "finished" and remote.step_count == 40 and not remote.paused
    assert [e.to_dict() for e in seen] == [e.to_dict() for e in read_session(log).stream()]
    set_lr = [e for e in seen if isinstance(e, Intervention) and e.action == "set_lr"]
    assert set_lr and set_lr[0].source == "remote" and set_lr[0].new == pytest.approx(1e-3)
    steps = [s for s in seen if isinstance(s, StepDone)]
    assert steps and all(s.lr == pytest.approx(1e-3) for s in steps)


def _open_log(path: Path, n: int = 3) -> SessionWriter:
    events = scripted_run([20] * n, eval_every=2, end=None)
    w = SessionWriter(path)
    for e in events:
        w(e)
    return w


def test_detach_returns_and_leaves_the_run_alone(tmp_path):
    log = tmp_path / "a.jsonl"
    w = _open_log(log)
    remote = RemoteRun(log, poll_s=0.02)
    seen = []
    remote.subscribe(seen.append)
    result = []
    t = threading.Thread(target=lambda: result.append(remote.run()))
    t.start()
    time.sleep(0.3)
    remote.detach()
    t.join(5)
    assert result[0].reason == "detached" and isinstance(seen[0], RunStarted)
    assert not any(isinstance(e, RunEnded) for e in seen)
    w(RunEnded(step=6, time=0.0, reason="finished"))
    w.close()
    assert read_session(log).end.reason == "finished"


def test_a_run_whose_process_is_gone_is_reported_lost(tmp_path):
    log = tmp_path / "b.jsonl"
    _open_log(log).close()  # the writer's lock is released without run_ended: a crashed run
    remote = RemoteRun(log, poll_s=0.02, lost_after_s=0.2)
    seen = []
    remote.subscribe(seen.append)
    end = remote.run()
    assert end.reason == "lost"
    assert isinstance(seen[-1], Alert) and seen[-1].code == "crash"


def test_send_failures_become_alerts(tmp_path):
    log = tmp_path / "c.jsonl"
    w = _open_log(log)
    remote = RemoteRun(log, poll_s=0.02)
    seen = []
    remote.subscribe(seen.append)
    assert remote.send(C.Pause(source="dashboard")) is None  # nothing serves the socket
    w(RunEnded(step=6, time=0.0, reason="finished"))
    w.close()
    remote.run()
    alerts = [e for e in seen if isinstance(e, Alert) and e.code == "remote"]
    assert alerts and "does not exist" in alerts[0].message


# --------------------------------------------------------------------------- the commands

def test_attach_and_ctl_on_a_run_without_a_control_channel_say_so(tmp_path):
    log = tmp_path / "d.jsonl"
    _open_log(log).close()
    for args in (["attach", str(log)], ["ctl", str(log), "pause"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2
        assert "was started with --no-control" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["ctl", str(log), "set-lr", "abc"])
    assert result.exit_code == 2 and "needs a number" in result.output


@pytest.mark.slow
def test_detach_reports_the_background_runs_error(tmp_path):
    sdir = tmp_path / "s"
    result = runner.invoke(app, ["run", "--detach", *TINY, "--data", str(tmp_path / "missing.txt"),
                                 "--sessions-dir", str(sdir)])
    assert result.exit_code == 2, result.output
    assert "does not exist" in result.output and "Traceback" not in result.output
    assert not [p for p in sdir.iterdir() if p.suffix in (".jsonl", ".out")]



def start_detached(tmp_path: Path, sdir: Path, *, steps: int) -> tuple[subprocess.CompletedProcess, int, Path]:
    """`bitnet-tui run --detach` a tiny run; return its output, the background pid and the log."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "bitnet_tui", "run", "--detach", *TINY, "--steps", str(steps),
                          "--sessions-dir", str(sdir)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    pid = int(re.search(r"pid (\d+)", out.stdout).group(1))
    return out, pid, Path(re.search(r"session: (\S+)", out.stdout).group(1))


@pytest.mark.slow
def test_detached_run_outlives_its_parent_and_is_steered_by_ctl(tmp_path):
    sdir = tmp_path / "s"
    out, pid, log = start_detached(tmp_path, sdir, steps=5000)
    name = log.name.removesuffix(".jsonl")
    try:
        assert f"bitnet-tui attach {name}" in out.stdout
        assert os.getsid(pid) == pid != os.getsid(0)  # its own session: a hangup here does not reach it
        assert stat.S_IMODE(os.stat(control_path(log)).st_mode) == 0o600
        assert log.with_suffix(".out").exists()
        result = runner.invoke(app, ["ctl", name, "set-lr", "2e-3", "--sessions-dir", str(sdir)])
        assert result.exit_code == 0 and json.loads(result.output) == {"ok": True}
        result = runner.invoke(app, ["ctl", name, "stop", "--sessions-dir", str(sdir)])
        assert result.exit_code == 0, result.output
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not read_session(log).ended or control_path(log).exists()):
            time.sleep(0.2)
    finally:
        if control_path(log).exists():
            os.kill(pid, 9)
    data = read_session(log)
    assert data.end.reason == "stopped"
    sources = {(e.action, e.source) for e in data.events if isinstance(e, Intervention)}
    assert ("set_lr", "remote") in sources and ("stop", "remote") in sources
    assert not control_path(log).exists()


async def _attach_press(log: Path, key: str, action: str) -> None:
    """Open the dashboard on a detached run, press ``key``, wait for the confirmed intervention, quit."""
    from bitnet_tui.app.dashboard.app import make_app

    remote = RemoteRun(log)
    dash = make_app("live", run=remote)
    async with dash.run_test(size=(100, 30)) as pilot:
        deadline = time.monotonic() + 60
        while remote.header is None and time.monotonic() < deadline:
            await pilot.pause(0.1)
        before = sum(1 for e in read_session(log).events if isinstance(e, Intervention) and e.action == action)
        await pilot.press(key)
        while time.monotonic() < deadline:
            n = sum(1 for e in read_session(log).events if isinstance(e, Intervention) and e.action == action)
            if n > before:
                break
            await pilot.pause(0.1)
        await pilot.press("q")
        await pilot.pause(0.5)


@pytest.mark.slow
async def test_detach_attach_steer_detach_reattach_and_the_run_never_stops(tmp_path):
    sdir = tmp_path / "s"
    _, pid, log = start_detached(tmp_path, sdir, steps=100_000)
    try:
        await _attach_press(log, "right_square_bracket", "scale_lr")  # LR x2, then quit: detaches
        first = read_session(log)
        assert not first.ended and first.status == "running"
        step_after_detach = max(e.step for e in first.events)
        time.sleep(1.0)
        assert max(e.step for e in read_session(log).events) > step_after_detach  # still training
        await _attach_press(log, "left_square_bracket", "scale_lr")  # attach again, LR x0.5
        data = read_session(log)
        assert not data.ended
        scaled = [e for e in data.events if isinstance(e, Intervention) and e.action == "scale_lr"]
        assert len(scaled) == 2 and all(e.source == "remote" for e in scaled)
        assert scaled[0].new == pytest.approx(scaled[0].old * 2)
        assert scaled[1].new == pytest.approx(scaled[1].old * 0.5)
        assert not any(isinstance(e, Intervention) and e.action == "stop" for e in data.events)
    finally:
        request(control_path(log), {"cmd": "stop"}) if control_path(log).exists() else None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and control_path(log).exists():
            time.sleep(0.2)
        if control_path(log).exists():
            os.kill(pid, 9)
