"""Verdicts for every end a run can have (sequences with losses), summaries, and the compare table."""

from __future__ import annotations

import json
import math

import pytest

from bitnet_model.train.config import ModelConfig, RunConfig, TrainConfig
from bitnet_tui.session.analysis import verdict as V
from bitnet_tui.session.analysis.compare import compare, differing_keys
from bitnet_tui.session.analysis.fold import EvalPoint
from bitnet_tui.session.analysis.summary import summarize
from bitnet_tui.session.log.events import Alert, Intervention
from bitnet_tui.session.log.reader import read_session
from bitnet_tui.session.log.writer import SessionWriter
from bitnet_tui.session.text import fmt_value
from tests.fixtures.scripted import scripted_run

LN_V, H = math.log(4096), 6.58
LEARNED = [8.3, 6.0, 5.2, 5.0, 4.9, 4.9, 4.8, 4.8, 4.7]


def evals(unique, losses, every=100, generated=256):
    return [EvalPoint(i * every, loss, u, generated) for i, (u, loss) in enumerate(zip(unique, losses, strict=True))]


def judge(unique, losses, **kw):
    return V.verdict(evals(unique, losses), ln_vocab=kw.pop("ln_vocab", LN_V), unigram_entropy=kw.pop("h", H), **kw)


def test_collapsed_and_stayed():
    v = judge([110, 30, 25, 9, 4, 3, 3, 2, 2], LEARNED)
    assert (v.label, v.state, v.collapse_step, v.recovery_step) == (V.COLLAPSED_STAYED, "collapsed", 400, None)
    assert "2/256 unique tokens" in v.evidence


def test_collapsed_and_recovered():
    v = judge([110, 30, 25, 9, 4, 3, 12, 16, 25], LEARNED)
    assert (v.label, v.collapse_step, v.recovery_step) == (V.COLLAPSED_RECOVERED, 400, 700)
    assert judge([110, 30, 25, 9, 4, 3, 12, 13, 14], LEARNED).label == V.COLLAPSED_RECOVERING


def test_the_reports_token_counts_with_its_losses_never_learned():
    v = judge([20, 19, 9, 4, 2, 2, 2], [10.98, 10.7, 10.6, 10.5, 10.7, 10.8, 10.75], ln_vocab=math.log(50257), h=7.3)
    assert v.label == V.NEVER_LEARNED and v.collapse_step is None


def test_learned_then_back_to_ln_vocab_is_unlearned_with_its_lowest_point():
    v = judge([20, 6, 3, 2, 2, 1, 1, 1, 1], [10.9, 9.4, 9.1, 9.0, 9.4, 9.9, 10.4, 10.7, 10.7],
              ln_vocab=math.log(50257), h=7.3, scales=[(0, 0.02), (300, 0.021), (600, 0.004), (800, 0.002)])
    assert (v.label, v.min_loss, v.min_step) == (V.UNLEARNED, 9.0, 300)
    assert v.scale_fall == pytest.approx(10.5)


def test_unigram_phase_short_and_stuck():
    assert judge([110, 4, 3], [8.3, 6.6, 6.6]).label == V.UNIGRAM_PHASE
    assert judge([110] + [4] * 12, [8.3] + [6.6] * 12).label == V.STUCK_UNIGRAM


def test_learned_but_never_diverse():
    assert judge([110] + [3] * 12, [8.3] + [4.8] * 12).label == V.NEVER_DIVERSE


def test_a_run_ending_with_one_token_repeated_is_not_healthy():
    # " the" as 245 of 256 generated tokens: 12 unique, almost every token repeats within its prompt
    ev = evals([110, 30, 25, 12], [8.3, 6.0, 5.2, 5.0])
    ev[-1] = EvalPoint(300, 5.0, 12, 256, repetition=0.96)
    assert V.verdict(ev, ln_vocab=LN_V, unigram_entropy=H).label in (V.COLLAPSED_STAYED, V.COLLAPSING)


def test_healthy_diverged_and_no_evals():
    assert judge([110, 30, 25, 30, 40], [8.3, 6.0, 5.2, 5.0, 4.9]).label == V.HEALTHY
    assert judge([110, 30, 25], [8.3, 6.0, math.nan]).label == V.DIVERGED
    assert V.verdict([], ln_vocab=LN_V).label == V.NO_EVALS


def _session(tmp_path, name, unique, cfg, losses=None, extra=()):
    events = scripted_run(unique, val_losses=losses, config=cfg, eval_every=10)
    events[-1:-1] = list(extra)
    p = tmp_path / f"{name}.jsonl"
    with SessionWriter(p) as w:
        for e in events:
            w(e)
    return summarize(read_session(p))


STUCK = [110, 30, 25, 9, 4, 2, 2]
STUCK_LOSS = [8.3, 6.0, 5.2, 5.0, 4.9, 4.9, 4.8]


def test_summary_numbers_and_timeline(tmp_path):
    cfg = RunConfig(train=TrainConfig(lr=1.5e-3))
    nudge = Intervention(step=55, time=0.0, action="set_lr", old=1.5e-3, new=5e-4, source="dashboard")
    s = _session(tmp_path, "stuck", STUCK, cfg, STUCK_LOSS, [nudge])
    assert (s.verdict, s.min_unique, s.min_unique_step, s.collapse_step) == (V.COLLAPSED_STAYED, 2, 60, 50)
    assert (s.last_step, s.last_unique, s.detector_state, s.status) == (70, 2, "collapsed", "finished")
    assert s.key_config["lr"] == 1.5e-3 and s.key_config["hidden"] == 256 and s.key_config["optimizer"] == "adamw"
    texts = [t.text for t in s.timeline]
    assert "set_lr 1.5e-3 → 5e-4 (by dashboard)" in texts
    assert texts[-1] == "run ended: finished"
    assert len(s.weights) == 28 and s.weights[0].name == "blocks.0.q"
    json.dumps(s.to_json(), allow_nan=False)


def test_summary_escapes_control_characters(tmp_path):
    evil = Alert(step=5, time=0.0, level="error", code="io", message="\x1b]0;pwned\x07 [red]boom[/red]\nsecond")
    s = _session(tmp_path, "evil", [20], RunConfig(), [5.0], [evil])
    text = next(t.text for t in s.timeline if t.kind == "alert" and t.level == "error")
    assert "\x1b" not in text and "\n" not in text and "[red]boom[/red]" in text


def test_differing_keys():
    a = RunConfig(train=TrainConfig(lr=1.5e-3)).to_dict()
    b = RunConfig(train=TrainConfig(lr=5e-4)).to_dict()
    c = RunConfig(train=TrainConfig(lr=5e-4, label_smoothing=0.1)).to_dict()
    d = RunConfig(model=ModelConfig(hidden=128), train=TrainConfig(lr=5e-4, grad_clip=0.1)).to_dict()
    e = RunConfig(train=TrainConfig(lr=5e-4, optimizer="adam")).to_dict()
    assert differing_keys([a]) == [] and differing_keys([a, a]) == []
    assert differing_keys([a, b]) == ["train.lr"]
    assert differing_keys([a, b, c]) == ["train.lr", "train.label_smoothing"]
    assert differing_keys([b, e]) == ["train.optimizer"]
    keys = differing_keys([b, d])
    assert keys[:2] == ["model.hidden", "train.grad_clip"] and "model.layers" in keys
    a2 = dict(a, data=dict(a["data"], cache_dir="/elsewhere"))
    assert differing_keys([a, a2]) == []


def test_compare_rows(tmp_path):
    stuck = _session(tmp_path, "a", STUCK, RunConfig(train=TrainConfig(lr=1.5e-3)), STUCK_LOSS)
    back = _session(tmp_path, "b", [110, 30, 25, 9, 4, 3, 12, 16, 25], RunConfig(train=TrainConfig(lr=5e-4)),
                    LEARNED)
    table = compare([stuck, back])
    assert table.keys == ["train.lr"]
    assert [r.differs for r in table.rows] == [{"train.lr": 1.5e-3}, {"train.lr": 5e-4}]
    assert [(r.verdict, r.collapse_step, r.recovery_step, r.final_unique) for r in table.rows] == [
        (V.COLLAPSED_STAYED, 50, None, 2), (V.COLLAPSED_RECOVERED, 50, 80, 25)]
    json.dumps(table.to_json(), allow_nan=False)


@pytest.mark.parametrize(("v", "s"), [(1.5e-3, "1.5e-3"), (5e-4, "5e-4"), (0.1, "0.1"), (256, "256"),
                                      (math.nan, "NaN"), (None, "—"), (True, "yes"), ("a\x1bb", "a\\x1bb")])
def test_fmt_value(v, s):
    assert fmt_value(v) == s


def test_a_state_that_lasts_reads_as_its_message_not_as_a_change_to_itself():
    from bitnet_tui.session.analysis.fold import timeline_item

    still = Alert(step=600, time=1.0, level="warning", code="detector", state_from="unigram", state_to="unigram",
                  message="still unigram after 10 evals (since step 150): the model is not getting past frequencies")
    assert timeline_item(still).short == "still unigram after 10 evals (since step 150)"
    change = Alert(step=150, time=1.0, level="warning", code="detector", state_from="not_learning",
                   state_to="unigram", message="unigram phase")
    assert timeline_item(change).short == "not_learning → unigram"
