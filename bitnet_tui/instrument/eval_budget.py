"""The evals' share of wall time: :class:`EvalBudget` sizes each eval so it stays within ``MonitorConfig.eval_budget``.

The Monitor tells it when each ``step()`` call begins, and each eval how long it took, so it knows the loop's own
step time from the wall clock alone (the median of the recent steps, evals taken out): no host sync.
Each eval reports how long its held-out batches and its greedy decoding took; from those per-unit costs the next
eval is planned to cost at most ``budget / (1 - budget)`` of ``eval_every`` steps. When the full eval does not
fit it uses fewer held-out batches first, then fewer prompts, then shorter continuations, never below the floors
(one batch, two prompts, and continuations long enough that a two-token loop still reads as collapsed); the
eval event records what it used (``EvalDone.reduced``) and each change of size is an ``eval_budget`` alert.
The eval at step 0 runs in full: no step has been timed yet, and it is the reference for the later ones. A full
eval under :data:`MIN_EVAL_S` is never reduced.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass
from typing import Any

MIN_PROMPTS = 2
"""Prompts an eval keeps at least (unique-token shares across fewer than two read as one prompt's loop)."""
STEPS_KEPT = 64
"""Recent step times the planner's median rests on."""
HEADROOM = 0.9
"""The planner aims at this share of what an eval may take: the same eval's time varies by several percent."""
MIN_EVAL_S = 1.0
"""A full eval shorter than this is never reduced: it costs a run little whatever its steps, and the detector keeps
its whole sample (a toy model's eval is long next to its steps, and short)."""


@dataclass(frozen=True)
class EvalSize:
    """How much one eval reads: held-out batches, prompts, greedy tokens per prompt."""

    batches: int
    prompts: int
    tokens: int

    def reduced_from(self, full: EvalSize) -> dict[str, Any]:
        """The eval event's ``reduced`` field: ``{what: [used, of]}`` for what is below ``full``; {} when nothing."""
        pairs = {"val_batches": (self.batches, full.batches), "prompts": (self.prompts, full.prompts),
                 "gen_tokens": (self.tokens, full.tokens)}
        return {k: [u, f] for k, (u, f) in pairs.items() if u < f} if self != full else {}


def min_tokens(tokens: int, repetition_collapsed: float) -> int:
    """The shortest continuation in which a two-token loop still repeats at ``repetition_collapsed`` or more
    (1 - 2/n >= r), capped at the configured ``tokens``."""
    need = math.ceil(2 / max(1e-9, 1 - repetition_collapsed) - 1e-9) if repetition_collapsed < 1 else tokens
    return min(tokens, max(need, 2))


class EvalBudget:
    """Plans each eval's size from the step time the Monitor sees and the last eval's cost (module docstring)."""

    def __init__(self, share: float | None, eval_every: int, full: EvalSize, *, floor_tokens: int) -> None:
        self.share, self.eval_every, self.full = share, eval_every, full
        self.floor = EvalSize(min(1, full.batches), min(MIN_PROMPTS, full.prompts), min(floor_tokens, full.tokens))
        self.size = full
        """The size the next eval uses (and the last one used)."""
        self._steps: deque[float] = deque(maxlen=STEPS_KEPT)
        self._last: float | None = None
        self._inside = 0.0
        self._costs: tuple[float, float, float] | None = None
        """Seconds per held-out batch, per generated token (prompt x token), and the rest of an eval."""

    # -- what the Monitor tells it ------------------------------------------------------------------------
    def step_began(self, now: float) -> None:
        """A ``step()`` call began at ``now`` (``time.perf_counter()``); a step's time runs from one call's start to
        the next's, less the evals in between (the first call only starts the clock). The planner takes the median
        of the recent ones, so a step with a pause, a checkpoint or a weight snapshot in it does not move it."""
        if self._last is not None:
            self._steps.append(max(0.0, now - self._last - self._inside))
        self._last, self._inside = now, 0.0

    def eval_took(self, size: EvalSize, total_s: float, heldout_s: float, generate_s: float) -> None:
        """An eval of ``size`` took ``total_s`` seconds, of which the held-out batches and decoding took these."""
        per_batch = heldout_s / size.batches if size.batches else 0.0
        tokens = size.prompts * size.tokens
        per_token = generate_s / tokens if tokens else 0.0
        self._costs = (per_batch, per_token, max(0.0, total_s - heldout_s - generate_s))
        self._inside += total_s

    # -- what it answers ----------------------------------------------------------------------------------
    def step_time(self) -> float | None:
        """The loop's median step time lately, without the Monitor's own work; None before two steps."""
        return statistics.median(self._steps) if self._steps else None

    def allowed(self) -> float | None:
        """Seconds an eval may take: ``share`` of the wall time of ``eval_every`` steps and the eval."""
        step = self.step_time()
        if self.share is None or step is None:
            return None
        return self.share / (1 - self.share) * self.eval_every * step

    def cost(self, size: EvalSize) -> float | None:
        """Predicted seconds of an eval of ``size``, from the last eval's per-unit costs."""
        if self._costs is None:
            return None
        per_batch, per_token, rest = self._costs
        return rest + size.batches * per_batch + size.prompts * size.tokens * per_token

    def plan(self) -> EvalSize:
        """The size of the next eval: the full one when it fits (or nothing is known yet), else the largest that
        fits, reducing held-out batches, then prompts, then tokens, down to the floors."""
        allowed, full = self.allowed(), self.full
        full_s = self.cost(full)
        if allowed is None or self._costs is None or full_s is None or full_s <= max(allowed, MIN_EVAL_S):
            self.size = full
            return full
        allowed *= HEADROOM
        per_batch, per_token, rest = self._costs
        gen = full.prompts * full.tokens * per_token
        batches = _fit(allowed - rest - gen, per_batch, self.floor.batches, full.batches)
        left = allowed - rest - batches * per_batch  # what decoding may take
        prompts, tokens = full.prompts, full.tokens
        if prompts * tokens * per_token > left:
            prompts = _fit(left, tokens * per_token, self.floor.prompts, full.prompts)
            if prompts * tokens * per_token > left:
                tokens = _fit(left, prompts * per_token, self.floor.tokens, full.tokens)
        self.size = EvalSize(batches, prompts, tokens)
        return self.size

    def reason(self) -> str:
        """Why the current size is what it is, in figures (for the alert)."""
        step, allowed, cost = self.step_time(), self.allowed(), self.cost(self.full)
        if step is None or allowed is None or cost is None or self.share is None:
            return ""
        return (f"a full eval takes about {cost:.2f} s against steps of {step * 1e3:.0f} ms: "
                f"{cost / (cost + self.eval_every * step):.1%} of wall time at eval_every={self.eval_every}, "
                f"over the eval_budget of {self.share:.0%}")


def _fit(seconds: float, unit: float, lo: int, hi: int) -> int:
    """How many units of ``unit`` seconds fit in ``seconds``, within [lo, hi]."""
    if unit <= 0:
        return hi
    return max(lo, min(hi, int(seconds // unit)))
