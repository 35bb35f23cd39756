"""Issue 13: a fuzz test of everything that reads a log.

Hypothesis builds headers and events from real ones with any field (or an extra one) replaced by an arbitrary
JSON value: huge integers, floats at the edge of range, the writer's "NaN"/"Infinity" strings, text full of
terminal controls and markup, nested lists and objects. They go through the decoder (``decode_event``,
``parse_header``), ``read_session``, ``summary``/``compare`` (:mod:`bitnet_tui.session.analysis`), the dashboard's fold
and panels, and the CLI. Only the documented errors may come out (``ValueError``/``EventFormatError`` from
decoding one line, ``SessionError`` for a file that is not a usable session), and no control character is
ever printed. ``max_examples`` is bounded so the whole file takes a few seconds.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bitnet_tui.app.cli.main import app
from bitnet_tui.instrument.server import ControlServer
from bitnet_tui.session.analysis.compare import compare
from bitnet_tui.session.analysis.summary import read_summary
from bitnet_tui.session.control.protocol import COMMAND_NAMES
from bitnet_tui.session.log.errors import SessionError
from bitnet_tui.session.log.events import Event, Intervention, RunStarted
from bitnet_tui.session.log.reader import decode_event, parse_header, read_session
from tests.control.helpers import RecordingRun
from tests.fixtures.scripted import scripted_run
from tests.hardening.hostile import EVIL, control_chars

runner = CliRunner()

_SCRIPTED = scripted_run([20, 10, 3], states=["healthy", "collapsing", "collapsed"], eval_every=2, layers=1)
TEMPLATES: dict[str, dict] = {}
for _e in _SCRIPTED:
    TEMPLATES.setdefault(_e.kind, _e.to_dict())
TEMPLATES["intervention"] = Intervention(step=3, time=1.79e9, action="set_lr", old=1e-3, new=5e-4,
                                         source="test").to_dict()
TEMPLATES["checkpoint"] = {"kind": "checkpoint", "step": 4, "time": 1.79e9, "path": "/x/step4.pt", "removed": []}

texts = st.one_of(st.text(max_size=12), st.sampled_from([EVIL, "NaN", "Infinity", "-Infinity", "", "healthy",
                                                          "set_lr", "pause", "[/x]", "\x1b[2J", "\x9b1m"]),
                  st.builds(lambda a, b: a + EVIL + b, st.text(max_size=4), st.text(max_size=4)))
numbers = st.one_of(st.integers(), st.sampled_from([2**53 + 1, -(2**63), 10**400, -(10**400)]),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from([1e308, -1e308, 5e-324, 1e200, -0.0]))
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                           st.dictionaries(texts, kids, max_size=3)), max_leaves=8)


def like(value):
    """Values of the type ``value`` has (text for text, numbers for numbers, ...), with hostile contents."""
    if isinstance(value, str):
        return texts
    if isinstance(value, bool) or value is None:
        return scalars
    if isinstance(value, (int, float)):
        return numbers
    if isinstance(value, list):
        return st.lists(like(value[0]) if value else json_values, max_size=4)
    return st.dictionaries(texts, json_values, max_size=4).map(lambda extra: {**value, **extra})


@st.composite
def event_dicts(draw, kind=None):
    """A real event of ``kind`` (any kind when None) with some fields replaced, removed or added."""
    kind = kind or draw(st.sampled_from(sorted(TEMPLATES)))
    d = json.loads(json.dumps(TEMPLATES[kind]))
    for key in draw(st.lists(st.sampled_from(sorted(d)), max_size=3, unique=True)):
        if key == "kind" and draw(st.booleans()):
            continue
        how = draw(st.integers(0, 5))
        if how == 0:
            del d[key]
        elif how <= 2:
            d[key] = draw(json_values)
        else:
            d[key] = draw(like(d[key]))  # the same type: more lines decode, and reach the screens
    if draw(st.booleans()):
        d[draw(texts)] = draw(json_values)
    return d


def line_of(d) -> bytes:
    return json.dumps(d, allow_nan=False).encode()


@settings(max_examples=300, deadline=None, database=None)
@given(event_dicts())
def test_decode_event_raises_only_value_errors(d):
    try:
        ev = decode_event(line_of(d))
    except ValueError:
        return
    assert isinstance(ev, Event)
    json.dumps(ev.to_dict(), allow_nan=False)  # what was decoded can be written again, as strict JSON


@settings(max_examples=150, deadline=None, database=None)
@given(event_dicts("run_started"))
def test_parse_header_raises_only_session_errors(d):
    try:
        header = parse_header(line_of(d), "x.jsonl")
    except SessionError as e:
        assert not control_chars(str(e))
        return
    assert isinstance(header, RunStarted)


@settings(max_examples=60, deadline=None, database=None)
@given(st.binary(max_size=300))
def test_decode_event_on_arbitrary_bytes(raw):
    try:
        decode_event(raw)
    except ValueError:
        pass


def _write(directory: Path, name: str, header: dict, events: list, junk: list[bytes]) -> Path:
    lines = [line_of(header), *[line_of(e) for e in events], *junk]
    path = directory / f"{name}.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_dicts("run_started"), st.lists(event_dicts(), min_size=1, max_size=10),
       st.lists(st.binary(max_size=40), max_size=2))
def test_everything_that_reads_a_log_survives_it(header, events, junk):
    from bitnet_tui.app.dashboard.feed import Feed
    from bitnet_tui.app.dashboard.header import render_header
    from bitnet_tui.app.dashboard.panels import config_lines, render_samples

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        path = _write(d, "2026-01-01T00-00-00_fuzz", header, events, [j.replace(b"\n", b" ") for j in junk])
        good = _write(d, "2026-01-01T00-00-01_good", TEMPLATES["run_started"], events, [])
        try:
            data = read_session(path)
        except SessionError as e:
            assert not control_chars(str(e))
            data = None
        if data is not None:
            feed = Feed()
            feed.apply_all(data.stream())
            for text in (render_header(feed, "replay"), render_header(feed, "live", width=60), render_samples(feed),
                         config_lines(feed)):
                assert not control_chars(text.plain)
            summaries = [read_summary(path), read_summary(good)]
            json.dumps(compare(summaries).to_json(), allow_nan=False)
            json.dumps(summaries[0].to_json(), allow_nan=False)
        for args in (["summary", "2026-01-01T00-00-00"], ["summary", "2026-01-01T00-00-00", "--json"],
                     ["compare", "2026-01-01T00-00-00", "2026-01-01T00-00-01", "--wide"],
                     ["sessions", "--wide"], ["diagnose", "2026-01-01T00-00-00", "2026-01-01T00-00-01"]):
            r = runner.invoke(app, [*args, "--sessions-dir", str(d)])
            assert r.exit_code in (0, 2), (args, r.output)
            assert r.exception is None or isinstance(r.exception, SystemExit), (args, repr(r.exception))
            assert not control_chars(r.output), (args, control_chars(r.output))
            if r.exit_code == 2:
                assert r.stderr.startswith("error: ") or "error: " in r.stderr, (args, r.output)


def test_every_control_request_gets_a_reply(tmp_path):
    """The control socket's request handler answers anything (it once died on a 400-digit factor)."""
    run = RecordingRun()
    server = ControlServer(run, tmp_path / "r.sock")
    requests = st.fixed_dictionaries({"cmd": st.one_of(st.sampled_from(COMMAND_NAMES), texts)},
                                     optional={"value": numbers | json_values, "factor": numbers | json_values,
                                               "reason": json_values, "extra": json_values})

    @settings(max_examples=200, deadline=None, database=None)
    @given(st.one_of(requests, json_values))
    @example({"cmd": "scale_lr", "factor": 10**400})  # the cases that once killed the handler, always tried
    @example({"cmd": "set_lr", "value": -(10**400)})
    def check(obj):
        reply = server.handle(json.dumps(obj, allow_nan=False).encode())
        assert isinstance(reply.get("ok"), bool) and not control_chars(json.dumps(reply, ensure_ascii=False))

    try:
        check()
    finally:
        server.close()
    for cmd in run.sent:  # what was queued was checked: finite numbers in range
        for v in cmd.args().values():
            assert not isinstance(v, float) or 0 < v < 1e300


@pytest.mark.parametrize("depth", [500, 100_000])
def test_deeply_nested_lines_are_malformed_not_a_crash(tmp_path, depth):
    deep = "[" * depth + "]" * depth
    with pytest.raises(ValueError):
        decode_event(deep.encode())
    path = _write(tmp_path, "deep", TEMPLATES["run_started"], [], [deep.encode(), b'{"kind":"step","x":' + deep.encode()
                                                                 + b"}"])
    assert read_session(path).malformed == 2
