"""The detector's words: what a state means and the figures behind it, generated from the thresholds that
decided it (so an alert never says more than its numbers)."""

from __future__ import annotations

import math
from typing import Protocol

from bitnet_tui.session.analysis.thresholds import SCALE_SHOWN, DetectorConfig, EvalFigures


class Judge(Protocol):
    """What the words read of a detector."""

    cfg: DetectorConfig
    ln_vocab: float | None
    unigram_entropy: float | None
    state: str
    low: bool
    losses: list[float]
    min_loss: float | None
    min_step: int | None
    peak_scale: float | None
    last_scale: float | None

    def loss_now(self) -> float | None: ...
    def uniform_floor(self) -> float | None: ...
    def unigram_top(self) -> float | None: ...
    def learned_ceiling(self) -> float | None: ...
    def unlearning(self, loss: float) -> bool: ...


WHILE = {False: "while the loss is not improving",
         True: "even though the loss still falls (the full-precision parts learn; the ternary layers carry ever less)"}
"""How the decay alert describes the loss beside the scale's fall (improving or not)."""


def finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def varied(d: Judge, f: EvalFigures) -> str:
    """Why greedy output reads as varied: each figure against its threshold."""
    c = d.cfg
    parts = [f"{f.share:.1%} unique > {c.collapsing_share:.0%}"]
    if f.distinct2 is not None:
        parts.append(f"distinct-2 {f.distinct2:.2f} >= {c.diverse_distinct2:.2f}")
    if f.repetition is not None:
        parts.append(f"per-prompt repetition {f.repetition:.0%} < {c.repetition_collapsed:.0%}")
    return ", ".join(parts)


def says(d: Judge, state: str, f: EvalFigures) -> str:
    """What ``state`` means for this run, in the figures and thresholds that decided it."""
    c, loss = d.cfg, d.loss_now()
    floor, top, ceiling, h = d.uniform_floor(), d.unigram_top(), d.learned_ceiling(), \
        d.unigram_entropy
    lv = "?" if loss is None else f"{loss:.2f}"
    band = f"{ceiling:.2f}-{top:.2f}" if ceiling is not None and top is not None else ""
    if state == "not_learning" and floor is not None:
        return (f"the held-out loss has not gone below {floor:.2f} (ln V less {c.uniform_band:.0%} of the gap to "
                "the unigram entropy): the model has not started learning")
    if state == "partial" and top is not None and floor is not None:
        return (f"held-out loss {lv} is between the unigram band's top {top:.2f} and near uniform {floor:.2f}: the "
                "model has learned part of the token frequencies")
    if state == "unigram":
        where = f"within the unigram band {band} around the unigram entropy {h:.2f}" if band and h is not None \
            else "not below a unigram entropy (none known)"
        return f"unigram phase: held-out loss {lv} is {where}; greedy output is the most frequent tokens " \
            "(normal early on)"
    if state == "repetitive":
        learned = f"held-out loss {lv} is below {ceiling:.2f} (the model learned)" if ceiling is not None \
            else "no held-out loss"
        return f"{learned}, but greedy output is not varied yet (normal for a few evals)"
    if state in ("healthy", "recovered"):
        if loss is None:
            learned = "whether the model learned is not measured (no held-out loss)"
        elif ceiling is not None:
            learned = f"the model has learned (held-out loss went below {ceiling:.2f}, the unigram entropy less " \
                f"{c.learned_margin:.0%})"
        else:
            learned = "the held-out loss left ln V (no unigram entropy to judge learning by)"
        again = "diversity has recovered after a collapse; " if state == "recovered" else ""
        return f"{again}{learned}; greedy output is varied ({varied(d, f)})"
    if state == "collapsing":
        return f"greedy output is losing diversity (unique share at or below {c.collapsing_share:.0%} or " \
            f"distinct-2 below {c.diverse_distinct2:.2f})"
    if state == "collapsed":
        return f"degenerate decoding: greedy output uses only a handful of tokens (unique share at or below " \
            f"{c.collapse_share:.0%} or per-prompt repetition at or above {c.repetition_collapsed:.0%})"
    if state == "recovering":
        return f"diversity is coming back after a collapse (not yet {c.recovered_share:.0%} unique)"
    if state == "unlearning":
        return (f"the held-out loss went down and has climbed back at least {c.unlearn_rise:.0%} of the way "
                "toward ln V: the model is unlearning")
    return state


def thresholds(d: Judge, generated: int) -> str:
    c = d.cfg
    n = max(generated, 1)
    return (f"thresholds: collapsed <= {c.collapse_share:.0%} ({c.collapse_share * n:.0f}/{n}), collapsing <= "
            f"{c.collapsing_share:.0%}, recovered >= {c.recovered_share:.0%}, repetition >= "
            f"{c.repetition_collapsed:.0%}, distinct-2 >= {c.diverse_distinct2:.2f} to read as varied")


def evidence(d: Judge, f: EvalFigures) -> str:
    parts = [f"{f.unique}/{f.generated} unique tokens ({f.share:.1%})"]
    if f.distinct2 is not None:
        parts.append(f"distinct-2 {f.distinct2:.2f}")
    if f.repetition is not None:
        parts.append(f"per-prompt repetition {f.repetition:.0%}")
    loss = d.loss_now()
    if loss is None:
        parts.append("no held-out loss (judged on the samples alone)")
    else:
        parts.append(loss_words(d, f, loss))
        if d.ln_vocab is not None:
            base = f"ln V {d.ln_vocab:.2f}"
            if d.unigram_entropy is not None:
                base += f", unigram {d.unigram_entropy:.2f}"
            parts.append(base)
        if d.min_loss is not None and (d.state == "unlearning" or d.unlearning(loss)):
            parts.append(f"lowest {d.min_loss:.3f} at step {d.min_step}")
    if f.entropy is not None and math.isfinite(f.entropy):
        parts.append(f"predictive entropy {f.entropy:.2f}")
    if d.peak_scale and d.last_scale and d.peak_scale / d.last_scale >= SCALE_SHOWN:
        parts.append(f"ternary scale {d.last_scale:.3g} (peak {d.peak_scale:.3g})")
    return ", ".join(parts)


def loss_words(d: Judge, f: EvalFigures, median: float) -> str:
    """This eval's own held-out loss under its own label; the window's median, what states are judged by,
    labelled as such beside it."""
    own, n = finite(f.val_loss), len(d.losses[-d.cfg.window:])
    med = f"median of the last {n} evals {median:.3f}"
    if own is None:
        return f"no held-out loss at this eval ({med})"
    return f"held-out loss {own:.3f}" + (f" ({med})" if n > 1 else "")


REDUCED = (("val_batches", "held-out batches"), ("prompts", "prompts"), ("gen_tokens", "greedy tokens per prompt"))
"""The keys of an eval's ``reduced`` field (what it used of what it was given), in the order they are reduced."""


def reduced_words(reduced: object) -> str:
    """An eval's ``reduced`` field (``{"val_batches": [2, 16], ...}``) as words: "2 of 16 held-out batches"."""
    if not isinstance(reduced, dict):
        return ""
    parts = []
    for key, label in REDUCED:
        v = reduced.get(key)
        if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, int) for x in v):
            parts.append(f"{v[0]} of {v[1]} {label}")
    return ", ".join(parts)
