"""Issue 13, item 2: text from files never reaches the terminal as escape sequences or Rich markup.

Two logs whose every key and value is hostile (OSC 2 title, OSC 52 clipboard, CSI, C1 bytes, markup, bidi
overrides; a hostile config key that differs between them, so it becomes a compare column header) go through
every command that reads logs, text and ``--json``, their error paths, ``run --tokenizer`` with a file whose
parse error quotes its own content, and the dashboard's fold and panels. Nothing may print a control
character, interpret markup, or crash.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bitnet_tui.app.cli.main import app
from bitnet_tui.session.log.reader import read_session
from tests.conftest import tiny_args
from tests.hardening.hostile import EVIL, EVIL_NAME, LITERALS, control_chars, hostile_log

runner = CliRunner()
A = "2026-01-01T00-00-00_a"
B = "2026-01-01T00-00-01_b" + EVIL_NAME


@pytest.fixture
def sdir(tmp_path):
    d = tmp_path / "sessions"
    d.mkdir()
    hostile_log(d / f"{A}.jsonl", differs=1)
    hostile_log(d / f"{B}.jsonl", differs=2)
    return d


def _check(out: str) -> None:
    assert not control_chars(out), control_chars(out)
    assert "Traceback" not in out


LITERAL = "literal"
COMMANDS = [
    (["sessions"], ""), (["sessions", "--wide"], LITERAL), (["sessions", "--json"], LITERAL),
    (["summary", A], LITERAL), (["summary", A, "--json"], LITERAL), (["summary", "2026-01-01T00-00-01"], LITERAL),
    (["compare", A, "2026-01-01T00-00-01"], ""), (["compare", A, "2026-01-01T00-00-01", "--wide"], LITERAL),
    (["compare", A, "2026-01-01T00-00-01", "--json"], LITERAL),
    (["diagnose", A], ""), (["diagnose", A, "2026-01-01T00-00-01"], ""), (["diagnose", A, "--json"], ""),
]


@pytest.mark.parametrize("args,literal", COMMANDS, ids=lambda a: " ".join(a) if isinstance(a, list) else a)
def test_every_log_command_shows_hostile_text_literally(sdir, args, literal):
    r = runner.invoke(app, [*args, "--sessions-dir", str(sdir)])
    assert r.exit_code == 0, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    _check(r.output)
    if literal:
        for text in LITERALS:
            assert text in r.output, text
    if "--json" in args:
        json.loads(r.stdout)  # one JSON object, its hostile strings escaped by JSON itself


def test_the_hostile_config_key_is_a_compare_column_shown_literally(sdir):
    r = runner.invoke(app, ["compare", A, "2026-01-01T00-00-01", "--wide", "--sessions-dir", str(sdir)])
    header = r.stdout.splitlines()[0]
    assert "train.\\x1b]2;pwned-title\\x07" in header
    assert "train.[link=http://evil.example]click[/link][/oops]" in header  # markup first, within 60 columns
    _check(header)
    table = json.loads(runner.invoke(app, ["compare", A, "2026-01-01T00-00-01", "--json",
                                           "--sessions-dir", str(sdir)]).stdout)
    assert f"train.{EVIL}" in table["differing_keys"]


def _hostile_header(path, **fields):
    d = {"kind": "run_started", "step": 0, "time": 1.0, "schema": 2, "run_name": "x", "config": {}, **fields}
    path.write_text(json.dumps(d) + "\n")
    return path


@pytest.mark.parametrize("case", ["missing", "schema", "kind", "compare-missing", "replay", "ctl", "resume",
                                  "first-line"])
def test_error_paths_quote_hostile_text_literally(sdir, tmp_path, case):
    if case == "schema":
        args = ["summary", str(_hostile_header(tmp_path / "s.jsonl", schema=EVIL))]
    elif case == "kind":
        args = ["summary", str(_hostile_header(tmp_path / "k.jsonl", kind=EVIL))]
    elif case == "first-line":
        (tmp_path / f"{EVIL_NAME}.jsonl").write_text(EVIL + "\n")
        args = ["diagnose", str(tmp_path / f"{EVIL_NAME}.jsonl")]
    elif case == "compare-missing":
        args = ["compare", EVIL, EVIL_NAME]
    elif case == "replay":
        args = ["replay", EVIL]
    elif case == "ctl":
        args = ["ctl", EVIL, "pause"]
    elif case == "resume":
        args = ["run", "--headless", "--resume", EVIL]
    else:
        args = ["summary", EVIL]
    r = runner.invoke(app, [*args, "--sessions-dir", str(sdir)])
    assert r.exit_code == 2, r.output
    _check(r.output)
    errors = [line for line in r.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, r.output
    if case == "schema":
        assert "\\u001b]2;pwned-title" in errors[0]  # quoted as JSON, truncated
    elif case not in ("kind", "first-line", "compare-missing"):
        assert "[/oops]" in errors[0] and "\\x1b]2;pwned-title\\x07" in errors[0]


@pytest.mark.parametrize("content", [
    '{"version": "1.0", "model": {"type": "BPE", "vocab": {}, "merges": [], "unk_token": 7, "x": "' + EVIL + '"}}',
    json.dumps({"version": EVIL}),
    json.dumps({"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
                "pre_tokenizer": None, "post_processor": None, "decoder": {"type": EVIL},
                "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}),
], ids=["raw-controls", "version", "decoder-type"])
def test_run_with_a_tokenizer_whose_parse_error_quotes_its_content(tmp_path, content):
    tok = tmp_path / f"{EVIL_NAME}.json"
    tok.write_text(content, encoding="utf-8")
    data = tmp_path / "text.txt"
    data.write_text("Some plain text for a tiny corpus, a few words long.\n\n" * 50)
    r = runner.invoke(app, ["run", "--headless", *tiny_args(steps=2), "--data", str(data), "--tokenizer", str(tok),
                            "--sessions-dir", str(tmp_path / "s")])
    assert r.exit_code == 2, r.output
    _check(r.output)
    errors = [line for line in r.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, r.output
    assert errors[0].count("\\x1b]2;pwned-title\\x07") >= 1 and "[bold]" in errors[0]  # the name at least, literally


def test_the_dashboard_fold_and_panels_show_hostile_text_literally(sdir):
    from bitnet_tui.app.dashboard.feed import Feed
    from bitnet_tui.app.dashboard.header import render_header
    from bitnet_tui.app.dashboard.panels import config_lines, render_samples, timeline_row

    data = read_session(sdir / f"{A}.jsonl")
    feed = Feed()
    feed.apply_all(data.stream())
    texts = [render_header(feed, "replay"), render_header(feed, "replay", width=80), render_samples(feed),
             config_lines(feed)]
    for item, ev in zip(feed.timeline, feed.marked):
        texts.extend(timeline_row(item, ev)[1:])
    plain = "\n".join(t.plain for t in texts)
    _check(plain)
    assert "[/oops]" in render_samples(feed).plain and "[/oops]" in config_lines(feed).plain
    assert feed.metrics and all(name.startswith("\\x1b]2;pwned-title\\x07") for name in feed.metrics)
