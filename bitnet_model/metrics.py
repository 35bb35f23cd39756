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

from bitnet_model.events import LayerWeights

BOUNDARY_BAND = 0.05
"""|w|/absmean within this of 0.5 (where round() flips between 0 and +-1) counts as near the boundary."""


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


class WeightWatcher:
    """Per-BitLinear ternary statistics, with flip rate measured against the previous snapshot."""

    def __init__(self) -> None:
        self._prev: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def snapshot(self, layers) -> tuple[LayerWeights, ...]:
        out = []
        for name, layer in layers:
            w = layer.weight.detach().float()
            scale = w.abs().mean().clamp(min=1e-5)
            r = w / scale
            t = r.round().clamp(-1, 1).to(torch.int8)
            n = t.numel()
            neg = (t == -1).sum().item() / n
            pos = (t == 1).sum().item() / n
            prev = self._prev.get(name)
            flip = (t != prev).sum().item() / n if prev is not None and prev.shape == t.shape else math.nan
            near = ((r.abs() - 0.5).abs() < BOUNDARY_BAND).sum().item() / n
            self._prev[name] = t
            out.append(LayerWeights(name=name, neg=neg, zero=1.0 - neg - pos, pos=pos, scale=scale.item(),
                                    flip_rate=flip, near_boundary=near))
        return tuple(out)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self._prev)

    def load_state_dict(self, d: dict[str, torch.Tensor]) -> None:
        self._prev = {k: v.to(torch.int8) for k, v in d.items()}
