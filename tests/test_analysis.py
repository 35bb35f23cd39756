"""The verdict on a run, summaries, and what differs between runs."""

from __future__ import annotations

import json
import math

import pytest

from bitnet_model.analysis.compare import compare, differing_keys
from bitnet_model.analysis.scripted import scripted_run
from bitnet_model.analysis.summary import summarize
from bitnet_model.analysis.verdict import (
    COLLAPSE_THEN_RECOVERY,
    COLLAPSED_AGAIN,
    COLLAPSED_AND_STUCK,
    COLLAPSED_RECOVERING,
    DIVERGED,
    NEVER_COLLAPSED,
    NO_EVALS,
    NOT_LEARNING,
    EvalPoint,
    verdict,
)
from bitnet_model.log.events import Alert, Intervention
from bitnet_model.log.reader import read_session
from bitnet_model.log.text import fmt_value
from bitnet_model.log.writer import SessionWriter
from bitnet_model.train.config import DiagConfig, ModelConfig, RunConfig, TrainConfig

LN_VOCAB = math.log(4096)  # 8.32


def evals(unique, states=None, val=5.0, every=1000):
    states = states or [""] * len(unique)
    vals = val if isinstance(val, list) else [val] * len(unique)
    return [EvalPoint((i + 1) * every, v, u, s) for i, (u, s, v) in enumerate(zip(unique, states, vals, strict=True))]


def test_report_standard_lr_collapsed_and_stuck():
    ev = evals([20, 19, 9, 4, 2, 2], ["healthy", "healthy", "collapsing", "collapsed", "collapsed", "collapsed"])
    v = verdict(ev, ln_vocab=LN_VOCAB)
    assert (v.label, v.collapse_step, v.recovery_step) == (COLLAPSED_AND_STUCK, 4000, None)


def test_report_reduced_lr_collapse_then_recovery():
    with_states = evals([20, 3, 10, 14, 18], ["healthy", "collapsed", "recovering", "recovering", "recovered"])
    v = verdict(with_states, ln_vocab=LN_VOCAB)
    assert (v.label, v.collapse_step, v.recovery_step) == (COLLAPSE_THEN_RECOVERY, 2000, 5000)
    # The same trajectory without detector states, judged by DiagConfig's thresholds.
    v = verdict(evals([20, 3, 10, 14, 18]), ln_vocab=LN_VOCAB)
    assert (v.label, v.collapse_step, v.recovery_step) == (COLLAPSE_THEN_RECOVERY, 2000, 5000)
    # Cut at step 3k: still on the way back.
    assert verdict(evals([20, 3, 14]), ln_vocab=LN_VOCAB).label == COLLAPSED_RECOVERING
    assert verdict(evals([20, 3, 10], ["healthy", "collapsed", "recovering"]), ln_vocab=LN_VOCAB).label \
        == COLLAPSED_RECOVERING


def test_steady_never_collapsed():
    v = verdict(evals([20, 22, 25, 30], ["healthy"] * 4), ln_vocab=LN_VOCAB)
    assert (v.label, v.collapse_step) == (NEVER_COLLAPSED, None)
    assert verdict(evals([20, 22, 25, 30]), ln_vocab=LN_VOCAB).label == NEVER_COLLAPSED


def test_not_learning_near_ln_vocab():
    ev = evals([3, 2, 2], ["not_learning"] * 3, val=[8.3, 8.2, 8.0])
    assert verdict(ev, ln_vocab=LN_VOCAB).label == NOT_LEARNING
    # just outside the 10% margin: learning (and collapsed by the thresholds)
    ev = evals([3, 2, 2], val=[8.3, 8.2, LN_VOCAB * 0.89])
    assert verdict(ev, ln_vocab=LN_VOCAB).label == COLLAPSED_AND_STUCK
    # a wider margin from the run's DiagConfig
    assert verdict(ev, ln_vocab=LN_VOCAB, diag=DiagConfig(not_learning_margin=0.2)).label == NOT_LEARNING


def test_other_outcomes():
    assert verdict([], ln_vocab=LN_VOCAB).label == NO_EVALS
    assert verdict(evals([20, 3], val=[5.0, math.nan]), ln_vocab=LN_VOCAB).label == DIVERGED
    relapse = evals([20, 3, 18, 2], ["healthy", "collapsed", "recovered", "collapsed"])
    assert verdict(relapse, ln_vocab=LN_VOCAB).label == COLLAPSED_AGAIN


def test_alert_transitions_count_like_states():
    ev = evals([20, 9, 4, 16])  # no states on the evals, but the detector alerted
    v = verdict(ev, ln_vocab=LN_VOCAB, transitions=[(2500, "collapsed"), (4000, "recovered")])
    assert (v.label, v.collapse_step, v.recovery_step) == (COLLAPSE_THEN_RECOVERY, 2500, 4000)


def _session(tmp_path, name, unique, states, cfg, extra=()):
    events = scripted_run(unique, states=states, config=cfg, eval_every=10)
    events[-1:-1] = list(extra)
    p = tmp_path / f"{name}.jsonl"
    with SessionWriter(p) as w:
        for e in events:
            w(e)
    return summarize(read_session(p))


def test_summary_numbers_and_timeline(tmp_path):
    cfg = RunConfig(train=TrainConfig(lr=1.5e-3))
    stuck = ["healthy", "healthy", "collapsing", "collapsed", "collapsed", "collapsed"]
    nudge = Intervention(step=55, time=0.0, action="set_lr", old=1.5e-3, new=5e-4, source="dashboard")
    s = _session(tmp_path, "stuck", [20, 19, 9, 4, 2, 2], stuck, cfg, [nudge])
    assert (s.verdict, s.min_unique, s.min_unique_step, s.collapse_step) == (COLLAPSED_AND_STUCK, 2, 50, 40)
    assert (s.last_step, s.last_unique, s.detector_state, s.status) == (60, 2, "collapsed", "finished")
    assert s.key_config["lr"] == 1.5e-3 and s.key_config["hidden"] == 256
    texts = [t.text for t in s.timeline]
    assert "detector collapsing → collapsed: 4 unique tokens" in texts
    assert "set_lr 1.5e-3 → 5e-4 (dashboard)" in texts
    assert texts[-1] == "run ended: finished"
    out = s.to_json()
    json.dumps(out, allow_nan=False)


def test_summary_escapes_control_characters(tmp_path):
    evil = Alert(step=5, time=0.0, level="error", code="io", message="\x1b]0;pwned\x07 [red]boom[/red]\nsecond")
    s = _session(tmp_path, "evil", [20], ["healthy"], RunConfig(), [evil])
    text = next(t.text for t in s.timeline if t.kind == "alert" and t.level == "error")
    assert "\x1b" not in text and "\n" not in text and "[red]boom[/red]" in text


def test_differing_keys():
    a = RunConfig(train=TrainConfig(lr=1.5e-3)).to_dict()
    b = RunConfig(train=TrainConfig(lr=5e-4)).to_dict()
    c = RunConfig(train=TrainConfig(lr=5e-4, label_smoothing=0.1)).to_dict()
    d = RunConfig(model=ModelConfig(hidden=128), train=TrainConfig(lr=5e-4, grad_clip=0.1)).to_dict()
    assert differing_keys([a]) == []
    assert differing_keys([a, a]) == []
    assert differing_keys([a, b]) == ["train.lr"]
    assert differing_keys([a, b, c]) == ["train.lr", "train.label_smoothing"]
    keys = differing_keys([b, d])
    assert keys[:2] == ["model.hidden", "train.grad_clip"]
    assert "model.layers" in keys  # derived from hidden
    assert "lr_auto" not in keys and "train.lr" not in keys
    a2 = dict(a, data=dict(a["data"], cache_dir="/elsewhere"))
    assert differing_keys([a, a2]) == []


def test_compare_rows(tmp_path):
    stuck = _session(tmp_path, "a", [20, 19, 9, 4, 2, 2],
                     ["healthy", "healthy", "collapsing", "collapsed", "collapsed", "collapsed"],
                     RunConfig(train=TrainConfig(lr=1.5e-3)))
    back = _session(tmp_path, "b", [20, 3, 10, 14, 18],
                    ["healthy", "collapsed", "recovering", "recovering", "recovered"],
                    RunConfig(train=TrainConfig(lr=5e-4)))
    table = compare([stuck, back])
    assert table.keys == ["train.lr"]
    assert [r.differs for r in table.rows] == [{"train.lr": 1.5e-3}, {"train.lr": 5e-4}]
    assert [(r.verdict, r.collapse_step, r.recovery_step, r.final_unique) for r in table.rows] == [
        (COLLAPSED_AND_STUCK, 40, None, 2), (COLLAPSE_THEN_RECOVERY, 20, 50, 18)]
    json.dumps(table.to_json(), allow_nan=False)


@pytest.mark.parametrize(("v", "s"), [(1.5e-3, "1.5e-3"), (5e-4, "5e-4"), (0.1, "0.1"), (256, "256"),
                                      (math.nan, "NaN"), (None, "—"), (True, "yes"), ("a\x1bb", "a\\x1bb")])
def test_fmt_value(v, s):
    assert fmt_value(v) == s
