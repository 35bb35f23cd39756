"""BitNet b1.58's quantisers and its linear layer, BitLinear.

8-bit per-token absmax activations and per-tensor absmean ternary weights, as in Microsoft's "The Era of
1-bit LLMs: Training Tips, Code and FAQ", each with a straight-through estimator written as one autograd
node. ``BitLinear(quant=False)`` is the same layer without the quantisers: the full-precision control.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F


def activation_quant(x: torch.Tensor) -> torch.Tensor:
    """Per-token absmax quantisation to 8 bits (256 levels), returned dequantised.

    ``|x * 127 / absmax| <= 127`` up to rounding, so the [-128, 127] clamp never binds and is left out;
    absmax is ``max(amax, -amin)``: two reductions and no ``abs`` temporary (``vector_norm(ord=inf)`` is
    many times slower on CPU). Same values as ``(x * s).round().clamp(-128, 127) / s``.
    """
    absmax = torch.maximum(x.amax(dim=-1, keepdim=True), x.amin(dim=-1, keepdim=True).neg_())
    scale = 127.0 / absmax.clamp_(min=1e-5)
    return (x * scale).round_().div_(scale)


def weight_quant(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-tensor absmean ternary quantisation, the FAQ's written as ``w ~ t * s``: t in {-1, 0, 1}, s = mean|w|.

    Returns ``(t, s)``: ``t`` has ``w``'s dtype and shape, ``s`` is a 0-d tensor.
    """
    s = w.abs().mean().clamp_(min=1e-5)
    return (w / s).round_().clamp_(-1, 1), s


def _rms_norm(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Weightless RMSNorm of the last dimension: ``(x * rstd, rstd)``, the values ``F.rms_norm`` returns."""
    fused = getattr(torch.ops.aten, "_fused_rms_norm", None)
    if fused is not None:
        return fused(x, [x.shape[-1]], None, eps)
    rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True).add_(eps))
    return x * rstd, rstd


class _NormQuant(torch.autograd.Function):
    """Weightless RMSNorm, then (if quant) 8-bit activations, with the straight-through estimator.

    Forward returns ``activation_quant(rms_norm(x))``; backward is RMSNorm's own gradient as if the
    quantiser were the identity: ``rstd * (g - y * mean(g * y))`` with ``y = rms_norm(x)``. One node
    instead of the norm's composite graph plus ``y + (q - y).detach()``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, eps: float, quant: bool) -> torch.Tensor:
        y, rstd = _rms_norm(x, eps)
        ctx.save_for_backward(y, rstd)
        return activation_quant(y) if quant else y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        y, rstd = ctx.saved_tensors
        dot = (g * y).mean(-1, keepdim=True)
        return torch.addcmul(g, y, dot, value=-1).mul_(rstd), None, None


class _TernarySTE(torch.autograd.Function):
    """``t * s`` from :func:`weight_quant` forward; the gradient passes straight through to the latent weight."""

    @staticmethod
    def forward(ctx, w: torch.Tensor) -> torch.Tensor:
        t, s = weight_quant(w)
        return t.mul_(s)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        return g


class BitLinear(nn.Linear):
    """Linear layer of BitNet b1.58, as in Microsoft's "The Era of 1-bit LLMs: Training Tips, Code and FAQ"
    (github.com/microsoft/unilm, bitnet/The-Era-of-1-bit-LLMs__Training_Tips_Code_FAQ.pdf).

    The input goes through an RMSNorm without a learnable weight (the FAQ's ``SimpleRMSNorm``; the FAQ's
    code calls ``RMSNorm(x)`` without saying whether it has a gain, and this one has none), then 8-bit
    per-token absmax activations meet ternary absmean weights; the straight-through estimator
    ``x + (q(x) - x).detach()`` passes gradients to the fp32 latent weight and the input. No bias.
    With ``quant=False`` it is ``F.linear(rms_norm(x), w)``: the same layer without the quantisers.
    ``forward`` is ``project(norm_quant(x))``; layers that read one input (q/k/v, gate/up) share a
    ``norm_quant`` so it runs once.
    """

    def __init__(self, in_features: int, out_features: int, quant: bool = True, eps: float = 1e-6) -> None:
        super().__init__(in_features, out_features, bias=False)
        self.quant = quant
        self.eps = eps
        self._frozen: torch.Tensor | None = None
        """Inside :func:`frozen_weights` (generation): ``t * s`` computed once for every token."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.norm_quant(x))

    def norm_quant(self, x: torch.Tensor) -> torch.Tensor:
        """The input side: weightless RMSNorm, then (if quant) 8-bit activations through the STE."""
        if not torch.is_grad_enabled() or not x.requires_grad:
            y = _rms_norm(x, self.eps)[0]
            return activation_quant(y) if self.quant else y
        return _NormQuant.apply(x, self.eps, self.quant)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The weight side: matmul of a :meth:`norm_quant` output with the (if quant) ternary weight."""
        w = self.weight
        if self.quant:  # quantised once per call, straight through to the latent weight
            if torch.is_grad_enabled() and w.requires_grad:
                w = _TernarySTE.apply(w)
            else:
                w = self._quantised_no_grad(w)
        return F.linear(x, w)

    def _quantised_no_grad(self, w: torch.Tensor) -> torch.Tensor:
        """``t * s`` of ``w``: computed once inside :func:`frozen_weights`, else on every call. (An earlier cache
        keyed on the tensor's version counter went stale under fused optimizers, which update in place
        without moving it; an explicit scope cannot.)"""
        if self._frozen is not None:
            return self._frozen
        t, s = weight_quant(w)
        return t.mul_(s)

    @torch.no_grad()
    def ternary_weight(self) -> tuple[torch.Tensor, float]:
        """The effective weight as int8 values in {-1, 0, 1} and its absmean scale (a host sync)."""
        t, s = weight_quant(self.weight)
        return t.to(torch.int8), float(s)


@contextlib.contextmanager
def frozen_weights(model: nn.Module) -> Iterator[None]:
    """Quantise every BitLinear's weight once for the block (greedy generation runs dozens of forwards with the
    same weights). The weights must not change inside it; leaving it drops the quantised copies."""
    layers = [m for m in model.modules() if isinstance(m, BitLinear) and m.quant]
    try:
        with torch.no_grad():
            for m in layers:
                t, s = weight_quant(m.weight)
                m._frozen = t.mul_(s)
        yield
    finally:
        for m in layers:
            m._frozen = None
