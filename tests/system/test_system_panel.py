"""The system figures on screen: the header's compact figure and the System panel in replay (live:
tests/dashboard/test_live.py), refused or warned about when a log's ``system`` line is malformed, and exported."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from bitnet_tui.app.dashboard.app import make_app
from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.app.dashboard.header import render_header
from bitnet_tui.app.dashboard.system import SystemPanel
from bitnet_tui.session.log.events import SystemSample
from bitnet_tui.session.log.reader import read_session

FIXTURE = Path(__file__).parents[1] / "fixtures" / "collapse.jsonl"


def shown(widget) -> str:
    from rich.console import Console

    console = Console(width=widget.content_region.width, record=True, file=io.StringIO())
    console.print(widget._body.content)
    return console.export_text()


@pytest.mark.asyncio
async def test_replay_shows_the_logged_system_figures_in_the_header_and_the_system_panel():
    app = make_app("replay", session_path=FIXTURE, start_at="end")
    async with app.run_test(size=(160, 40)) as pilot:
        app.show_panel("system")
        await pilot.pause()
        text = shown(app.query_one(SystemPanel))
        header = render_header(app.feed, app.mode, width=160).plain.splitlines()[0]
    last = [json.loads(x) for x in FIXTURE.read_text().splitlines() if '"system"' in x][-1]
    assert f"cpu {last['cpu_percent']:.0f}%" in header and f"{last['rss_mb']:.0f} MB" in header
    for row in ("CPU (process)", "memory (RSS)", "threads", "load (1 min)"):
        assert row in text
    assert "GPU" not in text  # a CPU run's log has no device figures
    assert f"sampled at step {last['step']}" in text and "2 CPUs" in text
    assert f"{last['rss_mb']:.0f} MB" in text


@pytest.mark.asyncio
async def test_before_the_first_sample_the_panel_says_there_is_none_and_the_header_has_no_figure():
    app = make_app("replay", session_path=FIXTURE, start_at=5)
    async with app.run_test(size=(160, 40)) as pilot:
        app.show_panel("system")
        await pilot.pause()
        assert "no system samples" in shown(app.query_one(SystemPanel))
        assert "cpu " not in render_header(app.feed, app.mode, width=160).plain


def test_a_gpu_sample_reads_in_the_header():
    feed = Feed()
    feed.apply_all(read_session(FIXTURE).stream()[:1])
    feed.apply(SystemSample(step=3, time=feed.first_time + 1, cpu_percent=98.0, rss_mb=3000.0, gpu_util=97.0,
                            gpu_mem_mb=42_000.0, gpu_mem_total_mb=143_000.0, gpu_temp_c=71.0))
    assert "cpu 98% 2.9 GB gpu 97% 41.0 GB 71°C" in render_header(feed, "live", width=200).plain


def test_a_malformed_system_line_is_skipped_and_said_and_an_out_of_range_figure_is_shown_as_missing(tmp_path):
    lines = FIXTURE.read_text().splitlines()
    i = next(n for n, x in enumerate(lines) if '"system"' in x)
    wrong, out_of_range = json.loads(lines[i]), json.loads(lines[i])
    wrong["rss_mb"] = "lots"
    out_of_range["gpu_util"] = 250.0
    p = tmp_path / "2026-01-01T00-00-00_bad.jsonl"
    p.write_text("\n".join([*lines[:i], json.dumps(wrong), json.dumps(out_of_range), *lines[i + 1:]]) + "\n")
    data = read_session(p)
    assert any("1 malformed line" in w and "rss_mb must be a number" in w for w in data.warnings), data.warnings
    assert any("1 value out of range" in w for w in data.warnings), data.warnings
    kept = [e for e in data.events if isinstance(e, SystemSample) and e.step == wrong["step"]]
    assert len(kept) == 1 and kept[0].gpu_util is None and kept[0].rss_mb == wrong_rss(lines[i])


def wrong_rss(line: str) -> float:
    return json.loads(line)["rss_mb"]


def test_export_writes_the_system_samples_to_system_csv(tmp_path):
    import csv

    from bitnet_tui.app.cli.export import export_csv

    export_csv(read_session(FIXTURE).stream(), tmp_path)
    with open(tmp_path / "system.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    logged = [json.loads(x) for x in FIXTURE.read_text().splitlines() if '"system"' in x]
    assert len(rows) == len(logged) == 30
    assert float(rows[-1]["rss_mb"]) == logged[-1]["rss_mb"] and rows[-1]["gpu_util"] == ""
