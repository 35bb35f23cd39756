"""Pictures of the dashboard replaying the fixed fixture log, jumped to its end.

Everything on screen comes from logged values (ETA and rates from logged times),
so the pictures are the same on every run. Regenerate with
``pytest tests/test_snapshots.py --snapshot-update`` after a deliberate change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bitnet_tui.dashboard.app import make_app

FIXTURE = Path(__file__).parents[1] / "fixtures" / "collapse.jsonl"


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_replay_at_end(snap_compare, size):
    app = make_app("replay", session_path=FIXTURE)
    assert snap_compare(app, press=["end"], terminal_size=size)


def test_replay_at_end_alerts_tab(snap_compare):
    app = make_app("replay", session_path=FIXTURE)
    assert snap_compare(app, press=["end", "v", "v", "v", "v"], terminal_size=(80, 24))
