"""The dashboard driven headless with Textual's pilot: the feed, replay, watch and the commands that open it
(live runs: ``test_live.py``; issue 15's panels: ``test_panels.py``, ``test_keys.py``, ``test_overlay.py``)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bitnet_tui.app.dashboard.app import Dashboard, make_app
from bitnet_tui.app.dashboard.dialogs import LRDialog, StepDialog, parse_lr
from bitnet_tui.app.dashboard.feed import Feed, Series
from bitnet_tui.app.dashboard.panels import SamplesPanel, Timeline, render_header, render_samples
from bitnet_tui.app.dashboard.player import Player
from bitnet_tui.app.dashboard.sources import EventBuffer
from bitnet_tui.session.log.events import StepDone
from bitnet_tui.session.log.reader import read_session
from bitnet_tui.session.text import printable
from tests.conftest import wait_for

FIXTURE = Path(__file__).parents[1] / "fixtures" / "collapse.jsonl"


def fixture_events():
    return read_session(FIXTURE).stream()


def header_text(app: Dashboard) -> str:
    return render_header(app.feed, app.mode, app._notice(), alarm=app.source.alarm()).plain


# --------------------------------------------------------------------------- feed, no UI


def test_series_stays_bounded_and_keeps_extremes():
    s = Series(capacity=100)
    ys = [math.sin(i / 1000) + (5.0 if i == 54_321 else 0.0) for i in range(100_000)]
    for i, y in enumerate(ys):
        s.append(i, y)
    assert len(s) <= 100
    assert max(s.hi) == max(ys) and min(s.lo) == min(ys)  # a spike survives downsampling
    assert s.count == 100_000 and s.last_x == 99_999
    s.append(100_000, math.nan)  # non-finite points are not drawn
    assert s.count == 100_000


def test_event_buffer_drains_in_order():
    b = EventBuffer()
    for i in range(5):
        b(StepDone(step=i, time=0.0, loss=1.0, lr=1e-3, weight_decay=0.1, grad_norm=1.0, tokens_per_s=1.0, stage=1))
    assert [e.step for e in b.drain(limit=2)] == [0, 1]
    assert [e.step for e in b.drain()] == [2, 3, 4]
    assert b.drain() == []


def test_player_seeks_and_walks_alerts():
    p = Player(fixture_events())
    p.seek_step(250)
    assert p.feed.step == 250 and p.feed.state == "collapsed"
    p.seek_step(150)  # backwards rebuilds
    assert p.feed.step == 150 and p.feed.state == "healthy"
    p.to_start()
    assert p.feed.step == 0
    assert p.next_mark() and p.feed.timeline[-1].text.startswith("not_learning → partial")
    assert p.next_mark() and p.feed.timeline[-1].step == 100
    assert p.prev_mark() and p.feed.timeline[-1].step == 50
    p.seek_step(260)
    assert p.next_mark(p.marks()) and p.feed.timeline[-1].kind == "intervention"  # n/N stop at interventions too
    p.to_end()
    assert p.feed.ended is not None and p.at_end and not p.next_mark()


def test_player_plays_relative_to_logged_time():
    p = Player(fixture_events(), speed=10.0)
    p.to_start()
    p.tick(1.0)  # 1 s at 10x = 10 logged seconds = 100 steps at 0.1 s/step
    assert 95 <= p.feed.step <= 100
    p.speed = math.inf
    while not p.at_end:
        p.tick(0.25, budget_events=100)
    assert p.feed.step == 600


@pytest.mark.parametrize("raw", ["abc", "-1", "0", "nan", "inf", "1e9", "1", "", "   ", "1e-3x"])
def test_parse_lr_refuses(raw):
    value, why = parse_lr(raw)
    assert value is None and why


def test_parse_lr_accepts():
    assert parse_lr(" 5e-4 ") == (5e-4, "")


def test_hostile_text_is_literal():
    feed = Feed()
    feed.apply_all(fixture_events())
    text = render_samples(feed)
    plain = text.plain
    assert "\x1b" not in plain and "\x07" not in plain
    assert "[blink]blink[/blink]" in plain
    assert "[link=https://evil.example]click[/link]" in plain
    assert "\\x1b[31mRED" in plain and "\\x1b]8;;https://evil.example\\x07osc" in plain
    assert "\\x1b[2J" in plain  # a top token
    assert not any("link" in str(span.style) or "blink" in str(span.style) for span in text.spans)
    assert printable("a\x9bb\u202ec") == "a\\x9bb\\u202ec"


# --------------------------------------------------------------------------- replay


@pytest.mark.asyncio
async def test_replay_end_shows_alert_and_intervention():
    app = make_app("replay", session_path=FIXTURE)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("end")
        await pilot.pause()
        feed = app.feed
        assert feed.step == 600 and feed.ended is not None
        kinds = [(e.kind, e.text) for e in feed.timeline]
        assert any(k == "alert" and "collapsing → collapsed" in t for k, t in kinds)
        assert any(k == "intervention" and t.startswith("set_lr") for k, t in kinds)
        assert feed.lr_changes == [(320, "set_lr")]
        table = app.query_one(Timeline)
        assert table.row_count == len(feed.timeline) == 10
        head = header_text(app)
        assert "run ended: finished" in head and "REPLAY" in head and "end of log" in head
        assert "ETA" not in head
        # Controls that need a trainer are hidden in replay; its own are there.
        assert app.check_action("set_lr", ()) is False
        assert app.check_action("to_end", ()) is True
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


@pytest.mark.asyncio
async def test_replay_seek_speed_and_alert_keys():
    app = make_app("replay", events=fixture_events(), speed=1.0)
    async with app.run_test(size=(80, 24)) as pilot:
        player = app.source.player
        await pilot.press("space")  # pause playback
        assert player.playing is False
        await pilot.press("g")
        assert isinstance(app.screen, StepDialog)
        await pilot.press(*"25x", "enter")
        assert isinstance(app.screen, StepDialog)  # refused, dialog stays
        await pilot.press("backspace", "0", "enter")
        await pilot.pause()
        assert not isinstance(app.screen, StepDialog)
        assert app.feed.step == 250 and app.feed.state == "collapsed"
        await pilot.press("home")
        assert app.feed.step == 0
        await pilot.press("n")
        assert app.feed.timeline[-1].step == 50
        await pilot.press("n", "n", "n")
        assert app.feed.timeline[-1].step == 200
        await pilot.press("n", "n")
        assert app.feed.timeline[-1].kind == "intervention" and app.feed.timeline[-1].step == 320
        await pilot.press("N")
        assert app.feed.timeline[-1].step == 250
        await pilot.press("3")
        assert player.speed == 100.0
        await pilot.press("0")
        assert math.isinf(player.speed)
        await pilot.press("space")
        await wait_for(pilot, lambda: player.at_end, 10, "max-speed playback to reach the end")
        assert app.feed.step == 600
        # Narrow screens show one panel at a time; `v` moves to the next.
        assert app.query_one("#p-loss").has_class("-current")
        await pilot.press("v")
        await pilot.pause()
        assert app.query_one("#p-unique").has_class("-current")


@pytest.mark.asyncio
async def test_lr_dialog_refuses_bad_values():
    app = make_app("replay", events=fixture_events())
    results: list[float | None] = []
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(LRDialog(app.feed), results.append)
        await pilot.pause()
        outlook = app.screen.query_one("#lr-outlook")
        assert outlook.size.height >= 2  # the explanation wraps inside the dialog at 80 columns, never cut off
        shown = "".join(strip.text for strip in outlook.render_lines(outlook.region.reset_offset)).replace(" ", "")
        assert "followthesamerule." in shown, shown
        for bad in ["abc", "-1", "0", "nan", "inf", "1e9", ""]:
            inp = app.screen.query_one("#lr-input")
            inp.value = ""
            await pilot.press(*bad, "enter")
            await pilot.pause()
            assert isinstance(app.screen, LRDialog), bad
            assert str(app.screen.query_one("#lr-error").render()).strip(), bad
        assert results == []
        app.screen.query_one("#lr-input").value = ""
        await pilot.press(*"5e-4", "enter")
        await pilot.pause()
        assert results == [5e-4]
        assert not isinstance(app.screen, LRDialog)


@pytest.mark.asyncio
async def test_replay_samples_panel_shows_hostile_text_literally():
    app = make_app("replay", session_path=FIXTURE, start_at="end")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        panel = app.query_one(SamplesPanel)
        rendered = panel.render()
        plain = rendered.plain if hasattr(rendered, "plain") else str(rendered)
        assert "[blink]blink[/blink]" in plain and "\x1b" not in plain


# --------------------------------------------------------------------------- watch


@pytest.mark.asyncio
async def test_watch_follows_a_growing_log_and_reports_silence(tmp_path):
    lines = FIXTURE.read_bytes().splitlines(keepends=True)
    log = tmp_path / "run.jsonl"
    log.write_bytes(b"".join(lines[:300]))
    app = make_app("watch", session_path=log, stale_after=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.feed.events == 300, 10, "the first half of the log")
        assert app.feed.ended is None
        # Watch ignores steering keys, so its footer does not list them; the palette says why they are missing.
        assert app.check_action("set_lr", ()) is False
        assert app.check_action("toggle_pause", ()) is False
        assert "watch is read-only: attach to steer" in header_text(app)
        palette = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert palette["Set learning rate"] == "unavailable: watch is read-only: attach to steer"
        assert "Go to step" not in palette
        await wait_for(pilot, lambda: "no new events for" in header_text(app), 10, "the silence notice")
        assert "(crashed?)" in header_text(app)
        with log.open("ab") as f:
            f.write(b"".join(lines[300:]))
        await wait_for(pilot, lambda: app.feed.ended is not None, 10, "run_ended")
        assert "no new events" not in header_text(app)
        assert app.feed.step == 600


def test_make_app_refuses_missing_files(tmp_path):
    from bitnet_tui.session.log.errors import SessionError

    with pytest.raises(SessionError):
        make_app("replay", session_path=tmp_path / "nope.jsonl")
    with pytest.raises(SessionError):
        make_app("watch", session_path=tmp_path / "nope.jsonl")


# --------------------------------------------------------------------------- command line


def test_cli_bad_sessions_are_one_line_errors(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from bitnet_tui.app.cli.main import app as cli

    not_a_log = tmp_path / "notes.jsonl"
    not_a_log.write_text("hello\n")
    runner = CliRunner()
    for args in (
        ["replay", str(tmp_path / "missing.jsonl")],
        ["watch", str(tmp_path / "missing.jsonl")],
        ["replay", str(not_a_log)],
        ["watch", str(not_a_log)],
        ["watch", str(tmp_path)],
        ["replay", "latest", "--sessions-dir", str(tmp_path / "empty")],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        err = result.stderr.strip()
        assert err.startswith("error: ") and "\n" not in err, (args, err)
    bad_speed = runner.invoke(cli, ["replay", str(FIXTURE), "--speed", "fast"])
    assert bad_speed.exit_code != 0 and "Traceback" not in bad_speed.output


def test_cli_replay_resolves_and_runs(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from bitnet_tui.app.cli.main import app as cli

    ran: list[Dashboard] = []
    monkeypatch.setattr(Dashboard, "run", lambda self, *a, **k: ran.append(self))
    d = tmp_path / "logs"
    d.mkdir()
    (d / "fixture-run.jsonl").write_bytes(FIXTURE.read_bytes())
    result = CliRunner().invoke(cli, ["replay", "fixture", "--sessions-dir", str(d), "--speed", "max"])
    assert result.exit_code == 0, result.output
    assert ran and ran[0].mode == "replay" and math.isinf(ran[0].source.player.speed)
    result = CliRunner().invoke(cli, ["watch", "latest", "--sessions-dir", str(d)])
    assert result.exit_code == 0, result.output
    assert ran[-1].mode == "watch"
