"""Issue 24: our own help screen (`?` and the palette's "Keys"): every key of the current mode, one line each,
closed with Esc or q."""

from __future__ import annotations

from pathlib import Path

import pytest

from bitnet_tui.app.dashboard.app import make_app
from bitnet_tui.app.dashboard.keyhelp import KeysScreen
from tests.dashboard.test_live import _IdleRun

FIXTURE = Path(__file__).parents[1] / "fixtures" / "collapse.jsonl"


def keys_of(app) -> dict[str, str]:
    assert isinstance(app.screen, KeysScreen)
    return dict(app.screen.lines)


@pytest.mark.asyncio
async def test_question_mark_lists_the_replay_keys_and_closes_with_q_or_escape():
    app = make_app("replay", session_path=FIXTURE, start_at="end")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        keys = keys_of(app)
        for key in ("1", "2", "0", "Home", "End", "g", "n", "N", "v", "s", "y", "w", "p, space", "q", "?"):
            assert key in keys, (key, keys)
        assert "l" not in keys and "D" not in keys and "[" not in keys  # replay steers nothing
        assert "seek the replay to a step" in keys["g"]
        await pilot.press("q")
        assert not isinstance(app.screen, KeysScreen) and app.is_running  # q closed the help, not the app
        await pilot.press("question_mark")
        await pilot.press("escape")
        assert not isinstance(app.screen, KeysScreen)


@pytest.mark.asyncio
async def test_the_palettes_keys_entry_opens_it():
    app = make_app("replay", session_path=FIXTURE, start_at="end")
    async with app.run_test(size=(80, 24)) as pilot:
        entries = [c for c in app.get_system_commands(app.screen) if c.title == "Keys"]
        assert len(entries) == 1  # Textual's own key panel is not offered beside ours
        entries[0].callback()
        await pilot.pause()
        assert isinstance(app.screen, KeysScreen)


@pytest.mark.asyncio
async def test_live_and_attach_list_the_steering_keys(tmp_path):
    for detachable, mode in ((False, "live"), (True, "attach")):
        app = make_app("live", run=_IdleRun(tmp_path / "x.jsonl", detachable=detachable))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("question_mark")
            keys = keys_of(app)
            assert app.screen.mode == mode
            for key in ("l", "[", "]", "u", "p, space", "c", "e", "D", "W", "Z", "U", "q", "Ctrl+C"):
                assert key in keys, (key, keys)
            assert "1" not in keys and "g" not in keys  # no playback in a live run
            assert ("detach" in keys["q"]) == detachable
            await pilot.press("escape")


def test_help_screen_at_80x24(snap_compare):
    app = make_app("replay", session_path=FIXTURE)
    assert snap_compare(app, press=["end", "question_mark"], terminal_size=(80, 24))
