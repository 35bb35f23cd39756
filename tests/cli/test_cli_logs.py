"""bitnet-tui sessions / summary / compare, including every way a log can be unusable."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bitnet_model.train.config import RunConfig, TrainConfig
from bitnet_tui.app.cli.main import app
from bitnet_tui.session.log.events import Alert
from bitnet_tui.session.log.writer import SessionWriter
from tests.fixtures.scripted import scripted_run

runner = CliRunner()
STUCK, STUCK_LOSS = [110, 30, 25, 9, 4, 2, 2], [8.3, 6.0, 5.2, 5.0, 4.9, 4.9, 4.8]
BACK, BACK_LOSS = [110, 30, 25, 9, 4, 3, 12, 16, 25], [8.3, 6.0, 5.2, 5.0, 4.9, 4.9, 4.8, 4.8, 4.7]


def write(path, events):
    with SessionWriter(path) as w:
        for e in events:
            w(e)
    return path


@pytest.fixture
def sdir(tmp_path):
    d = tmp_path / "sessions"
    d.mkdir()
    evil = Alert(step=25, time=0.0, level="error", code="io", message="\x1b]0;pwned\x07[bold red]boom[/]")
    stuck = scripted_run(STUCK, val_losses=STUCK_LOSS, config=RunConfig(train=TrainConfig(lr=1.5e-3)),
                         eval_every=10)
    stuck[-1:-1] = [evil]
    write(d / "2026-01-01T00-00-00_h256_lr1.5e-3.jsonl", stuck)
    write(d / "2026-01-02T00-00-00_h256_lr5e-4.jsonl",
          scripted_run(BACK, val_losses=BACK_LOSS, config=RunConfig(train=TrainConfig(lr=5e-4)), eval_every=10))
    return d


def bad_file(d, kind):
    """A file that cannot be read as a session, and the words its error line must contain."""
    p = d / f"bad-{kind}.jsonl"
    if kind == "empty":
        p.write_bytes(b"")
        return p, "is empty"
    if kind == "nonjson":
        p.write_bytes(b"\x00\x01binary junk\n")
        return p, "is not a bitnet-tui session (its first line is not JSON)"
    if kind == "shape":
        p.write_text('{"hello": "world"}\n')
        return p, "is not a bitnet-tui session (its first line is not a run_started event)"
    if kind == "schema":
        p.write_text('{"kind":"run_started","schema":99}\n')
        return p, "was written by schema version 99; this bitnet-tui reads versions 1, 2"
    if kind == "directory":
        p = d / "adir.jsonl"
        p.mkdir()
        return p, "is a directory"
    if kind == "missing":
        return d / "missing.jsonl", "does not exist"
    raise AssertionError(kind)


BAD_KINDS = ["empty", "nonjson", "shape", "schema", "directory", "missing"]


def check_one_line_error(result, words):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], result.stderr


def test_sessions_table(sdir):
    bad_file(sdir, "nonjson")
    r = runner.invoke(app, ["sessions", "--sessions-dir", str(sdir)])
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "h256_lr1.5e-3" in out and "collapsed and stayed" in out and "collapsed and recovered" in out
    assert "bad-nonjson.jsonl" in out and "unreadable" in out
    assert "bad-nonjson.jsonl is not a bitnet-tui session (its first line is not JSON)" in r.stderr
    assert out.index("lr1.5e-3") < out.index("lr5e-4")
    assert "Traceback" not in r.output
    assert max(len(line) for line in out.splitlines()) <= 80  # one line a session at 80 columns
    rows = out.strip().splitlines()
    start = next(i for i, ln in enumerate(rows) if ln.lstrip().startswith("started"))  # the title may wrap
    assert len(rows) - start == 1 + 3, out  # header, three sessions
    wide = runner.invoke(app, ["sessions", "--wide", "--sessions-dir", str(sdir)]).stdout
    assert "2026-01-01T00-00-00_h256_lr1.5e-3" in wide and "adamw" in wide
    listed = json.loads(runner.invoke(app, ["sessions", "--json", "--sessions-dir", str(sdir)]).stdout)
    assert [s["verdict"] for s in listed["sessions"]] == ["collapsed and stayed", "collapsed and recovered"]
    assert len(listed["unreadable"]) == 1


def test_a_run_that_failed_reads_failed_in_the_sessions_list_not_finished(sdir):
    crashed = scripted_run(BACK, val_losses=BACK_LOSS, eval_every=10, end="error")
    write(sdir / "2026-01-03T00-00-00_h256_lr1e-3.jsonl", crashed)
    lines = runner.invoke(app, ["sessions", "--sessions-dir", str(sdir)]).stdout.splitlines()
    assert lines[-1].split()[-1] == "error" and lines[-2].split()[-1] == "finished"
    wide = runner.invoke(app, ["sessions", "--wide", "--sessions-dir", str(sdir)]).stdout
    assert "finished (error)" in wide


def test_sessions_env_and_missing_dir(sdir, tmp_path, monkeypatch):
    monkeypatch.setenv("BITNET_TUI_SESSIONS", str(sdir))
    r = runner.invoke(app, ["sessions"])
    assert r.exit_code == 0 and "lr5e-4" in r.stdout
    r = runner.invoke(app, ["sessions", "--sessions-dir", str(tmp_path / "nowhere")])
    check_one_line_error(r, "does not exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(app, ["sessions", "--sessions-dir", str(empty)])
    assert r.exit_code == 0 and "no sessions" in r.stdout


def test_summary(sdir):
    r = runner.invoke(app, ["summary", "2026-01-01", "--sessions-dir", str(sdir)])
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "collapsed and stayed" in out and "2 @ 60" in out and "2/256 unique tokens" in out
    # text from the log is shown literally: no escape sequence reaches the terminal, markup is not applied
    assert "\x1b" not in out and "\\x1b]0;pwned\\x07[bold red]boom[/]" in out


def test_summary_json(sdir):
    r = runner.invoke(app, ["summary", "latest", "--json", "--sessions-dir", str(sdir)])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["verdict"] == "collapsed and recovered"
    assert (d["collapse_step"], d["recovery_step"], d["min_unique"], d["status"]) == (50, 80, 3, "finished")
    assert d["config"]["train"]["lr"] == 5e-4 and isinstance(d["timeline"], list)


def test_summary_damaged_but_usable(sdir):
    p = sdir / "2026-01-02T00-00-00_h256_lr5e-4.jsonl"
    lines = p.read_bytes().split(b"\n")
    lines.insert(4, b"garbage")
    p.write_bytes(b"\n".join(lines[:-3]) + b"\n" + lines[-3][:10])  # also cut the end mid-line
    r = runner.invoke(app, ["summary", str(p), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["malformed_lines"] == 1 and d["truncated_last_line"] and d["status"] == "crashed"
    assert "1 malformed line skipped (line 5" in r.stderr and "last line is incomplete" in r.stderr
    assert all(line.startswith("warning: ") for line in r.stderr.splitlines())


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_summary_errors(sdir, kind):
    p, words = bad_file(sdir, kind)
    r = runner.invoke(app, ["summary", str(p)])
    check_one_line_error(r, words)
    r = runner.invoke(app, ["summary", str(p), "--json"])
    check_one_line_error(r, words)
    assert r.stdout == ""


def test_summary_ambiguous_prefix(sdir):
    check_one_line_error(runner.invoke(app, ["summary", "2026-01", "--sessions-dir", str(sdir)]), "matches 2 sessions")


def test_compare(sdir):
    r = runner.invoke(app, ["compare", "2026-01-01", "2026-01-02", "--sessions-dir", str(sdir)])
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "lr" in out and "1.5e-3" in out and "5e-4" in out
    assert "collapsed and stayed" in out and "collapsed and recovered" in out
    assert "schedule" not in out  # same in both: not shown
    assert max(len(line) for line in out.splitlines()) <= 80


def test_runs_that_differ_in_many_settings_still_show_their_verdicts_at_80_columns(sdir):
    """A user's run beside ours differs in dozens of settings: the table keeps the runs' own columns and names
    the settings it had no room for."""
    cfg = RunConfig(train=TrainConfig(lr=1e-3, warmup_steps=7, weight_decay=0.05, grad_clip=0.5, seed=3,
                                      label_smoothing=0.1, batch_size=3, schedule="cosine"))
    write(sdir / "2026-01-03T00-00-00_other.jsonl", scripted_run(BACK, val_losses=BACK_LOSS, config=cfg,
                                                                 eval_every=10, end="error"))
    names = ["2026-01-01", "2026-01-03"]
    for cmd in (["compare", *names], ["diagnose", *names]):
        out = runner.invoke(app, [*cmd, "--sessions-dir", str(sdir)]).stdout
        lines = out.splitlines()
        assert max(len(line) for line in lines) <= 80, out
        assert "also differ (" in out and "all with --wide or --json" in out
        verdicts = ("collapsed and stayed", "collapsed and recovered") if cmd[0] == "compare" else \
            ("degenerate", "error at step 90;")
        table = lines[:lines.index(next(ln for ln in lines if ln.startswith("also differ")))]
        assert all(any(v in line for line in table) for v in verdicts), out
    wide = runner.invoke(app, ["compare", *names, "--wide", "--sessions-dir", str(sdir)]).stdout
    assert "also differ" not in wide and "warmup" in wide


def test_compare_json(sdir):
    r = runner.invoke(app, ["compare", "2026-01-01", "2026-01-02", "--json", "--sessions-dir", str(sdir)])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["differing_keys"] == ["train.lr"]
    assert [s["verdict"] for s in d["sessions"]] == ["collapsed and stayed", "collapsed and recovered"]
    assert [s["collapse_step"] for s in d["sessions"]] == [50, 50]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_compare_skips_unreadable(sdir, kind):
    p, words = bad_file(sdir, kind)
    r = runner.invoke(app, ["compare", str(p), "2026-01-02", "--json", "--sessions-dir", str(sdir)])
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ") and words in err[0]
    assert [s["verdict"] for s in json.loads(r.stdout)["sessions"]] == ["collapsed and recovered"]


def test_compare_all_unreadable(sdir):
    a, _ = bad_file(sdir, "empty")
    b, _ = bad_file(sdir, "shape")
    r = runner.invoke(app, ["compare", str(a), str(b)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    assert lines[-1] == "error: none of the sessions could be read" and len(lines) == 3
