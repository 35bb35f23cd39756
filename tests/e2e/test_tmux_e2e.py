"""The real program in a real terminal: tmux at 80x24, keys sent, the screen read back."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "collapse.jsonl"
TINY = "--hidden 32 --layers 1 --heads 2 --vocab-size 300 --context 16 --batch-size 4 --eval-every 20"

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (CI installs it)")]


def program() -> str:
    script = Path(sys.executable).with_name("bitnet-tui")
    return str(script) if script.exists() else f"{sys.executable} -m bitnet_tui"


LEAKY = ("COLUMNS", "LINES", "TMUX", "TMUX_PANE")
"""What a user's shell (or an outer tmux) may export that would change how the program under test draws:
COLUMNS/LINES override the terminal's real size for Textual (``shutil.get_terminal_size``)."""


def clean_env() -> dict[str, str]:
    """The tmux server's environment: this process's, without the terminal-size variables, with a plain shell."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY}
    env["SHELL"] = "/bin/sh"
    return env


class Tmux:
    def __init__(self, tmp_path: Path):
        self.sock = str(tmp_path / "tmux.sock")
        self.name = "e2e"

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-S", self.sock, *args], capture_output=True, text=True, check=check,
                              timeout=20, env=clean_env())

    def start(self, command: str, env: dict[str, str]) -> None:
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        unset = " ".join(f"-u {k}" for k in LEAKY)
        self.tmux("-f", "/dev/null", "new-session", "-d", "-x", "80", "-y", "24", "-s", self.name,
                  f"cd {REPO} && exec env {unset} {exports} TERM=xterm-256color {command}")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name, check=False).stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def alive(self) -> bool:
        return self.tmux("has-session", "-t", self.name, check=False).returncode == 0

    def wait_for(self, predicate, timeout: float = 25.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.2)
        pytest.fail(f"screen never matched; last screen:\n{text}")

    def wait_gone(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not self.alive(), f"still running; screen:\n{self.screen()}"

    def kill(self) -> None:
        self.tmux("kill-server", check=False)


def footer(screen: str) -> str:
    return [line for line in screen.splitlines() if line.strip()][-1]


def _env(tmp_path: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(REPO), "BITNET_TUI_SESSIONS": str(tmp_path / "sessions"),
            "BITNET_TUI_CACHE": os.environ.get("BITNET_TUI_CACHE", str(tmp_path / "cache"))}


def test_replay_in_a_real_terminal(tmux, tmp_path):
    tmux.start(f"{program()} replay {FIXTURE} --end", _env(tmp_path))
    screen = tmux.wait_for(lambda s: "fixture-h256-lr1.5e-3" in s and "palette" in s)
    lines = screen.splitlines()
    assert "REPLAY" in lines[0] and "fixture-h256-lr1.5e-3" in lines[0]
    assert "p Resume" in footer(screen) and "palette" in footer(screen)  # --end: paused at the end
    assert all(len(line) <= 80 for line in lines) and len(lines) <= 24
    tmux.keys("q")
    tmux.wait_gone()


def test_live_run_in_a_real_terminal_stops_cleanly_on_quit(tmux, tmp_path):
    tmux.start(f"{program()} run {TINY} --steps 100000", _env(tmp_path))
    screen = tmux.wait_for(lambda s: "LIVE" in s and "_h32_" in s and "palette" in s, timeout=60)
    foot = footer(screen)
    for label in ("l LR", "[ ] LR×½ ×2", "u Undo", "p Pause", "c Ckpt", "n N ⚠/⚙", "v Panel", "q Quit", "palette"):
        assert label in foot, foot
    tmux.keys("p")
    tmux.wait_for(lambda s: "PAUSED" in s)
    tmux.keys("[")
    tmux.wait_for(lambda s: "⚙ @" in s and "scale_lr" in s)
    tmux.keys("u")
    tmux.wait_for(lambda s: "undo_lr" in s)
    tmux.keys("c")
    tmux.wait_for(lambda s: "checkpoint" in s.splitlines()[2])
    tmux.keys("l")
    tmux.wait_for(lambda s: "New learning rate" in s)
    tmux.keys("5", "e", "-", "4")
    tmux.wait_for(lambda s: "→ 5e-4 from step" in s)
    tmux.keys("Enter")
    tmux.wait_for(lambda s: "set_lr" in s and "5e-4" in s.splitlines()[2])
    tmux.keys("v")
    tmux.wait_for(lambda s: "Unique tokens" in s)
    tmux.keys("n")
    tmux.wait_for(lambda s: "Alerts & interventions" in s)
    tmux.keys("p")
    tmux.wait_for(lambda s: "PAUSED" not in s)
    tmux.keys("q")
    tmux.wait_for(lambda s: "Stop it and quit?" in s)
    tmux.keys("y")
    tmux.wait_gone(timeout=40)
    from bitnet_tui.session.log.paths import list_sessions
    from bitnet_tui.session.log.reader import read_session

    logs = list_sessions(tmp_path / "sessions")
    assert len(logs) == 1
    data = read_session(logs[0])
    assert data.ended and data.end.reason == "stopped"


def test_a_dashboard_that_loses_its_terminal_ends_the_run_cleanly(tmux, tmp_path):
    tmux.start(f"{program()} run {TINY} --steps 100000", _env(tmp_path))
    tmux.wait_for(lambda s: "LIVE" in s and "_h32_" in s and "palette" in s, timeout=60)
    pane_pid = int(tmux.tmux("display-message", "-p", "-t", tmux.name, "#{pane_pid}").stdout.strip())
    tmux.kill()  # the terminal goes away: tmux sends SIGHUP to the pane's processes
    from bitnet_tui.session.log.paths import list_sessions
    from bitnet_tui.session.log.reader import read_session

    deadline = time.monotonic() + 60
    data = None
    while time.monotonic() < deadline:
        logs = list_sessions(tmp_path / "sessions")
        data = read_session(logs[0]) if logs else None
        if data is not None and data.ended:
            break
        time.sleep(0.3)
    assert data is not None and data.ended, f"no run_ended after the hangup (pane pid {pane_pid})"
    assert data.end.reason == "hangup"
    assert any(e.kind == "checkpoint" for e in data.events)
    from bitnet_tui.session.log.writer import writer_lock_held

    deadline = time.monotonic() + 20
    while writer_lock_held(logs[0]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert writer_lock_held(logs[0]) is False, "the process lingers after the hangup with its log open"


def test_terminal_size_variables_from_the_users_shell_do_not_reach_the_pane(tmux, tmp_path, monkeypatch):
    # A shell inside tmux (or a user's rc file) may export COLUMNS/LINES; Textual would then draw 200x60 in an
    # 80x24 pane: the footer below the screen, every line cut. The pane must get a clean environment.
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("LINES", "60")
    tmux.start(f"{program()} replay {FIXTURE} --end", _env(tmp_path))
    screen = tmux.wait_for(lambda s: "fixture-h256-lr1.5e-3" in s and "palette" in s)
    lines = screen.splitlines()
    assert "q Quit" in footer(screen) and "v Panel" in footer(screen)
    assert all(len(line) <= 80 for line in lines) and len(lines) <= 24
    assert lines[1].lstrip().startswith("step 600/600")
    tmux.keys("q")
    tmux.wait_gone()


def test_every_key_the_replay_footer_lists_works(tmux, tmp_path):
    tmux.start(f"{program()} replay {FIXTURE} --end", _env(tmp_path))
    screen = tmux.wait_for(lambda s: "fixture-h256-lr1.5e-3" in s and "palette" in s)
    foot = footer(screen)
    for label in ("p Resume", "1 2 3 0 speed", "g Go to", "n N ⚠/⚙", "v Panel", "q Quit", "^p palette"):
        assert label in foot, foot
    tmux.keys("Home")
    tmux.wait_for(lambda s: " 1/667 events" in s)
    tmux.keys("3")
    tmux.wait_for(lambda s: "⏸ paused (100×)" in s)
    tmux.keys("p")  # plays 60 logged seconds at 100x
    tmux.wait_for(lambda s: "end of log" in s)
    tmux.keys("Home")
    tmux.wait_for(lambda s: " 1/667 events" in s)
    tmux.keys("n")
    tmux.wait_for(lambda s: "• @50" in s)  # info: partly learned
    tmux.keys("g")
    tmux.wait_for(lambda s: "Go to step" in s)
    tmux.keys("2", "5", "0", "Enter")
    tmux.wait_for(lambda s: "step 250/600" in s and "collapsed" in s)
    tmux.keys("v")
    tmux.wait_for(lambda s: "Unique tokens" in s and "init 240 off scale" in s)
    tmux.keys("y")
    tmux.wait_for(lambda s: "log scale" in s)
    tmux.keys("C-p")
    tmux.wait_for(lambda s: "Log scale on every plot" in s or "Search for commands" in s)
    tmux.keys("Escape")
    tmux.wait_for(lambda s: "🔎" not in s and "Log scale on every plot" not in s)
    tmux.keys("q")
    tmux.wait_gone()
