"""Issue 13, item 5: values that parse but are out of range are shown as missing, counted, and never plotted.

For each hostile number (a 400-digit integer, +-1e308, 1e200, "Infinity", "-Infinity", "NaN") a log is built
whose header has it in every numeric field, and which has one event per numeric field of every kind with that
field (and only that one) set to it. Every command reads it (``sessions``, ``summary``, ``compare``,
``diagnose``, text and ``--json``), the dashboard's fold and panels render it, and ``replay`` opens it: nothing
crashes or hangs, the damage is counted and said, and no series the dashboard plots holds such a value.
"""

from __future__ import annotations

import asyncio
import json
import math

import pytest
from typer.testing import CliRunner

from bitnet_tui.app.cli.main import app
from bitnet_tui.session.log.reader import read_session
from tests.fixtures.scripted import scripted_run
from tests.hardening.hostile import control_chars

runner = CliRunner()
HUGE = int("9" * 400)
POISONS = {"400-digits": HUGE, "-400-digits": -HUGE, "1e308": 1e308, "-1e308": -1e308, "1e200": 1e200,
           "Infinity": "Infinity", "-Infinity": "-Infinity", "NaN": "NaN"}
HEADER_FIELDS = ("ln_vocab", "unigram_entropy", "vocab_size", "params", "total_steps")
EVENT_FIELDS = {
    "step": ("loss", "lr", "weight_decay", "grad_norm", "tokens_per_s", "stage", "lr_spread", "mfu", "peak_mem_mb",
             "extra.m", "step", "time"),
    "eval": ("val_loss", "unique_tokens", "generated_tokens", "distinct2", "top_share", "entropy", "repetition",
             "kl_unigram", "report_unique", "report_prompts", "extra.m", "top_tokens.0.1", "time"),
    "weights": ("layers.0.neg", "layers.0.zero", "layers.0.pos", "layers.0.scale", "layers.0.flip_rate",
                "layers.0.near_boundary", "layers.0.rms", "norm_gain", "embed_norm"),
    "alert": ("unique_tokens", "val_loss"),
    "intervention": ("old", "new"),
}
NONFINITE_DATA = {"loss", "val_loss", "grad_norm", "layers.0.flip_rate", "extra.m"}
"""Fields where NaN and infinities are data (a diverged run), not damage."""
MALFORMED = {"step", "time"}
"""Required fields without which an event is unusable: the line is skipped as malformed."""


def _set(d: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    for p in path:
        d = d[int(p)] if isinstance(d, list) else d[p]
    if isinstance(d, list):
        d[int(last)] = value
    else:
        d[last] = value


def poisoned_log(path, value, per_field=None):
    """The header with ``value`` in every numeric field, then one event per (kind, field) with only that field
    set to ``value`` (or to ``per_field(i)`` for the i-th field), between valid events of a real-looking run."""
    events = scripted_run([20, 10, 3], states=["healthy", "collapsing", "collapsed"], eval_every=4, layers=1)
    templates = {e.kind: e.to_dict() for e in events}
    templates["intervention"] = {"kind": "intervention", "step": 0, "time": 0.0, "action": "set_lr", "old": 1e-3,
                                 "new": 5e-4, "source": "test"}
    templates["step"]["extra"] = {"m": 1.0}
    templates["eval"]["extra"] = {"m": 1.0}
    templates["eval"].update(report_unique=3, report_prompts=20, repetition=0.5, kl_unigram=0.1)
    templates["weights"].update(norm_gain=1.0, embed_norm=1.0)
    templates["weights"]["layers"][0]["rms"] = 0.5
    head = events[0].to_dict()
    for f in HEADER_FIELDS:
        head[f] = value if per_field is None else per_field(len(f))
    head["config"]["train"]["grad_clip"] = value if per_field is None else per_field(0)
    lines = [json.dumps(head)]
    step, t, i, poisoned = 0, events[0].time, 0, 0
    for kind, names in EVENT_FIELDS.items():
        for name in names:
            step, t = step + 1, t + 1.0
            for ev in events[1:4]:  # a few valid ones around each bad one
                lines.append(json.dumps({**ev.to_dict(), "step": step, "time": t}))
            d = json.loads(json.dumps({**templates[kind], "step": step, "time": t}))
            _set(d, name, value if per_field is None else per_field(i))
            lines.append(json.dumps(d))
            i, poisoned = i + 1, poisoned + 1
    path.write_text("\n".join(lines) + "\n")
    return path


def _expected(value) -> tuple[int, int]:
    """(values that must be counted as damage at least, lines that must be malformed at least)."""
    nonfinite = isinstance(value, str)
    fields = [f for names in EVENT_FIELDS.values() for f in names]
    malformed = sum(f in MALFORMED for f in fields)
    damage = sum(f not in MALFORMED and not (nonfinite and f in NONFINITE_DATA) for f in fields)
    return damage + len(HEADER_FIELDS), malformed


def _finite_series(feed) -> list[str]:
    """Names of plotted series holding a value no real run produces (non-finite, or beyond 1e30)."""
    series = {name: getattr(feed, name) for name in ("train_loss", "val_loss", "lr_series", "wd_series",
                                                     "grad_norm_series", "flip_mean", "norm_gain", "embed_norm")}
    series.update({f"metric {k}": v for k, v in feed.metrics.items()})
    bad = []
    for name, s in series.items():
        for y in (*s.mean, *s.lo, *s.hi, *([s.last_y] if s.last_y is not None else [])):
            if not math.isfinite(y) or abs(y) > 1e30:
                bad.append(name)
                break
    for field in ("unique_tokens", "report_unique"):  # the unique-tokens panel plots the evals themselves
        ys = [getattr(e, field) for e in feed.evals if getattr(e, field) is not None]
        if any(not math.isfinite(y) or abs(y) > 1e30 for y in ys):
            bad.append(f"eval {field}")
    return bad


@pytest.fixture(params=list(POISONS), ids=list(POISONS))
def poisoned(request, tmp_path):
    sdir = tmp_path / "sessions"
    sdir.mkdir()
    value = POISONS[request.param]
    return sdir, poisoned_log(sdir / "2026-01-01T00-00-00_bad.jsonl", value), value


@pytest.mark.timeout(60)
def test_the_decoder_counts_every_out_of_range_value_and_the_fold_never_plots_one(poisoned):
    from bitnet_tui.app.dashboard.feed import Feed
    from bitnet_tui.app.dashboard.header import render_header
    from bitnet_tui.app.dashboard.panels import config_lines, render_samples

    _, path, value = poisoned
    data = read_session(path)
    damage, malformed = _expected(value)
    assert data.damage >= damage and data.malformed >= malformed, (data.damage, data.malformed)
    assert any("out of range, shown as missing" in w for w in data.warnings)
    assert data.header.ln_vocab is None and data.header.unigram_entropy is None and data.header.params is None
    feed = Feed()
    feed.apply_all(data.stream())
    assert feed.step > 0 and feed.evals
    assert not _finite_series(feed), _finite_series(feed)
    for text in (render_header(feed, "replay"), render_header(feed, "replay", width=80), render_samples(feed),
                 config_lines(feed)):
        assert "9" * 30 not in text.plain and "e+308" not in text.plain and not control_chars(text.plain)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("args", [["sessions"], ["sessions", "--wide"], ["sessions", "--json"], ["summary", "latest"],
                                  ["summary", "latest", "--json"], ["diagnose", "latest"],
                                  ["diagnose", "latest", "--json"], ["compare", "latest", "latest"],
                                  ["compare", "latest", "latest", "--json"]], ids=" ".join)
def test_every_command_shows_out_of_range_values_as_missing(poisoned, args):
    sdir, _, value = poisoned
    r = runner.invoke(app, [*args, "--sessions-dir", str(sdir)])
    assert r.exit_code == 0, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output and "9" * 30 not in r.output and "e+308" not in r.stdout
    if args[0] == "summary":
        assert "out of range, shown as missing" in r.stderr
    if args == ["summary", "latest", "--json"]:
        s = json.loads(r.stdout)
        assert s["ln_vocab"] is None and s["unigram_entropy"] is None and s["damaged_values"] >= _expected(value)[0]
    elif "--json" in args:
        json.loads(r.stdout)


@pytest.mark.timeout(60)
def test_compare_of_every_poisoned_log_at_once(tmp_path):
    sdir = tmp_path / "s"
    sdir.mkdir()
    names = []
    for i, value in enumerate(POISONS.values()):
        poisoned_log(sdir / f"2026-01-01T00-00-0{i}_v{i}.jsonl", value)
        names.append(f"2026-01-01T00-00-0{i}")
    for extra in ([], ["--wide"], ["--json"]):
        r = runner.invoke(app, ["compare", *names, *extra, "--sessions-dir", str(sdir)])
        assert r.exit_code == 0 and "Traceback" not in r.output, r.output


@pytest.mark.timeout(60)
def test_a_header_whose_time_is_nan_is_one_line_and_an_event_with_one_is_skipped(tmp_path):
    events = [e.to_dict() for e in scripted_run([20, 10], eval_every=4)]
    bad_head = tmp_path / "head.jsonl"
    bad_head.write_text("\n".join(json.dumps({**e, "time": "NaN"} if i == 0 else e) for i, e in enumerate(events)))
    r = runner.invoke(app, ["summary", str(bad_head)])
    assert r.exit_code == 2 and r.output.startswith("error: ") and "damaged header" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
    bad_event = tmp_path / "event.jsonl"
    bad_event.write_text("\n".join(json.dumps({**e, "time": "NaN"} if i == 3 else e) for i, e in enumerate(events)))
    data = read_session(bad_event)
    assert data.malformed == 1 and len(data.events) == len(events) - 2


@pytest.mark.timeout(120)
def test_replay_opens_a_log_with_every_kind_of_bad_number(tmp_path):
    """The dashboard itself (the real app, its plots included) opens at the end and draws, without freezing."""
    from bitnet_tui.app.dashboard.app import make_app

    values = list(POISONS.values())
    path = poisoned_log(tmp_path / "mixed.jsonl", None, per_field=lambda i: values[i % len(values)])
    app_ = make_app("replay", session_path=path, start_at="end")

    async def go():
        async with app_.run_test(size=(140, 44)) as pilot:
            await pilot.pause(0.5)
            return app_.export_screenshot()

    svg = asyncio.run(asyncio.wait_for(go(), 90))
    assert "9" * 30 not in svg and "e+308" not in svg
