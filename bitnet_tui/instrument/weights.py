"""What the ternary weights are doing: per layer, the -1/0/+1 split, the scale, the latent RMS and the flip rate
between snapshots; and the two things coupled weight decay shrinks first: norm gains and the embedding.

Ternary layers are found automatically (:func:`find_ternary_layers`): bitnet-tui's ``BitLinear``, Hugging Face
transformers' trainable ``AutoBitLinear``, and any module whose class name contains ``BitLinear`` and that
holds a floating-point ``weight``; or a user names them. Quantisation defaults to b1.58's absmean ternary
rule; another rule can be passed as ``quantize(w) -> (t, s)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, cast

import torch
import torch.nn as nn

from bitnet_model.nn.quant import weight_quant
from bitnet_tui.session.log.events import LayerWeights

BOUNDARY_BAND = 0.05
"""|w|/absmean within this of 0.5 (where round() flips between 0 and +-1) counts as near the boundary."""

Quantize = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def unwrap(model: Any) -> Any:
    """The model inside DDP / ``torch.compile`` wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def find_ternary_layers(model: Any, layers: Any = None) -> list[tuple[str, nn.Module]]:
    """(name, module) of the ternary layers: ``layers`` if given (modules, or a name -> module mapping), else
    every module with a 2-D floating-point weight whose class is named like a ternary layer (:data:`TERNARY_NAMES`)
    or, when none is, every subclass of ``nn.Linear`` with its own ``forward`` (how a user writes one: the plain
    ``nn.Linear`` head and projections are left out), or else every module of the user's own classes holding a
    weight matrix."""
    model = unwrap(model)
    names = {id(m): n for n, m in model.named_modules()}
    if layers is not None:
        items: Iterable[Any] = layers.items() if isinstance(layers, dict) else \
            ((names.get(id(m), f"layer{i}"), m) for i, m in enumerate(layers))
        return [(str(n), m) for n, m in items]
    named: list[tuple[str, nn.Module]] = []
    custom: list[tuple[str, nn.Module]] = []
    other: list[tuple[str, nn.Module]] = []
    for name, m in model.named_modules():
        w = getattr(m, "weight", None)
        if not (isinstance(w, torch.Tensor) and w.is_floating_point() and w.dim() == 2):
            continue
        if getattr(m, "quant", True) is False:
            continue  # bitnet-tui's full-precision control
        if any(k in type(m).__name__.lower() for k in TERNARY_NAMES):
            named.append((name, m))
        elif isinstance(m, nn.Linear) and type(m).forward is not nn.Linear.forward:
            custom.append((name, m))
        elif not type(m).__module__.startswith("torch.") and not isinstance(m, (nn.Linear, nn.Embedding)) and \
                isinstance(w, nn.Parameter):
            other.append((name, m))  # a user's own layer class holding a weight matrix
    return named or custom or other


TERNARY_NAMES = ("bitlinear", "ternary", "bitnet", "b158", "bit158", "quantlinear", "quantizedlinear")
"""Lower-case pieces of a class name that mark a ternary layer."""


def norm_gains(model: Any) -> float | None:
    """Mean |gain| over every normalisation layer's learnable weight (RMSNorm, LayerNorm, ...)."""
    total, n = 0.0, 0
    for m in unwrap(model).modules():
        w = getattr(m, "weight", None)
        if "Norm" in type(m).__name__ and isinstance(w, torch.Tensor) and w.dim() == 1:
            total += float(w.detach().abs().sum())
            n += w.numel()
    return total / n if n else None


def embedding_rms(model: Any) -> float | None:
    for m in unwrap(model).modules():
        if isinstance(m, nn.Embedding):
            return float(m.weight.detach().float().pow(2).mean().sqrt())
    return None


class WeightWatcher:
    """Per-layer ternary statistics, with flip rate measured against the previous snapshot."""

    def __init__(self, quantize: Quantize | None = None) -> None:
        self.quantize = quantize or weight_quant
        self._prev: dict[str, torch.Tensor] = {}
        self._prev2: dict[str, torch.Tensor] = {}
        """The ternary values of the snapshot before ``_prev``: what a flip-back returns to."""
        self._before: dict[str, torch.Tensor] = {}
        """Latent weights one optimizer step before the next snapshot (:meth:`keep_step_before`)."""

    @torch.no_grad()
    def keep_step_before(self, layers: Iterable[tuple[str, nn.Module]]) -> None:
        """Copy the latent weights now, one step before a snapshot, so it can measure one step's update/weight
        ratio. A device copy, no host sync; dropped by the next snapshot."""
        self._before = {name: cast(torch.Tensor, layer.weight).detach().clone() for name, layer in layers}

    @torch.no_grad()
    def snapshot(self, layers: Iterable[tuple[str, nn.Module]]) -> tuple[LayerWeights, ...]:
        out = []
        for name, layer in layers:
            # a Module's attributes type as Tensor | Module: a watched layer's weight is a Tensor
            w = cast(torch.Tensor, layer.weight).detach().float()
            t, s = self.quantize(w)
            scale = float(s)
            r = w / max(scale, 1e-12)
            t8 = t.to(torch.int8)
            n = t8.numel()
            neg = int((t8 == -1).sum()) / n
            pos = int((t8 == 1).sum()) / n
            prev = self._prev.get(name)
            flip = int((t8 != prev).sum()) / n if prev is not None and prev.shape == t8.shape else math.nan
            near = int(((r.abs() - 0.5).abs() < BOUNDARY_BAND).sum()) / n
            back = _flip_back(t8, prev, self._prev2.get(name))
            if prev is not None:
                self._prev2[name] = prev
            self._prev[name] = t8
            before = self._before.get(name)
            ratio = None
            if before is not None and before.shape == w.shape:
                norm = float(w.norm())
                ratio = float((w - before.float()).norm()) / norm if norm > 0 else None
            out.append(LayerWeights(name=name, neg=neg, zero=1.0 - neg - pos, pos=pos, scale=scale,
                                    flip_rate=flip, near_boundary=near, rms=float(w.pow(2).mean().sqrt()),
                                    update_ratio=ratio, flip_back=back))
        self._before = {}
        return tuple(out)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.cpu() for k, v in self._prev.items()}

    def load_state_dict(self, d: dict[str, torch.Tensor]) -> None:
        self._prev = {k: v.to(torch.int8) for k, v in d.items()}
        self._prev2 = {}


def _flip_back(now: torch.Tensor, prev: torch.Tensor | None, prev2: torch.Tensor | None) -> float | None:
    """Share of the values that changed from ``prev`` to ``now`` and are back at ``prev2``'s (None: no history or no
    flip). A weight oscillating across the rounding boundary flips back; one that is learning moves on."""
    if prev is None or prev2 is None or prev.shape != now.shape or prev2.shape != now.shape:
        return None
    flipped = now != prev
    count = int(flipped.sum())
    return int((flipped & (now == prev2)).sum()) / count if count else None
