"""Issue 25, item 5: a watched log replaced by another (bigger) file at the same path, or truncated, is never read
on from the old byte offset. The follower checks device and inode and the size as ``tail -F`` does; ``watch``
says so on screen and shows the new file from its start, never two runs mixed in one view."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bitnet_tui.app.dashboard.app import make_app
from bitnet_tui.app.dashboard.panels import render_header
from bitnet_tui.session.log.errors import SessionError
from bitnet_tui.session.log.follow import Follower
from tests.conftest import wait_for

FIXTURE = Path(__file__).parents[1] / "fixtures" / "collapse.jsonl"


def other_run(lines: list[bytes], name: str, n: int) -> bytes:
    """The fixture's first ``n`` lines under another run name, ending with run_ended: another run's log."""
    head = json.loads(lines[0])
    head["run_name"] = name
    end = {"kind": "run_ended", "step": 5, "time": head["time"] + 1, "reason": "finished"}
    return b"".join([json.dumps(head).encode() + b"\n", *lines[1:n], json.dumps(end).encode() + b"\n"])


def replace(path: Path, data: bytes) -> None:
    tmp = path.with_name("new.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # same path, new inode


def test_the_follower_refuses_to_read_a_replaced_file_from_the_old_offset(tmp_path):
    lines = FIXTURE.read_bytes().splitlines(keepends=True)
    log = tmp_path / "run.jsonl"
    log.write_bytes(b"".join(lines[:50]))
    f = Follower(log)
    assert len(f.poll()) == 50
    replace(log, other_run(lines, "other-run", 400))  # bigger than what was read
    with pytest.raises(SessionError, match="was replaced by another file"):
        f.poll()
    fresh = Follower(log).poll()
    assert fresh[0].run_name == "other-run" and fresh[-1].kind == "run_ended"


def test_the_follower_refuses_a_truncated_file(tmp_path):
    lines = FIXTURE.read_bytes().splitlines(keepends=True)
    log = tmp_path / "run.jsonl"
    log.write_bytes(b"".join(lines[:50]))
    f = Follower(log)
    f.poll()
    with open(log, "r+b") as out:
        out.truncate(len(lines[0]) + 10)
    with pytest.raises(SessionError, match="shrank"):
        f.poll()


@pytest.mark.asyncio
async def test_watch_restarts_on_the_new_file_and_says_so(tmp_path):
    lines = FIXTURE.read_bytes().splitlines(keepends=True)
    log = tmp_path / "run.jsonl"
    log.write_bytes(b"".join(lines[:300]))
    app = make_app("watch", session_path=log, stale_after=60)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.feed.events == 300, 10, "the first run's 300 events")
        first = app.feed.run_name
        replace(log, other_run(lines, "another-run", 500))
        await wait_for(pilot, lambda: app.feed.ended is not None, 10, "the new file's run_ended")
        assert first != "another-run" and app.feed.run_name == "another-run"
        assert app.feed.events == 501  # the new file from its start (500 lines, run_ended): none of the first run's
        header = render_header(app.feed, app.mode, app._notice()).plain
        assert "the log was replaced; following the new file from its start" in header
