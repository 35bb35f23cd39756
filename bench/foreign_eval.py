"""The Monitor's evals on a foreign 50k-vocabulary model: their share of wall time before and after, side by side.

    .venv/bin/python bench/foreign_eval.py [--hidden 256] [--val-batches 16] [--model both|torch|gpt2]

A user's model that is not bitnet-tui's (``examples/plain_loop.py``'s TinyGPT built from ``torch.nn``, vocabulary
50,257; and, when transformers is installed, a ``GPT2LMHeadModel`` of the same shape, which takes a key/value
cache) with the Monitor's default eval: 8 prompts of 16 tokens continued by 32 greedy tokens, ``--val-batches``
held-out batches, ``eval_every=100``. For each model, in one process: a training step (AdamW; median of
``--steps``), then the eval the old way (the held-out entropy over whole (B x T, vocab) tensors, greedy decoding
re-reading the window for every token, every batch and prompt), then the eval as the Monitor now runs it (chunked
entropy, decoding through the model's cache where it has one), in turn for ``--rounds`` rounds (best of each),
broken into held-out batches and decoding; then once at the size the eval budget (5%) plans from those costs.
Share = eval / (100 x step + eval). Last line: the shares.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `import bitnet_tui` sets it, before torch
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]  # run as a script from a checkout
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from plain_loop import TinyGPT  # noqa: E402
from shapes import model_shape  # noqa: E402

from bitnet_model.nn.device import one_thread_on_cpu  # noqa: E402
from bitnet_tui.instrument import evals  # noqa: E402
from bitnet_tui.instrument.eval_budget import EvalBudget, EvalSize, min_tokens  # noqa: E402

EVAL_EVERY, BUDGET, VOCAB = 100, 0.05, 50_257


def gpt2(args: argparse.Namespace) -> torch.nn.Module | None:
    try:
        import transformers
    except ImportError:
        return None
    cfg = transformers.GPT2Config(vocab_size=VOCAB, n_embd=args.hidden, n_layer=args.layers, n_head=args.heads,
                                  n_positions=args.context)
    return transformers.GPT2LMHeadModel(cfg)


def logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return evals.logits_of(model(x))


def step_time(model: torch.nn.Module, batches: list[torch.Tensor], n: int) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    times = []
    for i in range(n + 1):
        b = batches[i % len(batches)]
        t0 = time.perf_counter()
        loss = F.cross_entropy(logits(model, b[:, :-1]).flatten(0, 1), b[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])  # the first is warm-up


def old_batch_stats(model: Any, batch: Any, loss_fn: Any, unigram_log: Any) -> tuple[float, float, float | None]:
    """The held-out figures as the Monitor computed them before (whole (B x T, vocab) tensors), for ``(x, y)``."""
    x, y = batch
    out = logits(model, x)
    loss = F.cross_entropy(out.flatten(0, 1).float(), y.flatten())
    logp = F.log_softmax(out.float(), dim=-1)
    p = logp.exp()
    return float(loss), float(-(p * logp).sum(-1).mean()), None


def one_eval(model: torch.nn.Module, prompts: torch.Tensor, val: list[Any], tokens: int, *, old: bool,
             context: int) -> tuple[float, Any]:
    """Seconds of one eval (and its result); ``old``: whole-tensor entropy and no cache, as before."""
    stats, takes = evals._batch_stats, evals.takes_cache
    if old:
        evals._batch_stats, evals.takes_cache = old_batch_stats, (lambda m: False)
    try:
        t0 = time.perf_counter()
        with one_thread_on_cpu(prompts.device):
            r = evals.evaluate(model, prompts=prompts, gen_tokens=tokens, decode=None, val_batches=val,
                               context=context)
        return time.perf_counter() - t0, r
    finally:
        evals._batch_stats, evals.takes_cache = stats, takes


def bench(name: str, model: torch.nn.Module, args: argparse.Namespace) -> tuple[float, float, float]:
    g = torch.Generator().manual_seed(1)
    batches = [torch.randint(VOCAB, (args.batch, args.context + 1), generator=g) for _ in range(2)]
    val = [(b[:, :-1], b[:, 1:]) for b in torch.randint(VOCAB, (args.val_batches, args.batch, args.context + 1),
                                                        generator=g)]
    prompts = torch.randint(VOCAB, (8, 16), generator=g)
    step = step_time(model, batches, args.steps)
    runs: dict[bool, list[tuple[float, Any]]] = {True: [], False: []}
    for r in range(args.rounds):  # in turn, each first in alternate rounds: a shared machine's load hits both
        for old in ((True, False) if r % 2 == 0 else (False, True)):
            runs[old].append(one_eval(model, prompts, val, 32, old=old, context=args.context))
    (t_old, r_old), (t_new, r_new) = (min(runs[k], key=lambda tr: tr[0]) for k in (True, False))
    full = EvalSize(len(val), 8, 32)
    budget = EvalBudget(BUDGET, EVAL_EVERY, full, floor_tokens=min_tokens(32, 0.9))
    budget.step_began(0.0), budget.step_began(step)  # one step of the measured length
    budget.eval_took(full, t_new, r_new.heldout_s, r_new.generate_s)
    size = budget.plan()
    t_cut, _ = one_eval(model, prompts[:size.prompts], val[:size.batches], size.tokens, old=False,
                        context=args.context)
    same = r_old.samples == r_new.samples and abs((r_old.val_loss or 0) - (r_new.val_loss or 0)) < 1e-3
    share = [t / (EVAL_EVERY * step + t) for t in (t_old, t_new, t_cut)]
    print(f"{name}: step {step * 1e3:.0f} ms; eval before {t_old:.2f} s (held-out {r_old.heldout_s:.2f} s, "
          f"decoding {r_old.generate_s:.2f} s); now in full {t_new:.2f} s (held-out {r_new.heldout_s:.2f} s, "
          f"decoding {r_new.generate_s:.2f} s; same figures and samples: {same}); budgeted {t_cut:.2f} s at "
          f"{size.batches}/{full.batches} held-out batches, {size.prompts}/{full.prompts} prompts x {size.tokens} "
          "tokens")
    print(f"{name}: eval share of wall time at eval_every={EVAL_EVERY}: before {share[0]:.1%}, now in full "
          f"{share[1]:.1%}, budgeted {share[2]:.1%}")
    return share[0], share[1], share[2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model_shape(p, batch=4, vocab=None)
    p.add_argument("--val-batches", type=int, default=16)
    p.add_argument("--steps", type=int, default=3, help="training steps timed (median)")
    p.add_argument("--rounds", type=int, default=2, help="evals timed each way, in turn (best of)")
    p.add_argument("--model", choices=("both", "torch", "gpt2"), default="both")
    args = p.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; hidden {args.hidden}, {args.layers} layers, "
          f"vocab {VOCAB}, batch {args.batch} x {args.context}, {args.val_batches} held-out batches, "
          f"8 prompts x 32 greedy tokens")
    results = {}
    if args.model in ("both", "torch"):
        results["torch.nn TinyGPT"] = bench("torch.nn TinyGPT", TinyGPT(VOCAB, args.hidden, args.layers,
                                                                       heads=args.heads, context=args.context), args)
    hf = gpt2(args) if args.model in ("both", "gpt2") else None
    if hf is not None:
        results["GPT2LMHeadModel"] = bench("GPT2LMHeadModel", hf, args)
    print("eval share of wall time before -> now (full) -> budgeted: " + "; ".join(
        f"{n} {a:.1%} -> {b:.1%} -> {c:.1%}" for n, (a, b, c) in results.items()) + f" (target <= {BUDGET:.0%})")


if __name__ == "__main__":
    main()
