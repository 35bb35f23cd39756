"""What greedy decoding looks like right now, and where the held-out loss sits: for any causal LM.

A model is anything whose forward returns logits, a tuple starting with logits, or an object with
``.logits`` (and ``.loss``). bitnet-tui's own model decodes with its key/value cache, and so does a model whose
forward takes a cache (``cache`` or ``past_key_values``, and ``use_cache``: Hugging Face's); other models run a
plain greedy loop that re-reads the window for every token. Everything runs under ``torch.no_grad`` with the
model in eval mode, and the model's mode and the global RNG state are restored afterwards, so the training loop
never notices.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from bitnet_model.nn.device import one_thread_on_cpu

REPORT_PROMPTS = 20
REPORT_PROMPT_TOKENS = 8
ROWS = 128
"""Positions per chunk of the held-out entropy and KL: (128, vocab) temporaries stay in the CPU's caches, where
the whole batch's (B x T, vocab) copies at a 50,257-token vocabulary were 7x slower."""
GPU_ROWS = 4096
"""The same on a GPU, where larger chunks keep the kernels busy."""


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
    heldout_s: float = 0.0
    """Seconds the held-out batches took (loss, entropy, KL)."""
    generate_s: float = 0.0
    """Seconds greedy decoding took."""


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
    bitnet-tui's, a model's key/value cache when its forward takes one (``cache`` or ``past_key_values``,
    with ``use_cache``) and the continuation fits ``context``; else re-reads the (last ``context``) tokens for
    every new one."""
    from bitnet_model.nn.model import BitNetLM

    if isinstance(model, BitNetLM):
        return model.generate(prompts, n, temperature=0.0)
    if n > 0 and takes_cache(model) and (context is None or prompts.shape[1] + n <= context):
        cached = _greedy_cached(model, prompts, n)
        if cached is not None:
            return cached
    return greedy_uncached(model, prompts, n, context)


def greedy_uncached(model: Any, prompts: torch.Tensor, n: int, context: int | None = None) -> torch.Tensor:
    """The plain greedy loop: the whole (last ``context``) window through the model for every new token."""
    ids = prompts
    for _ in range(n):
        window = ids if context is None else ids[:, -context:]
        nxt = logits_of(model(window))[:, -1, :].argmax(dim=-1, keepdim=True)
        ids = torch.cat((ids, nxt), dim=1)
    return ids


CACHE_NAMES = ("cache", "past_key_values")
"""What a forward calls its key/value cache (transformers 5: ``cache``; before it: ``past_key_values``), in the
keywords it takes and in what it returns."""


def cache_name(model: Any) -> str | None:
    """The keyword under which ``model``'s forward takes a key/value cache the Hugging Face way (with
    ``use_cache``), or None."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return None
    return next((n for n in CACHE_NAMES if n in params), None) if "use_cache" in params else None


def takes_cache(model: Any) -> bool:
    """Whether ``model``'s forward takes a key/value cache the Hugging Face way."""
    return cache_name(model) is not None


def _greedy_cached(model: Any, prompts: torch.Tensor, n: int) -> torch.Tensor | None:
    """Greedy decoding through the model's own cache: the prompts once, then one position per token; None when
    the forward returned no cache (the caller decodes without one)."""
    name = cache_name(model) or CACHE_NAMES[0]
    out = model(input_ids=prompts, use_cache=True)
    ids = torch.cat((prompts, logits_of(out)[:, -1, :].argmax(dim=-1, keepdim=True)), dim=1)
    for _ in range(n - 1):
        past = next((c for c in (getattr(out, k, None) for k in CACHE_NAMES) if c is not None), None)
        if past is None:
            return None
        out = model(input_ids=ids[:, -1:], use_cache=True, **{name: past})
        ids = torch.cat((ids, logits_of(out)[:, -1, :].argmax(dim=-1, keepdim=True)), dim=1)
    return ids


def _batch_stats(model: Any, batch: Any, loss_fn: Callable | None,
                 unigram_log: torch.Tensor | None) -> tuple[float, float, float | None]:
    """(loss, mean predictive entropy, mean KL to unigram) of one held-out batch."""
    targets = None
    if loss_fn is not None:
        out = loss_fn(model, batch)
        loss, logits = (out if isinstance(out, tuple) else (out, None))
    elif isinstance(batch, dict):
        out = model(**batch)
        loss, logits = out.loss, logits_of(out)
    else:
        x, targets = batch
        logits, loss = logits_of(model(x)), None
    if logits is None:
        return float(loss), math.nan, None
    flat = logits.flatten(0, -2)
    u = unigram_log.to(flat.device) if unigram_log is not None and unigram_log.shape[0] == flat.shape[-1] else None
    y = targets.flatten() if targets is not None else None
    zero = flat.new_zeros((), dtype=torch.float32)
    nll, ent, kl = zero, zero, zero
    rows = ROWS if flat.device.type == "cpu" else GPU_ROWS
    for i in range(0, flat.shape[0], rows):  # chunks: (B x T, vocab) temporaries are 7x slower at a 50k vocabulary
        logp = F.log_softmax(flat[i:i + rows].float(), dim=-1)
        p = logp.exp()
        h = -(p * logp).sum(-1)
        ent = ent + h.sum()
        if u is not None:
            kl = kl + (-h - p @ u).sum()  # sum p (log p - log u)
        if y is not None:
            nll = nll + F.nll_loss(logp, y[i:i + rows], reduction="sum")
    n = flat.shape[0]
    if y is not None:
        counted = int((y != -100).sum())  # cross_entropy's ignore_index
        loss = float(nll) / counted if counted else math.nan
    return float(loss), float(ent) / n, (None if u is None else max(0.0, float(kl) / n))  # KL >= 0 but for rounding


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
    held_out: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> EvalResult:
    """Held-out loss, predictive entropy and KL to the unigram distribution over ``val_batches``; greedy
    continuations of ``prompts`` and their diversity; the report's metric on ``report_prompts``.

    The held-out batches are read inside ``held_out()`` (the training step's autocast, when the trainer gives it)
    with every intra-op thread, as the training step is: they are the same large matrix products. Decoding and the
    report's metric, many small ops, run on one thread (:func:`one_thread_on_cpu`)."""
    device = prompts.device if prompts is not None else torch.device("cpu")
    with eval_mode(model), _restoring_rng(device):
        t0 = time.perf_counter()
        with held_out():
            stats = [_batch_stats(model, b, loss_fn, unigram_log) for b in val_batches]
        t1 = time.perf_counter()
        with one_thread_on_cpu(device):
            out = greedy(model, prompts, gen_tokens, context) if prompts is not None and prompts.numel() else None
            width = prompts.shape[1] if prompts is not None else 0
            conts = [] if out is None else [row[width:].tolist() for row in out]  # reading back waits for the device
            t2 = time.perf_counter()
            report = None
            if report_prompts is not None:
                report = logits_of(model(report_prompts))[:, -1, :].argmax(-1)

    def mean(i: int) -> float | None:
        vals = [float(v) for s in stats if (v := s[i]) is not None]
        return sum(vals) / len(vals) if vals else None

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
        report_prompts=None if report is None else int(report.shape[0]), heldout_s=t1 - t0, generate_s=t2 - t1,
    )


def report_prompt_ids(vocab: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """The report's metric: 20 prompts of 8 random token ids (fixed for a run by ``seed``)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (REPORT_PROMPTS, REPORT_PROMPT_TOKENS), generator=g).to(device)
