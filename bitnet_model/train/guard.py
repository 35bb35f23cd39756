"""The update that never corrupts the weights: a non-finite loss or gradient skips the optimizer step.

The check stays on the device (no host sync between readbacks): the finite flag is a tensor handed to the
fused Adam/AdamW kernels as ``found_inf``, exactly as :class:`torch.amp.GradScaler` does, and the kernel
leaves the weights, the moments and the step count untouched when it is set. An optimizer without that
kernel (another device, another class) falls back to reading the flag on the host at every step, which
costs a sync but is still correct.
"""

from __future__ import annotations

from typing import Any

import torch

FUSED_DEVICES = ("cpu", "cuda", "mps")
"""Devices whose fused Adam/AdamW kernels take ``found_inf`` (torch 2.4+)."""


def fused_ok(device: torch.device) -> bool:
    return device.type in FUSED_DEVICES


def step_if_finite(optimizer: torch.optim.Optimizer, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
    """``optimizer.step()`` unless ``loss`` or ``grad_norm`` is non-finite; decided on the device when the
    optimizer is fused, else on the host."""
    finite = torch.isfinite(loss.detach().float()) & torch.isfinite(grad_norm.detach().float())
    if all(g.get("fused") for g in optimizer.param_groups):  # a loaded state dict may say otherwise
        found: Any = (~finite).float().reshape(())
        optimizer.grad_scale, optimizer.found_inf = None, found  # type: ignore[attr-defined]
        try:
            optimizer.step()
        finally:
            del optimizer.grad_scale, optimizer.found_inf  # type: ignore[attr-defined]
    elif bool(finite):
        optimizer.step()
