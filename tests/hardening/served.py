"""A run's control socket served by a real process of its own, to be stopped (SIGSTOP) and continued by a test.

The process serves :class:`~bitnet_tui.instrument.server.ControlServer` for a stand-in run that appends the wire
name of every command it is handed to a file, one a line (what the run applied, in order), and, given a log,
holds its writer lock as a live run does (so a follower does not take it for crashed). No torch: it starts in
well under a second.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.hardening.hostile import ROOT, cli_env

SERVE = r"""
import fcntl, os, sys, time
from bitnet_tui.instrument.server import ControlServer

if len(sys.argv) > 3:
    lock = os.open(sys.argv[3], os.O_RDONLY)
    fcntl.flock(lock, fcntl.LOCK_EX)

class Run:
    run_name, step_count, paused = "served", 0, False

    def send(self, cmd):
        with open(sys.argv[2], "a") as f:
            f.write(type(cmd).wire + "\n")

server = ControlServer(Run(), sys.argv[1])
print("serving", flush=True)
time.sleep(120)
"""


@contextlib.contextmanager
def served(sock: Path, applied: Path, log: Path | None = None) -> Iterator[subprocess.Popen[str]]:
    """A process serving ``sock``; ``applied`` lists the commands it took; ``log``: a log whose writer lock it holds.
    Killed (continued first) at the end."""
    argv = [sys.executable, "-c", SERVE, str(sock), str(applied), *([str(log)] if log is not None else [])]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=cli_env())
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "serving"
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(10)


def applied_commands(applied: Path, expect: int, within: float = 5.0) -> list[str]:
    """The commands applied so far, once there are ``expect`` of them (or ``within`` seconds have passed)."""
    deadline = time.monotonic() + within
    while True:
        got = applied.read_text().split() if applied.exists() else []
        if len(got) >= expect or time.monotonic() > deadline:
            return got
        time.sleep(0.05)
