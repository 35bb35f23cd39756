"""Issue 25, item 11 (c, d): what makes the header's figures stale is said where it is never dropped.

(c) ``watch``'s "no new events for N s (crashed?)" was the lowest-priority part of the second line and vanished
at 100 columns; it is on the first line now, at 80 and 100 columns alike. (d) ``attach`` to a run stopped with
SIGSTOP went on showing LIVE and a tok/s figure; the attached header now says NOT ANSWERING N s once the run's
socket has not answered a ping for ``silent_after_s``, without the speed and ETA, and goes back when it answers.
"""

from __future__ import annotations

import io
import json
import os
import signal
from pathlib import Path

import pytest
from rich.console import Console

from bitnet_tui.app.dashboard.app import make_app
from bitnet_tui.app.dashboard.panels import HeaderBar
from bitnet_tui.session.control.remote import RemoteRun
from tests.conftest import wait_for
from tests.hardening.served import served

FIXTURE = Path(__file__).parents[1] / "fixtures" / "collapse.jsonl"
NAME = "2026-11-24T10-31-05_h256_lr1.5e-3_wd0.1_seed1"


def a_running_log(tmp_path: Path, n: int = 300) -> Path:
    """The fixture's first ``n`` lines (no run_ended) under a real-length session name."""
    lines = FIXTURE.read_bytes().splitlines(keepends=True)
    head = json.loads(lines[0])
    head["run_name"] = NAME
    log = tmp_path / f"{NAME}.jsonl"
    log.write_bytes(json.dumps(head).encode() + b"\n" + b"".join(lines[1:n]))
    return log


def shown(app) -> str:
    """The header as drawn on the screen, at the app's width."""
    header = app.query_one(HeaderBar)
    console = Console(width=header.content_region.width, record=True, file=io.StringIO())
    console.print(header.content)
    return console.export_text()


@pytest.mark.asyncio
@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
async def test_watch_says_the_log_went_silent_at_80_and_100_columns(tmp_path, size):
    log = a_running_log(tmp_path)
    app = make_app("watch", session_path=log, stale_after=0.5)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.feed.events == 300, 10, "the log's events")
        await wait_for(pilot, lambda: "(crashed?)" in shown(app), 10, f"the silence notice at {size[0]} columns")
        text = shown(app)
        assert "no new events for" in text and "tok/s" not in text and "ETA" not in text, text


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_attach_says_a_stopped_run_is_not_answering_and_drops_its_speed(tmp_path):
    log = a_running_log(tmp_path)
    with served(log.with_suffix(".sock"), tmp_path / "applied.txt", log=log) as proc:
        remote = RemoteRun(log, heartbeat_s=0.3, silent_after_s=1.0)
        app = make_app("live", run=remote)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.feed.events == 300, 10, "the log's events")
            await pilot.pause(0.5)
            assert "tok/s" in shown(app) and "NOT ANSWERING" not in shown(app), shown(app)
            os.kill(proc.pid, signal.SIGSTOP)
            await wait_for(pilot, lambda: "NOT ANSWERING" in shown(app), 10, "NOT ANSWERING")
            text = shown(app)
            assert "tok/s" not in text and "ETA" not in text and " LIVE " in text, text
            os.kill(proc.pid, signal.SIGCONT)
            await wait_for(pilot, lambda: "NOT ANSWERING" not in shown(app), 10, "the answer after SIGCONT")
            assert "tok/s" in shown(app)
            remote.detach()
