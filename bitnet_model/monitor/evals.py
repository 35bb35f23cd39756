"""Diagnostics: what greedy decoding looks like, and what the ternary weights are doing.

Both run at step boundaries in the training thread, under ``torch.no_grad``, and
return plain Python values ready to go into events.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class EvalResult:
    val_loss: float
    entropy: float
    unique_tokens: int
    generated_tokens: int
    distinct2: float
    top_share: float
    top_tokens: tuple[tuple[str, int], ...]
    samples: tuple[str, ...]
    prompts: tuple[str, ...]


def diversity(continuations: list[list[int]]) -> tuple[int, int, float, float, list[tuple[int, int]]]:
    """(unique tokens, generated tokens, distinct-2, top-token share, most common (id, count)) across continuations."""
    counts: Counter[int] = Counter()
    bigrams: set[tuple[int, int]] = set()
    n_bigrams = 0
    for seq in continuations:
        counts.update(seq)
        pairs = list(zip(seq, seq[1:]))
        bigrams.update(pairs)
        n_bigrams += len(pairs)
    total = sum(counts.values())
    common = counts.most_common(5)
    top_share = common[0][1] / total if total else 0.0
    return len(counts), total, (len(bigrams) / n_bigrams if n_bigrams else 0.0), top_share, common


@torch.no_grad()
def evaluate(model, val_batches, prompts: torch.Tensor, gen_tokens: int, decode, token_text) -> EvalResult:
    """Held-out loss and mean predictive entropy over ``val_batches``; greedy continuations of ``prompts``."""
    was_training = model.training
    model.eval()
    try:
        losses, entropies = [], []
        for x, y in val_batches:
            logits, loss = model(x, y)
            losses.append(loss.item())
            logp = F.log_softmax(logits.float(), dim=-1)
            entropies.append(-(logp.exp() * logp).sum(-1).mean().item())
        out = model.generate(prompts, gen_tokens, temperature=0.0)
    finally:
        model.train(was_training)
    k = prompts.shape[1]
    conts = [row[k:].tolist() for row in out]
    unique, total, d2, share, common = diversity(conts)
    return EvalResult(
        val_loss=sum(losses) / len(losses) if losses else math.nan,
        entropy=sum(entropies) / len(entropies) if entropies else math.nan,
        unique_tokens=unique,
        generated_tokens=total,
        distinct2=d2,
        top_share=share,
        top_tokens=tuple((token_text(i), c) for i, c in common),
        samples=tuple(decode(c) for c in conts),
        prompts=tuple(decode(row.tolist()) for row in prompts),
    )


