"""What greedy decoding looks like right now, and where the held-out loss sits: for any causal LM.

A model is anything whose forward returns logits, a tuple starting with logits, or an object with
``.logits`` (and ``.loss``). bitnet-tui's own model decodes with its key/value cache; other models run a
plain greedy loop. Everything runs under ``torch.no_grad`` with the model in eval mode, and the model's
mode and the global RNG state are restored afterwards, so the training loop never notices.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

REPORT_PROMPTS = 20
REPORT_PROMPT_TOKENS = 8


@dataclass(frozen=True)
class EvalResult:
    val_loss: float | None
    entropy: float | None
    kl_unigram: float | None
    unique_tokens: int
    generated_tokens: int
    distinct2: float
    top_share: float
    repetition: float
    top_tokens: tuple[tuple[str, int], ...]
    samples: tuple[str, ...]
    prompts: tuple[str, ...]
    report_unique: int | None = None
    report_prompts: int | None = None


def logits_of(out: Any) -> torch.Tensor:
    """The logits in whatever a model's forward returned."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    raise TypeError("the model's forward returned no logits (a tensor, a tuple starting with one, or .logits)")


def diversity(continuations: list[list[int]]) -> tuple[int, int, float, float, float, list[tuple[int, int]]]:
    """(unique tokens, generated tokens, distinct-2, top-token share, per-prompt repetition, most common (id, count))
    across continuations. Repetition: the mean over prompts of the share of a continuation's tokens that
    repeat an earlier token of the same continuation (a two-token loop of 32 tokens: 0.94)."""
    counts: Counter[int] = Counter()
    bigrams: set[tuple[int, int]] = set()
    n_bigrams = 0
    reps = []
    for seq in continuations:
        counts.update(seq)
        pairs = list(zip(seq, seq[1:]))
        bigrams.update(pairs)
        n_bigrams += len(pairs)
        if seq:
            reps.append(1 - len(set(seq)) / len(seq))
    total = sum(counts.values())
    common = counts.most_common(5)
    top_share = common[0][1] / total if total else 0.0
    return (len(counts), total, (len(bigrams) / n_bigrams if n_bigrams else 0.0), top_share,
            (sum(reps) / len(reps) if reps else 0.0), common)


def greedy(model: Any, prompts: torch.Tensor, n: int, context: int | None = None) -> torch.Tensor:
    """Continue (B, T) ids by ``n`` greedy tokens. Uses the model's own cached ``generate`` when it is
    bitnet-tui's; else re-reads the (last ``context``) tokens for every new one."""
    from bitnet_model.nn.model import BitNetLM

    if isinstance(model, BitNetLM):
        return model.generate(prompts, n, temperature=0.0)
    ids = prompts
    for _ in range(n):
        window = ids if context is None else ids[:, -context:]
        nxt = logits_of(model(window))[:, -1, :].argmax(dim=-1, keepdim=True)
        ids = torch.cat((ids, nxt), dim=1)
    return ids


def _batch_stats(model: Any, batch: Any, loss_fn: Callable | None,
                 unigram_log: torch.Tensor | None) -> tuple[float, float, float | None]:
    """(loss, mean predictive entropy, mean KL to unigram) of one held-out batch."""
    if loss_fn is not None:
        out = loss_fn(model, batch)
        loss, logits = (out if isinstance(out, tuple) else (out, None))
    elif isinstance(batch, dict):
        out = model(**batch)
        loss, logits = out.loss, logits_of(out)
    else:
        x, y = batch
        logits = logits_of(model(x))
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
    if logits is None:
        return float(loss), math.nan, None
    logp = F.log_softmax(logits.float(), dim=-1)
    p = logp.exp()
    entropy = float(-(p * logp).sum(-1).mean())
    kl = None
    if unigram_log is not None and unigram_log.shape[0] == logp.shape[-1]:
        kl = max(0.0, float((p * (logp - unigram_log.to(logp.device))).sum(-1).mean()))  # >= 0 but for rounding
    return float(loss), entropy, kl


@contextlib.contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """``model`` in eval mode for a measurement, then every module's own mode back: a loop may train with some
    modules kept in eval mode (a frozen dropout or norm), which ``model.train(was)`` would switch back on."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


def _restoring_rng(device: torch.device):
    devices = [device] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)


@torch.no_grad()
def evaluate(
    model: Any,
    *,
    prompts: torch.Tensor | None,
    gen_tokens: int,
    decode: Callable[[list[int]], str] | None,
    token_text: Callable[[int], str] | None = None,
    val_batches: Sequence[Any] = (),
    loss_fn: Callable | None = None,
    unigram_log: torch.Tensor | None = None,
    report_prompts: torch.Tensor | None = None,
    context: int | None = None,
) -> EvalResult:
    """Held-out loss, predictive entropy and KL to the unigram distribution over ``val_batches``; greedy
    continuations of ``prompts`` and their diversity; the report's metric on ``report_prompts``."""
    device = prompts.device if prompts is not None else torch.device("cpu")
    with eval_mode(model), _restoring_rng(device):
        stats = [_batch_stats(model, b, loss_fn, unigram_log) for b in val_batches]
        out = greedy(model, prompts, gen_tokens, context) if prompts is not None and prompts.numel() else None
        report = None
        if report_prompts is not None:
            report = logits_of(model(report_prompts))[:, -1, :].argmax(-1)

    def mean(i: int) -> float | None:
        vals = [float(v) for s in stats if (v := s[i]) is not None]
        return sum(vals) / len(vals) if vals else None

    width = prompts.shape[1] if prompts is not None else 0
    conts = [] if out is None else [row[width:].tolist() for row in out]
    unique, total, d2, share, rep, common = diversity(conts)
    decode = decode or (lambda ids: " ".join(map(str, ids)))
    text = token_text or (lambda i: decode([i]))
    return EvalResult(
        val_loss=mean(0), entropy=mean(1), kl_unigram=mean(2),
        unique_tokens=unique, generated_tokens=total, distinct2=d2, top_share=share, repetition=rep,
        top_tokens=tuple((text(i), c) for i, c in common),
        samples=tuple(decode(c) for c in conts),
        prompts=tuple(decode(row.tolist()) for row in prompts) if prompts is not None else (),
        report_unique=None if report is None else len(set(report.tolist())),
        report_prompts=None if report is None else int(report.shape[0]),
    )


def report_prompt_ids(vocab: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """The report's metric: 20 prompts of 8 random token ids (fixed for a run by ``seed``)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (REPORT_PROMPTS, REPORT_PROMPT_TOKENS), generator=g).to(device)
