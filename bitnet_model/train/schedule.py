"""Learning-rate and weight-decay schedules: pure functions of the step.

``lr_at(step, cfg)`` is the schedule the trainer writes into the optimizer before each step; a person's
LR change is applied on top of it by the Monitor's LR control, never by rewriting the schedule.

two-stage (Microsoft, "The Era of 1-bit LLMs: Training Tips, Code and FAQ", Figure 1c): linear warmup to
the peak, then a linear decay toward ~0 (``final_frac`` x peak at the last step); at the midpoint the LR
drops onto a second, lower schedule with peak ``stage2_frac`` x peak (FAQ: 1.5e-3 -> 1e-3) decaying the same
way. So stage 1 ends near half the peak and stage 2 starts near a third of it, as in the FAQ's figure.
Weight decay is 0.1 in stage 1 and 0 in stage 2.
two-stage-hold: bitnet-tui's first reading of the FAQ: stage 1 decays only to ``stage1_end_frac`` x peak at
the midpoint, then drops to ``stage2_frac`` x peak and decays to ``final_frac`` x peak.
stage1: the report's Phase 1 diagnostic, the stage-1 curve over the whole run (weight decay throughout).
constant: warmup, then the peak. cosine: warmup, then cosine to ``final_frac`` x peak.
"""

from __future__ import annotations

import math

from bitnet_model.train.config import TrainConfig


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * min(1.0, max(0.0, t))


def stage_at(step: int, cfg: TrainConfig) -> int:
    """1 or 2. Only the two-stage schedules have a stage 2, starting at the midpoint (step index steps // 2)."""
    return 2 if cfg.schedule.startswith("two-stage") and step >= cfg.steps // 2 else 1


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Scheduled LR for the optimizer step with 0-based index ``step`` (0 .. steps-1)."""
    peak = cfg.peak_lr
    warm = cfg.warmup_steps or 0
    if step < warm:
        return peak * (step + 1) / warm
    n = cfg.steps
    after = (step - warm) / max(1, n - 1 - warm)  # 0 at the end of warmup, 1 at the last step
    if cfg.schedule == "constant":
        return peak
    if cfg.schedule == "cosine":
        lo = peak * cfg.final_frac
        return lo + (peak - lo) * 0.5 * (1 + math.cos(math.pi * min(1.0, after)))
    if cfg.schedule in ("stage1", "two-stage"):
        top = peak * (cfg.stage2_frac if stage_at(step, cfg) == 2 else 1.0)
        return _lerp(top, top * cfg.final_frac, after)
    mid = n // 2  # two-stage-hold
    if step < mid:
        return _lerp(peak, peak * cfg.stage1_end_frac, (step - warm) / max(1, mid - 1 - warm))
    return _lerp(peak * cfg.stage2_frac, peak * cfg.final_frac, (step - mid) / max(1, n - 1 - mid))


def wd_at(step: int, cfg: TrainConfig) -> float:
    """Weight decay: ``cfg.weight_decay`` in stage 1, 0 in stage 2 of the two-stage schedules."""
    return 0.0 if stage_at(step, cfg) == 2 else cfg.weight_decay


def next_peak(step: int, cfg: TrainConfig) -> tuple[int, float] | None:
    """(step, LR) of the highest scheduled LR from ``step`` on, when it is still ahead (during warmup); else None."""
    warm = cfg.warmup_steps or 0
    if step < warm - 1:
        return warm - 1, lr_at(warm - 1, cfg)
    return None
