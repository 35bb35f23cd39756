"""Watching and fixing a run from a second SSH shell: a run started in the foreground (the dashboard, in tmux)
answers ``ctl latest ping`` and ``ctl latest set-wd 0`` and can be attached to; Ctrl+C in its dashboard ends
it cleanly (a checkpoint, ``run_ended interrupted``, exit 130)."""

from __future__ import annotations

import subprocess
import time

from bitnet_tui.session.log.paths import list_sessions
from bitnet_tui.session.log.reader import read_session
from tests.e2e.test_tmux_e2e import TINY, Tmux, _env, program, pytestmark  # noqa: F401  (its marks)


def ctl(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """``bitnet-tui ctl ...`` from another shell of the same user."""
    env = {**_env(tmp_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run([*program().split(), "ctl", *args], capture_output=True, text=True, timeout=30,
                          env=env, cwd=tmp_path)


def wait_log(tmp_path, cond, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    data = None
    while time.monotonic() < deadline:
        logs = list_sessions(tmp_path / "sessions")
        data = read_session(logs[0]) if logs else None
        if data is not None and cond(data):
            return data
        time.sleep(0.3)
    raise AssertionError(f"the log never matched; last: {data and [e.kind for e in data.events][-5:]}")


def test_a_foreground_run_is_steerable_and_attachable_from_another_shell(tmux, tmp_path):
    tmux.start(f"{program()} run {TINY} --steps 100000", _env(tmp_path))
    tmux.wait_for(lambda s: "LIVE" in s and "_h32_" in s and "palette" in s, timeout=60)
    ping = ctl(tmp_path, "latest", "ping")
    assert ping.returncode == 0, ping.stderr
    wd = ctl(tmp_path, "latest", "set-wd", "0")
    assert wd.returncode == 0, wd.stderr
    data = wait_log(tmp_path, lambda d: any(e.kind == "intervention" and e.action == "set_wd" for e in d.events))
    iv = next(e for e in data.events if e.kind == "intervention" and e.action == "set_wd")
    assert ": wd 0.1," in str(iv.old) and ": wd 0," in str(iv.new), (iv.old, iv.new)
    wait_log(tmp_path, lambda d: any(e.kind == "step" and e.step > iv.step and e.weight_decay == 0
                                     for e in d.events))  # the steps after it use it
    tmux.wait_for(lambda s: "set_wd" in s)  # the foreground dashboard shows the change made elsewhere
    second = Tmux(tmp_path / "second")
    (tmp_path / "second").mkdir()
    try:
        second.start(f"{program()} attach latest", _env(tmp_path))
        second.wait_for(lambda s: "_h32_" in s and "palette" in s and "set_wd" in s, timeout=60)  # its history too
        second.keys("q")  # an attached dashboard detaches; the run goes on
        second.wait_gone()
    finally:
        second.kill()
    assert ctl(tmp_path, "latest", "ping").returncode == 0
    tmux.keys("q")
    tmux.wait_for(lambda s: "Stop it and quit?" in s)
    tmux.keys("y")
    tmux.wait_gone(timeout=40)


def test_ctrl_c_in_the_dashboard_ends_the_run_cleanly_with_130(tmux, tmp_path):
    rc = tmp_path / "rc"
    tmux.start(f"sh -c '{program()} run {TINY} --steps 100000; echo $? > {rc}; sleep 30'", _env(tmp_path))
    tmux.wait_for(lambda s: "LIVE" in s and "_h32_" in s and "palette" in s, timeout=60)
    tmux.keys("C-c")
    deadline = time.monotonic() + 40
    while not rc.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rc.exists(), f"the program did not end; screen:\n{tmux.screen()}"
    assert rc.read_text().strip() == "130"
    data = read_session(list_sessions(tmp_path / "sessions")[0])
    assert data.ended and data.end.reason == "interrupted"
    assert any(e.kind == "checkpoint" for e in data.events)
