"""What the control tests share: a run that records what it is sent, and a raw exchange with a socket."""

from __future__ import annotations

import json
from pathlib import Path

from bitnet_tui.session.control.client import exchange


class RecordingRun:
    """The smallest thing a ControlServer can serve: it keeps every command it is sent, in order."""

    def __init__(self, run_name: str = "r", step_count: int = 0, paused: bool = False):
        self.run_name, self.step_count, self.paused = run_name, step_count, paused
        self.sent: list = []

    def send(self, cmd) -> None:
        self.sent.append(cmd)


def reply_to(path: Path, payload: bytes) -> dict:
    """Send ``payload`` byte for byte (no client-side checks) and decode the server's one-line answer."""
    return json.loads(exchange(path, payload).split(b"\n")[0])
