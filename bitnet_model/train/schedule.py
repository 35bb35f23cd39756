"""Learning-rate and weight-decay schedules: pure functions of the step.

``lr_at(step, cfg)`` is the *base* schedule for a peak LR; the trainer multiplies
it by a user multiplier when someone sets the LR mid-run, so the rest of the
schedule is rescaled to match the typed value.

two-stage (Microsoft, "The Era of 1-bit LLMs: Training Tips, Code and FAQ"):
linear warmup to the peak; stage 1 decays linearly to ``stage1_end_frac`` x peak
at the midpoint; there the LR drops to ``stage2_frac`` x peak and decays linearly
to ``final_frac`` x peak; weight decay is 0.1 in stage 1 and 0 in stage 2.
stage1: the report's Phase 1 diagnostic, the stage-1 curve stretched over the whole run.
constant: warmup, then the peak. cosine: warmup, then cosine to ``final_frac`` x peak.
"""

from __future__ import annotations

import math

from bitnet_model.train.config import TrainConfig


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * min(1.0, max(0.0, t))


def stage_at(step: int, cfg: TrainConfig) -> int:
    """1 or 2. Only two-stage has a stage 2, starting at the midpoint (step index steps // 2)."""
    return 2 if cfg.schedule == "two-stage" and step >= cfg.steps // 2 else 1


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Base LR for the optimizer step with 0-based index ``step`` (0 .. steps-1)."""
    peak = cfg.peak_lr
    warm = cfg.warmup_steps or 0
    if step < warm:
        return peak * (step + 1) / warm
    n = cfg.steps
    if cfg.schedule == "constant":
        return peak
    if cfg.schedule == "cosine":
        t = (step - warm) / max(1, n - 1 - warm)
        lo = peak * cfg.final_frac
        return lo + (peak - lo) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    if cfg.schedule == "stage1":
        return _lerp(peak, peak * cfg.stage1_end_frac, (step - warm) / max(1, n - 1 - warm))
    mid = n // 2
    if step < mid:
        return _lerp(peak, peak * cfg.stage1_end_frac, (step - warm) / max(1, mid - 1 - warm))
    return _lerp(peak * cfg.stage2_frac, peak * cfg.final_frac, (step - mid) / max(1, n - 1 - mid))


def wd_at(step: int, cfg: TrainConfig) -> float:
    """Weight decay: ``cfg.weight_decay`` in stage 1, 0 in stage 2 of two-stage."""
    return 0.0 if stage_at(step, cfg) == 2 else cfg.weight_decay
