"""Issue 24: every ternary layer at once at 80x24, and the Grad, Metrics and Config panels in the 160-column
grid."""

from __future__ import annotations

import pytest

from bitnet_tui.app.dashboard.app import make_app
from tests.dashboard import synth


@pytest.fixture
def log(tmp_path):
    return synth.write_run(tmp_path, "2026-01-01T10-00-00_h64_lr3e-3")


@pytest.mark.asyncio
async def test_every_layer_shows_at_80x24(log):
    """At 80x24 the weights rows showed 12 of the 28 layers; the rest needed scrolling."""
    app = make_app("replay", session_path=log, start_at="end")
    async with app.run_test(size=(80, 24)) as pilot:
        app.show_panel("weights")
        await pilot.pause()
        every = app.query_one("#w-all")
        assert every.region.height >= 2 and every.region.y + every.region.height <= 24
        lines = every.render().plain.splitlines()
        for title, line in zip(("flip now", "zero now"), lines):
            assert line.startswith(title), lines
            cells = line[len(title):].replace("│", "").strip()
            assert len(cells) == 28 and set(cells) <= set("·░▒▓█"), line  # one cell per layer, all of them
            assert line.count("│") == 3  # four blocks


@pytest.mark.asyncio
@pytest.mark.parametrize(("size", "nine"), [((160, 48), True), ((120, 36), False)])
async def test_the_160_column_grid_has_grad_metrics_and_config(log, size, nine):
    app = make_app("replay", session_path=log, start_at="end")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert app.current_panel == "all"
        for key in ("loss", "unique", "lr", "weights", "timeline", "samples"):
            assert app.query_one(f"#p-{key}").region.area > 0, key
        for key in ("grad", "metrics", "config"):
            assert (app.query_one(f"#p-{key}").region.area > 0) == nine, key
        assert app.query_one("#p-diseases").region.area == 0
