"""Where sessions live and what they are called, and how text from a log is shown."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from bitnet_model.train.config import ModelConfig, RunConfig, TrainConfig
from bitnet_tui.app.runs.plan import RunPlan, claim_session, run_label
from bitnet_tui.session.log.errors import SessionError
from bitnet_tui.session.log.paths import checkpoint_dir, new_session_path, resolve_session, sessions_dir
from bitnet_tui.session.text import safe_text
from tests.log.test_session import every_kind, good_log, write

# --------------------------------------------------------------------------- where

def test_sessions_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("BITNET_TUI_SESSIONS", raising=False)
    assert sessions_dir(None) == Path("sessions")
    monkeypatch.setenv("BITNET_TUI_SESSIONS", str(tmp_path))
    assert sessions_dir(None) == tmp_path
    assert sessions_dir("elsewhere") == Path("elsewhere")


def test_run_label():
    assert run_label(RunConfig(train=TrainConfig(lr=1.5e-3))) == "h256_lr1.5e-3"
    assert run_label(RunConfig()) == "h256_lr1.5e-3"
    cfg = RunConfig(model=ModelConfig(hidden=128, quant=False, ffn_act="relu2"),
                    train=TrainConfig(lr=1e-3, label_smoothing=0.1, grad_clip=0.1, schedule="stage1",
                                      optimizer="adam", decay_all=True))
    assert run_label(cfg) == "h128_lr1e-3_nq_adam_decayall_ls0.1_clip0.1_stage1_relu2"


def test_unique_names_same_second(tmp_path):
    now = datetime(2026, 11, 24, 10, 31, 5)
    plan = RunPlan(cfg=RunConfig(train=TrainConfig(lr=5e-4)), sessions=tmp_path / "s")
    a, b, c = (claim_session(plan, now) for _ in range(3))
    assert a.name == "2026-11-24T10-31-05_h256_lr5e-4.jsonl"
    assert b.name == "2026-11-24T10-31-05_h256_lr5e-4-2.jsonl" and c.name.endswith("-3.jsonl")
    write(a, every_kind())  # the reserved empty file takes a writer
    assert checkpoint_dir(a) == a.with_name("2026-11-24T10-31-05_h256_lr5e-4.ckpt")
    # a sibling someone planted under the next free name moves the run past it
    (tmp_path / "s" / "2026-11-24T10-31-05_h256_lr5e-4-4.ckpt").mkdir()
    assert claim_session(plan, now).name.endswith("-5.jsonl")
    assert new_session_path(tmp_path / "s", "x").name == "x.jsonl"


def test_resolve_session(tmp_path):
    d = tmp_path
    a = good_log(d, "2026-01-01T00-00-00_h256_lr5e-4.jsonl")
    b = good_log(d, "2026-01-02T00-00-00_h256_lr1.5e-3.jsonl")
    os.utime(a, (1, 1))
    assert resolve_session(str(a), d) == a
    assert resolve_session(a.name, d) == a
    assert resolve_session(a.name.removesuffix(".jsonl"), d) == a
    assert resolve_session("2026-01-02", d) == b
    assert resolve_session("latest", d) == b
    with pytest.raises(SessionError, match="matches 2 sessions"):
        resolve_session("2026-01", d)
    with pytest.raises(SessionError, match="^zzz does not exist$"):
        resolve_session("zzz", d)
    with pytest.raises(SessionError, match="no sessions"):
        resolve_session("latest", d / "empty")


# --------------------------------------------------------------------------- safe text

@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("\x1b]0;owned\x07title", "\\x1b]0;owned\\x07title"),
        ("\x1b]8;;http://evil\x1b\\link", "\\x1b]8;;http://evil\\x1b\\link"),
        ("\x9b31m C1 CSI", "\\x9b31m C1 CSI"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("bidi \u202eevil", "bidi \\u202eevil"),
        ("[bold]markup[/] stays literal", "[bold]markup[/] stays literal"),
        ("surrogate \udcff", "surrogate \\udcff"),
        ("bell\x07 del\x7f", "bell\\x07 del\\x7f"),
    ],
)
def test_safe_text(raw, shown):
    assert safe_text(raw) == shown
    assert safe_text(safe_text(raw)) == shown
    assert "\x1b" not in safe_text(raw)


def test_safe_text_one_line():
    assert safe_text("a\nb\r", newlines=False) == "a\\x0ab\\x0d"
    assert safe_text("x" * 10, limit=3) == "xxx…"
