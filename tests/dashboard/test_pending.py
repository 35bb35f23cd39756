"""Issue 24: a command sent while a step is in progress shows as pending until the run applies it."""

from __future__ import annotations

import threading

import pytest

from bitnet_tui.app.dashboard.app import make_app
from bitnet_tui.app.dashboard.panels import HeaderBar
from bitnet_tui.session.log.events import Alert, Intervention, RunEnded
from tests.dashboard.test_progress import midway
from tests.dashboard.test_round3 import shown


class _Quiet:
    """A run (the RunHandle seam) that keeps what it is sent and answers nothing until the test says so."""

    run_name = "quiet"
    detachable = False

    def __init__(self, path) -> None:
        self.session_path = path
        self.sent: list = []
        self._end = threading.Event()

    def subscribe(self, fn) -> None:
        pass

    def send(self, cmd) -> None:
        self.sent.append(cmd)
        if type(cmd).wire == "stop":
            self._end.set()

    def checkpoint_steps(self) -> list[int]:
        return []

    def run(self) -> None:
        self._end.wait(30)


def line3(app) -> str:
    return shown(app.query_one(HeaderBar)).splitlines()[2]


@pytest.mark.asyncio
async def test_a_sent_command_is_pending_until_the_run_answers(tmp_path):
    run = _Quiet(tmp_path / "q.jsonl")
    app = make_app("live", run=run)
    async with app.run_test(size=(80, 24)) as pilot:
        app.feed_events(midway(40))
        await pilot.press("left_square_bracket", "c")
        await pilot.pause()
        assert [type(c).wire for c in run.sent] == ["scale_lr", "checkpoint"]
        assert "pending until the next step: scale_lr 0.5, checkpoint" in line3(app), line3(app)
        app.feed_events([Intervention(step=41, time=2e9, action="scale_lr", old=1e-3, new=5e-4, source="dashboard")])
        await pilot.pause()
        assert "pending until the next step: checkpoint" in line3(app), line3(app)
        await pilot.press("left_square_bracket")
        app.feed_events([Alert(step=41, time=2e9, level="warning", code="command",
                               message="refused scale_lr: the LR would leave its range")])
        await pilot.pause()
        assert "scale_lr" not in line3(app).split("pending")[-1].split("  ")[0], line3(app)
        app.feed_events([RunEnded(step=41, time=2e9, reason="stopped")])
        await pilot.pause()
        assert "pending" not in line3(app), line3(app)
        run._end.set()
