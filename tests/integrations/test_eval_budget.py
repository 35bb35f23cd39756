"""The Monitor's eval budget in a user's plain loop on a foreign model (not bitnet-tui's: the user's own GPT built
from ``torch.nn``) whose eval is long next to its steps, as a 50,257-token vocabulary makes it; and greedy decoding
through a Hugging Face model's own key/value cache."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from bitnet_tui import Monitor, MonitorConfig
from bitnet_tui.app.cli.diagnose import diagnose_path
from bitnet_tui.instrument import eval_budget
from bitnet_tui.session.analysis.summary import read_summary
from tests.integrations.helpers import by_kind
from tests.integrations.user_loop import UserGPT

VOCAB, CTX, HELD_OUT = 512, 16, 120


@pytest.fixture(autouse=True)
def small_evals_count(monkeypatch):
    """A toy model's eval is short in seconds, and the Monitor never reduces one under ``MIN_EVAL_S``: lifted here so
    a model that trains in seconds shows what a 50k-vocabulary model's seconds-long eval goes through."""
    monkeypatch.setattr(eval_budget, "MIN_EVAL_S", 0.0)


def run(tmp_path, budget: float | None, steps: int = 120, every: int = 40) -> tuple[float, object]:
    """A user's loop whose eval (120 held-out batches the size of a training batch: about 40 steps' worth) is long
    next to its steps; the share of the loop's wall time, from its first step, spent in the steps that eval, and
    the session log."""
    torch.manual_seed(0)
    model = UserGPT(VOCAB, d=32, context=CTX)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    train = torch.randint(VOCAB, (2, 32, CTX + 1), generator=g)
    val = [(b[:, :-1], b[:, 1:]) for b in torch.randint(VOCAB, (HELD_OUT, 32, CTX + 1), generator=g)]
    prompts = torch.randint(VOCAB, (4, 4), generator=g)
    inside = 0.0
    with Monitor(model, opt, prompts=prompts, val_batches=val, sessions_dir=str(tmp_path), run_name="budget",
                 eval_every=every, options=MonitorConfig(total_steps=steps, gen_tokens=8, context=CTX,
                                                         control=False, eval_budget=budget)) as mon:
        t0 = time.perf_counter()
        for i in range(steps):
            b = train[i % len(train)]
            loss = F.cross_entropy(model(b[:, :-1]).flatten(0, 1), b[:, 1:].flatten())
            loss.backward()
            opt.step()
            opt.zero_grad()
            t = time.perf_counter()
            mon.step(loss)
            if mon.step_count % every == 0:
                inside += time.perf_counter() - t
        wall = time.perf_counter() - t0
    return inside / wall, mon.session_path


def test_evals_on_a_foreign_50k_model_keep_within_the_budget_and_say_what_they_read(tmp_path):
    share, log = run(tmp_path, 0.02)  # 2%: well apart from the ~10-20% a full eval takes here (the test below)
    assert share <= 0.02 + 0.04, f"evals took {share:.1%} of the loop's wall time"
    ev = by_kind(log)
    evals = ev["eval"]
    assert [e.step for e in evals] == [0, 40, 80, 120]
    assert evals[0].reduced == {}  # the step-0 eval reads everything: the reference, before any step was timed
    later = [e.reduced for e in evals[1:]]
    assert all(r.get("val_batches", [0, 0])[1] == HELD_OUT and r["val_batches"][0] < HELD_OUT for r in later)
    for e in evals[1:]:  # what each eval read is in the log: the diversity figures' own sample size
        used = e.reduced.get("prompts", [4])[0] * e.reduced.get("gen_tokens", [8])[0]
        assert e.generated_tokens == used and len(e.samples) == e.reduced.get("prompts", [4])[0]
    (alert, *_) = [a for a in ev["alert"] if a.code == "eval_budget"]
    assert alert.step == 40 and "of 120 held-out batches" in alert.message and "eval_budget of 2%" in alert.message
    assert alert.data["reduced"] == evals[1].reduced
    assert any("of 120 held-out batches" in item.text for item in read_summary(log).timeline)
    d, _ = diagnose_path(log)
    assert any(label == "eval sample" and "of 120 held-out batches" in text for label, text in d.figures)


def test_without_a_budget_every_eval_reads_everything(tmp_path):
    share, log = run(tmp_path, None, steps=40, every=20)
    ev = by_kind(log)
    assert all(e.reduced == {} and e.generated_tokens == 32 for e in ev["eval"])
    assert not [a for a in ev["alert"] if a.code == "eval_budget"]
    assert share > 0.04  # more than twice what the budget keeps in the test above


@pytest.mark.parametrize("budget", [0, 1, 1.5, -0.1, True, "5%"])
def test_an_eval_budget_outside_0_to_1_is_refused_when_the_config_is_made(budget):
    with pytest.raises(ValueError, match="eval_budget must be a share of wall time between 0 and 1"):
        MonitorConfig(eval_budget=budget)


def test_greedy_decoding_through_a_hf_models_cache_equals_decoding_without_it():
    transformers = pytest.importorskip("transformers")
    from bitnet_tui.instrument.evals import greedy, greedy_uncached, takes_cache

    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=2_000, n_embd=32, n_layer=2, n_head=2, n_positions=64)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    prompts = torch.randint(2_000, (3, 5), generator=torch.Generator().manual_seed(2))
    calls: list[int] = []
    hook = model.register_forward_pre_hook(lambda m, args, kwargs: calls.append(kwargs["input_ids"].shape[1]),
                                           with_kwargs=True)
    assert takes_cache(model)
    with torch.no_grad():
        cached = greedy(model, prompts, 20, context=64)
        hook.remove()
        assert calls == [5] + [1] * 19  # the prompts once, then one position per new token
        plain = greedy_uncached(model, prompts, 20, context=64)
    assert cached.tolist() == plain.tolist()
    assert len(set(cached[:, 5:].flatten().tolist())) > 3  # a continuation with something to compare


def test_the_plan_cuts_held_out_batches_then_prompts_then_tokens_never_below_the_floors():
    from bitnet_tui.instrument.eval_budget import EvalBudget, EvalSize, min_tokens

    full = EvalSize(16, 8, 32)
    assert min_tokens(32, 0.9) == 20  # a two-token loop of 20 tokens still repeats 90%
    b = EvalBudget(0.05, 100, full, floor_tokens=min_tokens(32, 0.9))
    assert b.plan() == full  # nothing timed yet: the full eval
    b.step_began(0.0), b.step_began(0.5)  # one step of 0.5 s: an eval may take 0.05/0.95 x 100 x 0.5 = 2.63 s
    b.eval_took(full, 8.0, 7.0, 0.5)  # 7 s of held-out batches (0.44 s each), 0.5 s of decoding, 0.5 s the rest
    assert b.plan() == EvalSize(3, 8, 32)  # batches first: 0.5 + 0.5 + 3 x 0.44 = 2.3 s
    b.eval_took(full, 47.5, 7.0, 40.0)  # decoding too slow now: 40 s for 256 tokens
    assert b.plan() == EvalSize(1, 2, 20)  # one batch at least, then two prompts, then 20 tokens at least
    assert b.plan().reduced_from(full) == {"val_batches": [1, 16], "prompts": [2, 8], "gen_tokens": [20, 32]}
    assert EvalBudget(None, 100, full, floor_tokens=20).plan() == full  # no budget: always everything
