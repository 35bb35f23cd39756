"""Issue 15, panel by panel: what a person reads at 80x24 and 120x36, on logs written the way runs write them.

Each test names the defect it holds down; each fails on the dashboard before its fix.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import pytest
from rich.text import Text

from bitnet_tui.app.dashboard.app import make_app
from bitnet_tui.app.dashboard.axes import DIM, Axes, View, nice_ticks, render_text
from bitnet_tui.app.dashboard.dialogs import LRDialog, lr_outlook, lr_preview
from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.app.dashboard.figures import draw_loss, draw_lr, draw_unique
from bitnet_tui.app.dashboard.header import render_header
from bitnet_tui.app.dashboard.panels import Timeline, config_lines
from bitnet_tui.app.dashboard.plots import FeedPlot, GradPlot, LossPlot, UniquePlot
from bitnet_tui.app.dashboard.weights import WeightsPanel
from bitnet_tui.session.log.events import Intervention, RunStarted, StepDone
from bitnet_tui.session.log.reader import read_session
from tests.conftest import wait_for
from tests.dashboard import synth

FIXTURE = Path(__file__).parents[1] / "fixtures" / "collapse.jsonl"


@pytest.fixture
def logs(tmp_path) -> list[Path]:
    return synth.write_three(tmp_path / "sessions")


def feed_of(path: Path) -> Feed:
    f = Feed()
    f.apply_all(read_session(path).stream())
    return f


def plot_text(draw, feed: Feed, view: View | None = None, width: int = 80, height: int = 20) -> tuple[Axes, str]:
    from textual_plotext.plot import Plot

    view = view or View()
    ax = Axes(log_y=view.log_y)
    assert draw(feed, ax, view) is None
    return ax, render_text(ax, Plot(), width, height)


# --------------------------------------------------------------------------- 2. the weights panel


@pytest.mark.asyncio
async def test_weights_panel_shows_every_layer_by_block_and_projection_and_scrolls(logs):
    app = make_app("replay", session_path=logs[0], start_at="end")
    async with app.run_test(size=(80, 24)) as pilot:
        app.show_panel("weights")
        await pilot.pause()
        panel = app.query_one(WeightsPanel)
        rows = panel.table_text().splitlines()
        assert len(rows) == 28  # every layer, not the first and last few
        names = [r.split()[0] for r in rows]
        assert names[:7] == ["0.attn.q", "0.attn.k", "0.attn.v", "0.attn.o", "0.ffn.gate", "0.ffn.up", "0.ffn.down"]
        assert names[-1] == "3.ffn.down" and len(set(names)) == 28
        assert all(any(c in r for c in "░▒▓█") for r in rows)  # the history as a picture
        scroll = app.query_one("#w-scroll")
        assert scroll.max_scroll_y > 0  # 28 rows do not fit 24 lines: the panel scrolls
        head = app.query_one("#w-head").render().plain
        assert "flip" in head and "zero" in head and "scale" in head and "rms" in head
        summary = shown(app.query_one("#w-summary"))
        assert "28 ternary layers" in summary and "norm |g| 0.7" in summary and "embed rms 1.05" in summary
        assert "÷" in summary  # the ternary scale's fall since its peak
        await pilot.press("w")  # the map switches to scale and latent RMS, each relative to its peak
        await pilot.pause()
        assert "scale÷peak" in app.query_one("#w-head").render().plain


@pytest.mark.asyncio
async def test_weights_rows_tell_layers_apart_in_the_120x36_grid(logs):
    app = make_app("replay", session_path=logs[0], start_at="end")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.current_panel == "all" and app.query_one("#p-weights").region.width < 45
        rows = app.query_one(WeightsPanel).table_text().splitlines()
        names = [r.split()[0] for r in rows]
        assert len(set(names)) == 28 and not any(n.startswith("block") or "…" in n for n in names)


def test_layer_history_keeps_scale_and_rms_and_the_snapshot_extras(logs):
    f = feed_of(logs[0])
    assert f.layers.names[3] == "0.attn.o"
    cols, starts = f.layers.columns("rms", 10)
    assert len(cols) == 10 and starts[0] == 0 and all(math.isfinite(v) for v in cols[-1])
    assert f.norm_gain.last_y == pytest.approx(0.7) and f.embed_norm.last_y == pytest.approx(1.05)


# --------------------------------------------------------------------------- 3. unique tokens, log scale


def test_unique_axis_spans_the_learning_run_and_marks_the_init_value(logs):
    f = feed_of(logs[0])
    ax, text = plot_text(draw_unique, f)
    top = ax.ylim[1]
    assert 15.36 <= top < 30  # recent values (2-20) and the thresholds (5, 10, 15) get the rows
    assert any("init 120" in note for note, _ in ax.notes) and "init 120" in text
    ax_log, _ = plot_text(draw_unique, f, View(log_y=True))
    assert ax_log.ylim == (None, None) and max(y for ln in ax_log.lines for y in ln.ys) == 120


@pytest.mark.asyncio
async def test_y_switches_every_plot_to_log_scale(logs):
    app = make_app("replay", session_path=logs[0], start_at="end")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        plots = list(app.query(FeedPlot))
        assert len(plots) >= 6  # loss, unique, lr, grad and the user's metrics
        assert all(p.axes is not None and p.axes.log_y for p in plots)
        text = app.query_one(UniquePlot).build_text(80, 18)
        assert re.search(r"100┤|50┤", text)  # the init value is on the log axis
        await pilot.press("y")
        await pilot.pause()
        assert not any(p.axes.log_y for p in app.query(FeedPlot))


# --------------------------------------------------------------------------- 6. header, footer, timeline, ticks


def test_header_fits_80_columns_and_keeps_what_matters(logs):
    f = feed_of(logs[1])
    head = render_header(f, "replay", Text("end of log  115/115 events"), width=80)
    lines = head.plain.split("\n")
    assert len(lines) == 3 and all(len(line) <= 80 for line in lines)
    assert "recovered" in lines[0] and "h64_lr1e-3" in lines[0]
    assert "step 300/300" in lines[1] and "lr 5.34e-5" in lines[1] and "end of log" in lines[1]
    assert "…" not in lines[1]  # items are dropped whole (the device first), never cut mid-word


def shown(widget) -> str:
    """What a Static-like widget shows at its current width, as plain text."""
    from rich.console import Console

    console = Console(width=widget.content_region.width, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


@pytest.mark.asyncio
async def test_timeline_shows_new_lr_values_and_no_dashes_at_80x24(logs):
    app = make_app("replay", session_path=logs[0], start_at="end")
    async with app.run_test(size=(80, 24)) as pilot:
        app.show_panel("timeline")
        await pilot.pause()
        timeline = app.query_one(Timeline)
        assert timeline.row_count == len(app.feed.timeline) == 13
        text = shown(timeline._body)
        assert re.search(r"150 ⚙ set_lr +4\.91e-4 \(was 1\.677e-3\)", text)  # the new LR first, one number format
        assert re.search(r"150 ⚙ checkpoint +by dashboard", text)
        assert "- → -" not in text and "None" not in text
        assert "step00000160.pt (kept)" in text
        head = render_header(app.feed, "replay", width=80).plain
        assert "⚙ @150 checkpoint" in head and "→" not in head.split("⚙")[1]


def test_ticks_are_whole_steps_and_short_numbers():
    assert nice_ticks(1, 599, 4, integer=True) == [200.0, 400.0]
    assert nice_ticks(0, 0.0015312, 4) == [0.0, 0.0005, 0.001, 0.0015]
    f = Feed()
    f.apply_all(read_session(FIXTURE).stream())
    _, text = plot_text(draw_lr, f, width=60, height=14)
    axis = text.splitlines()[-1].split()
    assert axis and all(re.fullmatch(r"\d+", t) for t in axis)  # no "150.5"
    labels = re.findall(r"^\s*([0-9.e-]+)┤", text, re.M)
    assert labels and all(len(x) <= 6 for x in labels)  # "1.5e-3", never "0.00414257"
    assert "1e-3" in labels or "1.5e-3" in labels


def test_a_one_point_plot_draws_its_point():
    f = Feed()
    f.apply(RunStarted(step=0, time=1.0, schema=2, run_name="r", config={}, ln_vocab=6.0, unigram_entropy=4.0))
    f.apply(StepDone(step=1, time=2.0, loss=5.5, lr=1e-3, grad_norm=1.0))
    for draw in (draw_loss, draw_lr):
        _, text = plot_text(draw, f, View(ema=0.0), width=40, height=12)
        assert "●" in text


def test_eta_does_not_jump_after_a_pause():
    f = Feed()
    f.apply(RunStarted(step=0, time=0.0, schema=2, run_name="r", config={}, total_steps=1000))
    for s in range(1, 101):
        f.apply(StepDone(step=s, time=s * 0.1, loss=1.0, lr=1e-3, tokens_per_s=100.0))
    before = f.eta_s()
    f.apply(Intervention(step=100, time=10.05, action="pause", old="running", new="paused", source="dashboard"))
    f.apply(Intervention(step=100, time=310.0, action="resume", old="paused", new="running", source="dashboard"))
    f.apply(StepDone(step=101, time=310.1, loss=1.0, lr=1e-3, tokens_per_s=100.0))
    after = f.eta_s()
    assert before == pytest.approx(90.0, rel=0.02)
    assert after is not None and after == pytest.approx(89.9, rel=0.05)  # five minutes paused change nothing


# --------------------------------------------------------------------------- 8. a fork's history


def test_a_fork_draws_its_parents_history_dimmed(logs):
    app_feed = make_app("replay", session_path=logs[1], start_at="end").source.feed
    assert isinstance(app_feed.history, Feed) and app_feed.history.step == 200
    for draw in (draw_loss, draw_unique, draw_lr):
        ax, _ = plot_text(draw, app_feed)
        dim = [ln for ln in ax.lines if ln.color == DIM and ln.legend and ln.xs]
        assert dim and max(dim[0].xs) <= 200 and min(dim[0].xs) < 100
        assert ("parent ≤200", DIM) in ax.legend


@pytest.mark.asyncio
async def test_watch_follows_a_rewind_into_the_fork_with_its_history(tmp_path):
    d = tmp_path / "sessions"
    parent = synth.events("2026-01-01T10-00-00_parent", steps=300)
    parent = [e for e in parent if e.step <= 200 and e.kind != "run_ended"]
    from bitnet_tui.session.log.events import RunEnded

    ppath = synth.write(d / "2026-01-01T10-00-00_parent.jsonl",
                        parent + [RunEnded(step=200, time=synth.t(200, 0.2), reason="rewound")])
    app = make_app("watch", session_path=ppath)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.feed.ended is not None, 10, "the parent's end")
        synth.write_run(d, "2026-01-01T10-05-00_child", lr=1e-3,
                        parent={"session": str(ppath), "name": ppath.stem, "step": 200, "relation": "fork"})
        await wait_for(pilot, lambda: app.feed.run_name.endswith("_child"), 15, "the fork")
        await wait_for(pilot, lambda: isinstance(app.feed.history, Feed), 5, "the parent's history")
        await pilot.pause(1.2)
        loss = app.query_one(LossPlot)
        loss.update_from(app.feed, force=True)
        assert ("parent ≤200", DIM) in loss.axes.legend


# --------------------------------------------------------------------------- 1. the LR dialog


def test_the_lr_dialog_says_what_a_typed_lr_does():
    f = Feed()
    f.apply(RunStarted(step=0, time=0.0, schema=2, run_name="r", total_steps=1000,
                       config={"train": {"lr": 1.5e-3, "steps": 1000, "warmup_steps": 100}}))
    f.apply(StepDone(step=10, time=1.0, loss=5.0, lr=1.65e-4))
    assert "warming up toward 1.5e-3 at step 99" in lr_outlook(f)
    assert "×2, ×½" in lr_outlook(f)
    assert lr_preview(f, 5e-4).startswith("→ 5e-4 from step 11 (×3.03 the LR now)")
    assert "held through warmup to step 99, then decaying below it" in lr_preview(f, 5e-4)
    f.apply(StepDone(step=500, time=2.0, loss=4.0, lr=8e-4))
    assert "never exceeded later" in lr_preview(f, 5e-4)


@pytest.mark.asyncio
async def test_the_lr_dialog_previews_the_typed_value(logs):
    app = make_app("replay", session_path=logs[0], start_at=10)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(LRDialog(app.feed))
        await pilot.pause()
        await pilot.press(*"5e-4")
        await pilot.pause()
        assert "→ 5e-4 from step 11" in str(app.screen.query_one("#lr-preview").render())


# --------------------------------------------------------------------------- what people expect


@pytest.mark.asyncio
async def test_grad_norm_config_and_user_metrics_have_panels(logs):
    app = make_app("replay", session_path=logs[0], start_at="end")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        grad = app.query_one(GradPlot)
        assert grad.axes is not None and ("clip 1", "red") in grad.axes.legend
        assert any(label.startswith("grad norm (EMA 0.9)") for label, _ in grad.axes.legend)
        app.show_panel("metrics")
        await pilot.pause()
        assert sorted(app.query_one("#metrics").names) == ["accuracy", "eval_acc", "ppl_gap"]
        app.show_panel("config")
        await pilot.pause()
        text = config_lines(app.feed).plain
        assert "train.warmup_steps" in text and "diag.detector.collapse_share" in text
        assert "[bold]literal[/bold] \\x1b[31mred" in text  # shown literally: no markup, no escape codes
        assert "--lr 0.003" in text


@pytest.mark.asyncio
async def test_s_smooths_the_loss_with_an_ema_and_n_walks_the_timeline_of_a_watched_run(logs):
    app = make_app("watch", session_path=logs[0])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.feed.ended is not None, 10, "the log")
        app.refresh_panels(force=True)
        loss = app.query_one(LossPlot)
        assert any("EMA 0.9" in label for label, _ in loss.axes.legend)
        await pilot.press("s")
        await pilot.pause()
        assert any("EMA 0.99" in label for label, _ in loss.axes.legend)
        await pilot.press("s", "s")  # 0.999, then off
        await pilot.pause()
        assert ("train", "blue") in loss.axes.legend  # off: the raw series
        await pilot.press("n")
        await pilot.pause()
        assert app.current_panel == "timeline" and app.query_one(Timeline).cursor == 0
        await pilot.press("n", "n", "N")
        assert app.query_one(Timeline).cursor == 1
