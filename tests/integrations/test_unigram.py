"""The unigram entropy a user's loop is judged against: counted from the training batches as they pass
(``mon.step(loss, batch=x)``), with a loud warning while it rests on the held-out sample."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bitnet_model.data.dataset import load_data
from bitnet_model.train.config import DataConfig
from bitnet_tui import Monitor, MonitorConfig
from bitnet_tui.instrument.diagnostics import unigram_stats
from bitnet_tui.instrument.unigram import TokenCounts
from bitnet_tui.session.analysis.fold import EvalPoint
from bitnet_tui.session.analysis.summary import summarize
from bitnet_tui.session.analysis.verdict import HEALTHY, verdict
from bitnet_tui.session.log.reader import read_session
from tests.integrations.helpers import TinyLM, by_kind

V, T = 300, 16


def _run(tmp_path, cache_dir, *, feed: bool, steps: int = 30, **kw):
    data = load_data(DataConfig(cache_dir=cache_dir), V, T)
    torch.manual_seed(0)
    model = TinyLM(V, d=32, layers=1, context=T)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batches = data.batches(4, seed=0)
    with Monitor(model, opt, prompts=data.eval_prompts(2, 4), decode=data.decode, val_batches=data.val_batches(4, 1),
                 sessions_dir=str(tmp_path / "s"), run_name="uni", eval_every=10,
                 options=MonitorConfig(gen_tokens=4, context=T, control=False, **kw)) as mon:
        for _ in range(steps):
            x, y = next(batches)
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
            loss.backward()
            opt.step()
            opt.zero_grad()
            mon.step(loss, batch=(x, y)) if feed else mon.step(loss)
    return data, mon.session_path


def test_training_batches_replace_the_held_out_estimate_and_every_reader_takes_the_counted_figure(tmp_path,
                                                                                                 cache_dir):
    data, path = _run(tmp_path, cache_dir, feed=True)
    ev = by_kind(path)
    header = ev["run_started"][0]
    warn = [a for a in ev["alert"] if a.code == "unigram" and a.level == "warning"]
    assert len(warn) == 1 and warn[0].step == 0 and "held-out sample (64 tokens" in warn[0].message
    assert "biased low" in warn[0].message
    evals = ev["eval"]
    assert evals[0].unigram_entropy is None  # step 0: nothing counted yet
    assert [e.unigram_tokens for e in evals[1:]] == [640, 1280, 1920]  # 4 x 16 tokens a step, every one counted
    true_h = unigram_stats(data.unigram_counts(V))[0]
    counted = evals[-1].unigram_entropy
    assert header.unigram_entropy < counted <= true_h + 0.05  # the sample's figure is the biased-low one
    assert abs(counted - true_h) < abs(header.unigram_entropy - true_h) / 2
    note = [a for a in ev["alert"] if a.code == "unigram" and a.level == "info"]
    assert len(note) == 1 and note[0].step == 10 and "640 training tokens" in note[0].message
    assert summarize(read_session(path)).unigram_entropy == counted


def test_without_training_batches_the_warning_stays_and_no_eval_claims_a_counted_figure(tmp_path, cache_dir):
    _, path = _run(tmp_path, cache_dir, feed=False, steps=10)
    ev = by_kind(path)
    assert any(a.code == "unigram" and a.level == "warning" for a in ev["alert"])
    assert all(e.unigram_entropy is None for e in ev["eval"])
    assert summarize(read_session(path)).unigram_entropy == ev["run_started"][0].unigram_entropy


def test_given_counts_win_and_raise_no_warning(tmp_path, cache_dir):
    data = load_data(DataConfig(cache_dir=cache_dir), V, T)
    _, path = _run(tmp_path, cache_dir, feed=True, steps=10, unigram=data.unigram_counts(V))
    ev = by_kind(path)
    assert not [a for a in ev["alert"] if a.code == "unigram"]
    assert all(e.unigram_entropy is None for e in ev["eval"])
    assert math.isclose(ev["run_started"][0].unigram_entropy, unigram_stats(data.unigram_counts(V))[0])


def test_token_counts_skip_padding_and_follow_the_device():
    c = TokenCounts(5)
    c.add(torch.tensor([[0, 1, 1, -100], [4, 7, 4, 4]]))
    c.add({"input_ids": torch.tensor([2])})
    assert c.read().tolist() == [1, 2, 1, 0, 3]


def test_the_verdict_replays_each_eval_against_the_figure_it_was_judged_by():
    # the run: held-out 6.09 while learning; the held-out sample gave 5.49, the training text 6.59
    evals = [EvalPoint(s, 10.8 - 0.5 * i if i < 9 else 6.09, 60 + i, 256, distinct2=0.6, repetition=0.1,
                       unigram_entropy=None if s == 0 else 6.59) for i, s in enumerate(range(0, 1500, 100))]
    assert verdict(evals, ln_vocab=math.log(50257), unigram_entropy=5.49).label == HEALTHY
    biased = [EvalPoint(e.step, e.val_loss, e.unique_tokens, 256, distinct2=0.6, repetition=0.1) for e in evals]
    assert verdict(biased, ln_vocab=math.log(50257), unigram_entropy=5.49).label != HEALTHY
