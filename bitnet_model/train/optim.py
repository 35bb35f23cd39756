"""The optimizer a run trains with: AdamW (the BitNet FAQ's recipe) or PyTorch's Adam (the report's code).

``adam`` is ``torch.optim.Adam(weight_decay=...)``: L2 decay added to the gradient before Adam normalises
it (coupled), as the report trained. ``adamw`` decouples the decay from the gradient. Decay applies to 2-D
weights only (LLaMA, the FAQ), or with ``decay_all`` to every parameter, norm gains and embeddings too (the
report's code). The first param group is always the decayed one (the trainer sets its weight decay per
stage). Fused kernels wherever torch has them (CPU and CUDA).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from bitnet_model.train.config import TrainConfig
from bitnet_model.train.guard import fused_ok


def build_optimizer(model: nn.Module, t: TrainConfig, lr: float, device: torch.device) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if t.decay_all:
        groups = [{"params": params, "weight_decay": t.weight_decay}]
    else:
        embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
        decayed = [p for p in params if p.dim() >= 2 and id(p) not in embeddings]
        ids = {id(p) for p in decayed}
        groups = [{"params": decayed, "weight_decay": t.weight_decay},
                  {"params": [p for p in params if id(p) not in ids], "weight_decay": 0.0}]
    kw = {"lr": lr, "betas": (t.beta1, t.beta2), "eps": 1e-8}
    if fused_ok(device):  # one kernel per step, and it can skip a non-finite update on the device (guard.py)
        kw["fused"] = True
    klass = torch.optim.Adam if t.optimizer == "adam" else torch.optim.AdamW
    return klass(groups, **kw)
