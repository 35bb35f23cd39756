"""Issue 25's adversarial pass, kept: every kind of hostile log (``hostile_logs.kinds``, scaled down: a 2 MB
line for the 50 MB one, a thousand blank lines for the million) through one of the five log viewers each. Each
either reads it (exit 0; a damaged one says so in a warning) or refuses it in one line (exit 2); never a
traceback, a hang, a control character or the file's bulk echoed. Full-size figures (time, peak RSS): ``python -m
tests.hardening.hostile_logs``, written in docs/security.md."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bitnet_tui.app.cli.main import app
from tests.hardening.hostile import control_chars
from tests.hardening.hostile_logs import VIEWERS, kinds

runner = CliRunner()
KINDS = kinds(scale=0.0)
READABLE = {"header only", "CRLF", "a million blank lines"}
"""Kinds that are valid logs: read without a warning."""
PAIRS = [(k, list(VIEWERS)[i % len(VIEWERS)]) for i, k in enumerate(KINDS)]
"""Every kind through one viewer, each viewer through a fifth of the kinds (the suite's time); the whole matrix, at
full size, is ``python -m tests.hardening.hostile_logs``."""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind,viewer", PAIRS)
def test_a_hostile_log_is_read_or_refused_in_one_line_by_every_viewer(tmp_path, kind, viewer):
    log = tmp_path / "2026-01-01T00-00-00_h256_lr1.5e-3.jsonl"
    KINDS[kind](log)
    r = runner.invoke(app, VIEWERS[viewer](log, tmp_path / "out"))
    out = r.output
    where = f"{viewer} on {kind}: {out[:600]!r}"
    assert r.exception is None or isinstance(r.exception, SystemExit), (where, repr(r.exception))
    assert "Traceback" not in out and r.exit_code in (0, 2), where
    assert control_chars(out) == [] and len(out) < 100_000, where
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    if r.exit_code == 2:
        assert len(errors) == 1, where
    elif kind not in READABLE and viewer != "sessions":  # sessions lists it; the others read it
        assert errors == [] and "warning" in out.lower(), where


def test_blank_lines_never_reach_the_decoder(tmp_path, monkeypatch):
    """A million blank lines took every viewer 18-38 s (each one a JSONDecodeError raised and caught); they are
    skipped before decoding now (4 s, most of it the interpreter's start, in docs/security.md)."""
    import bitnet_tui.session.log.reader as reader

    log = tmp_path / "blank.jsonl"
    KINDS["a million blank lines"](log)  # a thousand at this scale, around the good lines
    calls = []
    real = reader.decode_event
    monkeypatch.setattr(reader, "decode_event", lambda raw, *a, **kw: (calls.append(raw), real(raw, *a, **kw))[1])
    data = reader.read_session(log)
    assert data.end is not None and data.malformed == 0
    assert len(calls) == len(data.events) and all(raw.strip() for raw in calls)
