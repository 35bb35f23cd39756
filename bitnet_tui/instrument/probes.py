"""Forward probes at eval time: what the 8-bit activation grid, the attention and the output logits look like.

One extra forward, on the first sequences of the first held-out batch (``PROBE_SEQS``), under ``no_grad`` in eval
mode; hooks are attached only for that forward and removed after it, so training never runs through them and
no step pays a host sync. The figures (the ``probes`` field of an ``eval`` event, schema in docs/diagnosis.md):

- ``act``: per BitLinear input, what its per-token absmax int8 quantiser sees after the layer's weightless
  RMSNorm: ``crest`` (mean over tokens of absmax / RMS), ``crest_max`` (the largest), ``zero`` (share of values
  that round to 0 on the int8 grid: resolution lost to an outlier that sets the scale), ``sat`` (share at
  +-127). Under absmax scaling nothing clips: each token has one value at +-127 by construction, so ``sat`` is
  about 1/width whatever happens; the figure that moves when outliers appear is ``zero`` (and ``crest``).
- ``attn``: per attention layer (bitnet-tui's own ``Attention``), ``entropy`` per head (mean over query positions
  of the attention distribution's entropy divided by its maximum ln(positions seen): 1 uniform, 0 one-hot) and
  ``max_logit``, the largest q.k/sqrt(d) over every head and position.
- ``log_z``: mean over positions of logsumexp of the output logits (PaLM's z-loss keeps it near 0);
  ``logit_max``: the largest |logit|.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from bitnet_model.nn.model import Attention
from bitnet_model.nn.quant import BitLinear

PROBE_SEQS = 2
"""Sequences of the first held-out batch the probe forward reads: the figures are per-token means, and two
sequences keep the probe's cost a small part of an eval (bench/diagnostics.py)."""


def probe_input(batch: Any, seqs: int = PROBE_SEQS) -> Any:
    """The first ``seqs`` sequences of a held-out batch: a ``(x, y)`` tuple's ``x``, or a dict with ``input_ids``."""
    if isinstance(batch, dict):
        return {k: v[:seqs] if isinstance(v, torch.Tensor) else v for k, v in batch.items() if k != "labels"}
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0][:seqs]
    return None


def act_figures(x: torch.Tensor, eps: float = 1e-6) -> dict[str, float]:
    """What a per-token absmax int8 quantiser makes of ``x`` (..., width) after a weightless RMSNorm."""
    y = x.detach().float().flatten(0, -2)
    y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True).add_(eps))
    absmax = y.abs().amax(-1, keepdim=True).clamp_(min=1e-5)
    q = (y * (127.0 / absmax)).round_()
    return {"crest": float(absmax.mean()), "crest_max": float(absmax.max()), "zero": float((q == 0).float().mean()),
            "sat": float((q.abs() >= 127).float().mean())}


def _wrap_norm_quant(layer: BitLinear, name: str, out: dict[str, dict[str, float]]) -> Callable[[], None]:
    """Record the input of ``layer.norm_quant`` (bitnet-tui's BitLinear: q/k/v and gate/up share one) while it runs."""
    original = layer.norm_quant

    def norm_quant(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        out.setdefault(name, act_figures(x, getattr(self, "eps", 1e-6)))
        return original(x)

    layer.norm_quant = types.MethodType(norm_quant, layer)  # type: ignore[method-assign]
    return lambda: delattr(layer, "norm_quant")


def _attention_hook(out: dict[str, dict[str, Any]], name: str) -> Callable[..., None]:
    def hook(m: Attention, args: tuple, _result: Any) -> None:
        from bitnet_model.nn.model import apply_rope

        x, cos, sin = args[0], args[1], args[2]
        if len(args) > 3 and args[3] is not None:
            return  # a cached decoding step: not the probe forward
        B, T, _ = x.shape
        heads = m.heads if m.heads is not None else 1
        h = m.q.norm_quant(x)
        q, k = (p.project(h).view(B, T, heads, -1).transpose(1, 2) for p in (m.q, m.k))
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        logits = (q @ k.transpose(-1, -2)).float() / math.sqrt(q.shape[-1])
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        logits = logits.masked_fill(~mask, float("-inf"))
        logp = F.log_softmax(logits, dim=-1)
        ent = -(logp.exp() * logp.masked_fill(~mask, 0.0)).sum(-1)  # (B, heads, T)
        seen = torch.arange(1, T + 1, device=x.device, dtype=torch.float32).log()
        norm = (ent[..., 1:] / seen[1:]).mean(dim=(0, 2)) if T > 1 else torch.ones(heads)
        out[name] = {"entropy": [round(float(v), 4) for v in norm],
                     "max_logit": float(logits.masked_fill(~mask, float("-inf")).amax())}
    return hook


@torch.no_grad()
def probe(model: nn.Module, inputs: Any, forward: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Run ``model`` once on ``inputs`` with the probes attached; the figures, or {} when there is nothing to read.
    ``forward(inputs)`` returns the logits (default: ``model(inputs)`` or ``model(**inputs)``)."""
    if inputs is None:
        return {}
    from bitnet_tui.instrument.evals import eval_mode, logits_of

    act: dict[str, dict[str, float]] = {}
    attn: dict[str, dict[str, Any]] = {}
    undo: list[Callable[[], None]] = []
    try:
        for name, m in model.named_modules():
            if isinstance(m, BitLinear) and m.quant:
                undo.append(_wrap_norm_quant(m, name, act))
            elif "BitLinear" in type(m).__name__:
                h = m.register_forward_pre_hook(
                    lambda mod, a, n=name: act.setdefault(n, act_figures(a[0])) and None)
                undo.append(h.remove)
            if isinstance(m, Attention):
                undo.append(m.register_forward_hook(_attention_hook(attn, name)).remove)
        with eval_mode(model), torch.random.fork_rng(devices=[]):
            res = forward(inputs) if forward is not None else model(**inputs) if isinstance(inputs, dict) \
                else model(inputs)
            logits = logits_of(res).float()
    finally:
        for fn in reversed(undo):
            fn()
    out: dict[str, Any] = {"act": act, "attn": attn}
    if logits.numel():
        out["log_z"] = float(torch.logsumexp(logits, dim=-1).mean())
        out["logit_max"] = float(logits.abs().amax())
    return out


def safe_probe(model: nn.Module, batch: Any, prompts: torch.Tensor | None, loss_fn: Callable | None) -> dict[str, Any]:
    """:func:`probe` on a held-out batch (else the prompts) for an eval; a model the probe cannot read (a user's
    forward that needs more than ids, a custom ``loss_fn``'s batch) gives ``{"error": ...}``, never a failed eval."""
    inputs = probe_input(batch) if batch is not None and loss_fn is None else prompts
    try:
        return probe(model, inputs)
    except Exception as e:  # the instrument never hurts the run: the eval goes on without these figures
        return {"error": f"{type(e).__name__}: {e}"[:200]}
