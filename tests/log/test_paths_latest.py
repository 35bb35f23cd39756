"""``latest`` is the session started last; two started in the same second are an error naming both, never a
guess (``ctl latest`` must not steer the wrong run)."""

from __future__ import annotations

import os

import pytest

from bitnet_tui.session.log.errors import SessionError
from bitnet_tui.session.log.paths import resolve_session


def touch(d, name: str, mtime: float) -> None:
    p = d / f"{name}.jsonl"
    p.write_text('{"kind": "run_started"}\n')
    os.utime(p, (mtime, mtime))


def test_latest_is_the_last_started_not_the_last_written(tmp_path):
    touch(tmp_path, "2026-12-03T10-00-00_a", 2_000_000_000)  # an older run still writing
    touch(tmp_path, "2026-12-03T11-00-00_b", 1_900_000_000)
    assert resolve_session("latest", tmp_path).name == "2026-12-03T11-00-00_b.jsonl"


def test_two_runs_started_in_the_same_second_make_latest_an_error(tmp_path):
    touch(tmp_path, "2026-12-03T11-00-00_h128_adam", 1_900_000_000)
    touch(tmp_path, "2026-12-03T11-00-00_h128_adamw", 1_900_000_001)
    with pytest.raises(SessionError, match="latest is ambiguous: 2 sessions started at 2026-12-03T11-00-00"):
        resolve_session("latest", tmp_path)
    assert resolve_session("2026-12-03T11-00-00_h128_adamw", tmp_path).name.endswith("adamw.jsonl")
