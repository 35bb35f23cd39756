"""What the ternary weights are doing: per-layer -1/0/+1 split, scale and flip rate between snapshots."""

from __future__ import annotations

import math

import torch

from bitnet_model.log.events import LayerWeights

BOUNDARY_BAND = 0.05
"""|w|/absmean within this of 0.5 (where round() flips between 0 and +-1) counts as near the boundary."""


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
