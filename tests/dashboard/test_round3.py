"""Issue 24, what a new user hit at 80x24: each test names the defect it holds down and fails before its fix."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import pytest

from bitnet_tui.app.dashboard.app import make_app
from bitnet_tui.app.dashboard.axes import Axes, View, log_ticks, render_text
from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.app.dashboard.figures import draw_loss, draw_unique
from bitnet_tui.app.dashboard.panels import HeaderBar, render_samples
from bitnet_tui.app.dashboard.weights import header as weights_header
from bitnet_tui.session.log.events import EvalDone
from bitnet_tui.session.log.reader import read_session
from tests.conftest import wait_for
from tests.dashboard import synth

FIXTURE = Path(__file__).parents[1] / "fixtures" / "collapse.jsonl"


@pytest.fixture
def logs(tmp_path) -> list[Path]:
    return synth.write_three(tmp_path / "sessions")


def feed_of(path: Path, upto: int | None = None) -> Feed:
    f = Feed()
    f.apply_all(e for e in read_session(path).stream() if upto is None or e.step <= upto)
    return f


def plot(draw, feed: Feed, view: View, width: int = 76, height: int = 12) -> str:
    from textual_plotext.plot import Plot

    ax = Axes(log_y=view.log_y)
    assert draw(feed, ax, view) is None
    return render_text(ax, Plot(), width, height)


def shown(widget) -> str:
    from rich.console import Console

    console = Console(width=widget.content_region.width, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def y_labels(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^\s*([0-9][0-9.e-]*)┤", text, re.M)]


# --------------------------------------------------------------------------- plots


def test_log_scale_keeps_y_tick_labels(logs):
    """`y` on a loss between 4 and 6.2 left one 1-2-5 value (5) or none: every label had gone."""
    f = feed_of(logs[0])
    assert len(y_labels(plot(draw_loss, f, View(log_y=False)))) >= 2
    labels = y_labels(plot(draw_loss, f, View(log_y=True)))
    assert len(labels) >= 2, labels
    assert len(log_ticks(5.5, 6.2, 4)) >= 2 and log_ticks(1e-3, 10, 5) == [1e-3, 1e-2, 0.1, 1.0, 10.0]


def test_a_single_eval_has_its_own_step_on_the_x_axis_only(logs):
    """One eval at step 0 read `-1 0 1` on the Unique panel's x axis."""
    text = plot(draw_unique, feed_of(logs[0], upto=0), View())
    axis = text.rstrip().splitlines()[-1].split()
    assert axis == ["0"], axis


def test_zero_fraction_heatmap_is_not_stretched_to_full_contrast():
    """0.31-0.32 was shaded from darkest to brightest: the scale now spans at least a fifth of the value."""
    from bitnet_tui.app.dashboard.weights import _levels

    levels, lo, hi = _levels([[0.31, 0.315, 0.32]], relative=False)
    assert hi - lo >= 0.2 * 0.32 - 1e-12 and lo < 0.31 and hi > 0.32
    assert max(levels[0]) - min(levels[0]) < 0.25  # a 0.01 difference is a small shade step
    wide, lo2, hi2 = _levels([[0.0, 0.04, 0.08]], relative=False)
    assert (lo2, hi2) == (0.0, 0.08) and wide[0][-1] == 1.0  # a real spread keeps its full contrast


def test_weights_header_states_the_shading_range(logs):
    f = feed_of(logs[0])
    head = weights_header(f, View(), 76).plain
    assert re.search(r"zero \d\.\d+–\d\.\d+", head), head


# --------------------------------------------------------------------------- samples


def test_samples_read_as_prose():
    """A newline showed as `\\x0a` (wrapped mid-escape), which made generated text unreadable."""
    f = feed_of(FIXTURE)
    e = f.last_eval
    assert e is not None
    f.apply(EvalDone(step=e.step + 1, time=e.time + 1, unique_tokens=5, generated_tokens=64, distinct2=0.5,
                     top_share=0.3, top_tokens=(("\n", 9), (" the", 4)), samples=("one day\nthe cat  sat\tdown",),
                     prompts=("Once",), state=e.state, val_loss=3.0))
    text = render_samples(f).plain
    line = next(ln for ln in text.splitlines() if ln.startswith("1."))
    assert "\\x0a" not in text and "\\x09" not in text
    assert "one day↵ the cat  sat⇥ down" in line and "␣" not in line
    assert "↵ 9" in text and "␣the 4" in text  # tokens keep their visible whitespace marks


# --------------------------------------------------------------------------- keys


@pytest.mark.asyncio
async def test_weights_panel_scrolls_from_the_keys(logs):
    """The border said "scroll" but Down, PageDown and End did nothing at 80x24."""
    app = make_app("replay", session_path=logs[0], start_at="end")
    async with app.run_test(size=(80, 24)) as pilot:
        app.show_panel("weights")
        await pilot.pause()
        scroll = app.query_one("#w-scroll")
        assert scroll.max_scroll_y > 0 and scroll.scroll_y == 0
        await pilot.press("down")
        await wait_for(pilot, lambda: scroll.scroll_y >= 1, 5, "Down to scroll")
        await pilot.press("pagedown")
        await pilot.press("end")
        await wait_for(pilot, lambda: scroll.scroll_y == scroll.max_scroll_y, 5, "End to reach the last layer")
        await pilot.press("home")
        await wait_for(pilot, lambda: scroll.scroll_y == 0, 5, "Home to the first layer")
        app.show_panel("loss")
        await pilot.pause()
        assert not scroll.has_focus  # another tab takes the keys back (End jumps to the log's end again)


@pytest.mark.asyncio
async def test_home_at_max_speed_stays_at_the_start():
    """At speed 0 (max), Home or `g 1000` jumped straight back to the end on the next tick."""
    app = make_app("replay", session_path=FIXTURE, speed=math.inf)
    async with app.run_test(size=(80, 24)) as pilot:
        p = app.source.player
        await wait_for(pilot, lambda: p.at_end, 10, "the replay to reach its end")
        await pilot.press("home")
        await pilot.pause(1.2)  # two ticks
        assert not p.at_end and app.feed.step == p.events[0].step
        assert "paused" in app._notice().plain


@pytest.mark.asyncio
async def test_header_goes_on_under_a_dialog():
    """With a dialog open the header froze (step 122 shown, the log at 144)."""
    from bitnet_tui.app.dashboard.dialogs import StepDialog

    app = make_app("replay", session_path=FIXTURE, speed=20.0)
    async with app.run_test(size=(80, 24)) as pilot:
        header = app.query_one(HeaderBar)
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, StepDialog), 5, "the step dialog")
        opened = app.feed.step
        await wait_for(pilot, lambda: app.feed.step >= opened + 30, 20, "the replay to go on")

        def header_step() -> int:
            m = re.search(r"step (\d+)/", shown(header))
            return int(m.group(1)) if m else -1

        await wait_for(pilot, lambda: header_step() >= opened + 30, 10, "the header to follow under the dialog")
        assert isinstance(app.screen, StepDialog)  # still open: the header went on beneath it


@pytest.mark.asyncio
async def test_footer_says_resume_while_paused():
    """Paused, the footer still offered `p Pause`."""
    app = make_app("replay", session_path=FIXTURE, start_at=100)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()

        def footer() -> set[str]:
            return {b.binding.description for b in app.active_bindings.values() if b.binding.show and b.enabled}

        assert "Resume" in footer() and "Pause" not in footer()
        await pilot.press("p")
        await wait_for(pilot, lambda: "Pause" in footer(), 5, "the footer to offer Pause")
        assert "Resume" not in footer() and app.source.player.playing
