"""Keys at 80x24: the footer fits and lists only what works in this mode; every key that works is findable."""

from __future__ import annotations

from pathlib import Path

import pytest

from bitnet_tui.app.dashboard.app import Dashboard, make_app
from bitnet_tui.app.dashboard.keys import BINDINGS, PALETTE
from tests.dashboard.test_live import _IdleRun

FIXTURE = Path(__file__).parents[1] / "fixtures" / "collapse.jsonl"


def footer_keys(app: Dashboard) -> dict[str, bool]:
    """Key -> whether it is fully on screen, for every key the footer shows."""
    out = {}
    for fk in app.query("FooterKey"):
        r = fk.region
        out[fk.key] = r.width > 0 and r.x >= 0 and r.right <= app.size.width
    return out


def palette(app: Dashboard) -> dict[str, str]:
    return {c.title: c.help for c in app.get_system_commands(app.screen)}


async def _live_app(tmp_path):
    log = tmp_path / "s.jsonl"
    log.touch()
    return make_app("live", run=_IdleRun(log))


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["live", "replay", "watch"])
async def test_the_footer_at_80x24_shows_q_v_n_and_only_what_works(mode, tmp_path):
    app = await _live_app(tmp_path) if mode == "live" else make_app(mode, session_path=FIXTURE)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        keys = footer_keys(app)
        visible = {k for k, ok in keys.items() if ok}
        assert {"q", "v", "n", "N"} <= visible, keys
        assert all(keys.values()), f"cut off at 80 columns: {keys}"
        steer = {"l", "left_square_bracket", "right_square_bracket", "u", "c"}
        if mode == "live":
            assert steer | {"p"} <= visible
            assert not {"1", "g", "home"} & set(keys)  # replay's controls are not a live run's
        elif mode == "replay":
            assert {"p", "1", "2", "3", "0", "g"} <= visible and not steer & set(keys)
        else:
            assert not (steer | {"p", "1", "g"}) & set(keys)  # watch lists nothing it would ignore
            assert palette(app)["Set learning rate"] == "unavailable: watch is read-only: attach to steer"
        if mode == "live":
            app.source.run.send(None)


def test_every_key_is_in_the_footer_or_the_palette():
    in_palette = {action for action, *_ in PALETTE}
    for b in BINDINGS:
        action = b.action.split("(")[0]
        assert b.show or action in in_palette, f"{b.key} ({b.action}) is neither shown nor in the palette"
        if action in in_palette:
            helps = [h for a, _, _, h in PALETTE if a == action]
            key = b.key_display or b.key.split(",")[0]
            assert any(h.startswith(f"{key}:") or f" {key}:" in h or h.startswith(f"{key} ") for h in helps), \
                f"the palette does not name the key for {b.action}"


@pytest.mark.asyncio
async def test_n_and_N_say_they_walk_alerts_and_interventions():
    app = make_app("replay", session_path=FIXTURE)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        p = palette(app)
        assert p["Next alert or intervention"].startswith("n:")
        assert p["Previous alert or intervention"].startswith("N:")
        labels = [str(w.render()) for w in app.query("FooterLabel")]
        assert "⚠/⚙" in labels  # the header and timeline mark alerts ⚠ and interventions ⚙


@pytest.mark.asyncio
async def test_every_panel_can_be_reached_and_named(tmp_path):
    app = make_app("replay", session_path=FIXTURE, start_at="end")
    async with app.run_test(size=(80, 24)) as pilot:
        seen = []
        for _ in range(11):
            seen.append(app.current_panel)
            await pilot.press("v")
            await pilot.pause()
        assert seen == ["loss", "unique", "lr", "weights", "timeline", "samples", "grad", "metrics", "config",
                        "diseases", "system"]
        assert app.current_panel == "loss"  # round again; "All" only where 120x36 fits it
        assert "Show panel: Ternary weights" in palette(app)
