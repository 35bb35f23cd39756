"""Pictures of the dashboard on fixed logs: the fixture replayed to its end, and the synthetic sweep of
:mod:`tests.dashboard.synth` (28 ternary layers, a random-init eval, a fork) at 80x24 and 120x36.

Everything on screen comes from logged values (ETA and rates from logged times), so the pictures are the same
on every run. Regenerate with ``pytest tests/dashboard/test_snapshots.py --snapshot-update`` after a
deliberate change, and look at them (``snapshot_report.html``) before committing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bitnet_tui.app.dashboard.app import make_app
from tests.dashboard import synth

FIXTURE = Path(__file__).parents[1] / "fixtures" / "collapse.jsonl"
SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])


@pytest.fixture
def logs(tmp_path):
    return synth.write_three(tmp_path / "sessions")


def showing(panel: str):
    async def run_before(pilot) -> None:
        pilot.app.show_panel(panel)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_replay_at_end(snap_compare, size):
    app = make_app("replay", session_path=FIXTURE)
    assert snap_compare(app, press=["end"], terminal_size=size)


def test_replay_at_end_alerts_tab(snap_compare):
    app = make_app("replay", session_path=FIXTURE)
    assert snap_compare(app, press=["end", "v", "v", "v", "v"], terminal_size=(80, 24))


@SIZES
def test_weights_panel(snap_compare, logs, size):
    app = make_app("replay", session_path=logs[0], start_at="end")
    assert snap_compare(app, terminal_size=size, run_before=showing("weights"))


@SIZES
def test_unique_tokens_panel(snap_compare, logs, size):
    app = make_app("replay", session_path=logs[0], start_at="end")
    assert snap_compare(app, terminal_size=size, run_before=showing("unique"))


def test_all_panels_at_120x36(snap_compare, logs):
    app = make_app("replay", session_path=logs[1], start_at="end")
    assert snap_compare(app, terminal_size=(120, 36))


@SIZES
def test_three_run_overlay(snap_compare, logs, size):
    app = make_app("compare", session_paths=logs)
    assert snap_compare(app, terminal_size=size)


def test_no_picture_depends_on_where_the_checkout_is():
    """A clean clone elsewhere (CI) draws the same pictures: no snapshot holds this checkout's path, and the
    fixture reads without a repair notice (which would name its path)."""
    from bitnet_tui.session.log.reader import read_session

    root = str(Path(__file__).resolve().parents[2])
    for svg in (Path(__file__).parent / "__snapshots__").rglob("*.svg"):
        assert root not in svg.read_text(encoding="utf-8"), svg.name
    assert read_session(Path(__file__).parents[1] / "fixtures" / "collapse.jsonl").warnings == []
