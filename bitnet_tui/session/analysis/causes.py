"""The likely causes of a run's trouble, each with a stable code, its evidence, and a rank from one table.

Every cause is a hypothesis. It is ranked by the kind of evidence behind it (:data:`TIERS`), never by a
free-floating score: a figure measured past the run's own threshold outranks a figure pointing the same
way, which outranks the configuration alone, which outranks a guess from the step count. Within a tier,
the order of :data:`RULES` holds (the root cause before its symptoms). The same table is in
docs/diagnosis.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bitnet_tui.session.analysis.thresholds import DECAY_REARM

TIERS = {
    1: "measured past the run's own threshold",
    2: "measured, pointing at it, below the threshold",
    3: "a setting (the optimizer audit) or a known pattern, no figure of this run measuring it, in a run that "
       "went wrong",
    4: "a guess from the step count alone",
    5: "a setting worth knowing in a run with no trouble measured",
}
"""The evidence behind a cause, strongest first: what a cause's rank means."""


@dataclass(frozen=True)
class Rule:
    code: str
    title: str
    why: str
    """When it is a cause, and what decides its tier."""


RULES = (
    Rule("nonfinite", "the LR is too high for this run",
         "tier 1 when the held-out loss became non-finite"),
    Rule("coupled-l2", "the optimizer: Adam with coupled L2 weight decay",
         "audit found Adam(weight_decay>0); tier 1 when the mean ternary scale fell decay_factor x or the run "
         "un-learned, tier 2 when it fell half that or the decay alert fired, tier 3 in other trouble, else tier 5"),
    Rule("decay-shrinking", "weight decay shrinking the latent weights",
         "no coupled L2 found, but the scale fell decay_factor x while the run un-learned or the decay alert "
         "fired: tier 1"),
    Rule("decay-all", "weight decay on norm gains and embeddings",
         "audit found decay on them; tier 1 when a norm gain or the embedding RMS fell decay_factor x, tier 3 "
         "in other trouble, else tier 5"),
    Rule("dead-layers", "ternary layers entirely zero",
         "a layer with 99.9% of its ternary weights at 0 in the last snapshot, in trouble: tier 1, or tier 3 when the "
         "scale fell decay_factor x (then it follows from the decay)"),
    Rule("frozen", "ternary weights frozen",
         "flip rate below 1e-3 in a run that never learned: tier 2"),
    Rule("thrashing", "ternary weights thrashing",
         "over 30% of ternary values flipped since the last snapshot in trouble: tier 2, or tier 3 when the scale "
         "fell decay_factor x (then it follows from the decay)"),
    Rule("greedy-small", "a small model decoding greedily",
         "greedy output degenerate while the loss says the model learned: tier 3"),
    Rule("lr-far", "a peak LR far from the BitNet FAQ's",
         "audit found it; tier 3 in trouble, else tier 5"),
    Rule("lr-change", "a person's LR change", "an LR intervention in a run that went wrong: tier 3"),
    Rule("short", "the run is short",
         "not learned yet and stopped before SHORT_RUN steps: tier 4, below every measured cause"),
    # issue 23's measured diseases (session/analysis/diseases.py: the rules, their thresholds, DiseaseConfig):
    # tier 1 while the rule's alert is on at the end (an event, spike or shock: once raised), tier 2 when it was
    # raised and has since cleared. The titles are diseases.CODES.
    Rule("loss-spike", "loss spikes", "a step's loss spike_z sd (and spike_min_rise nats) above its window's "
         "mean: tier 1 once raised"),
    Rule("update-ratio", "update/weight ratio too high", "a layer's one-step update/weight ratio at or above "
         "ratio_high at a snapshot: tier 1 while on, tier 2 once below ratio_high_leave"),
    Rule("frozen-layer", "frozen layer", "a layer's update/weight ratio at or below ratio_frozen with no flip "
         "while others moved: tier 1 while on, tier 2 once it moves"),
    Rule("act-clip", "8-bit activation outliers", "clip_zero or more of a BitLinear input's int8 values round "
         "to 0 at an eval: tier 1 while on, tier 2 once at or below clip_zero_leave"),
    Rule("attn-entropy", "attention entropy collapse", "a layer's mean normalised attention entropy below "
         "entropy_low at an eval: tier 1 while on, tier 2 once above entropy_leave"),
    Rule("attn-logit", "attention logit growth", "the largest q.k/sqrt(d) at or above attn_logit_high at an "
         "eval: tier 1 while on, tier 2 once below attn_logit_leave"),
    Rule("logit-z", "output logit divergence", "the output's mean log Z log_z_drift or more from its first "
         "measured value: tier 1 while on, tier 2 once within log_z_leave"),
    Rule("flip-back", "weights oscillating at the rounding boundary", "flip_back_high or more of the flips "
         "since the last snapshot went back, flip rate >= flip_min: tier 1 while on, tier 2 once cleared"),
    Rule("quant-shock", "quantisation shock", "the mean loss shock_rise nats higher over the shock_steps after "
         "a stage change: tier 1 once raised"),
)
BY_CODE = {r.code: r for r in RULES}
FIXED_BY = {"decouple": "coupled-l2", "no_decay_on": "decay-all", "set_wd": "decay-shrinking"}
"""A live intervention (its action) -> the cause it fixes."""
SHORT_RUN = 500
"""Steps below which a run that has not learned may simply be short: the default width-128 run leaves the
unigram band by step 150-250 on the bundled corpus (measured)."""
THRASHING = 0.3
"""Share of ternary values flipped between snapshots that reads as thrashing."""
FROZEN = 1e-3
"""Flip rate below which the ternary weights barely change."""


@dataclass
class Cause:
    code: str
    title: str
    evidence: str
    tier: int
    """The kind of evidence behind it (:data:`TIERS`)."""
    fixed: str = ""
    """How it was fixed in the running process, when it was (then no fix is offered again)."""

    @property
    def evidence_kind(self) -> str:
        return TIERS[self.tier]


@dataclass(frozen=True)
class Evidence:
    """What the causes are judged from (every figure the run's own; ``k`` its decay threshold)."""

    audit: dict[str, str]
    """Audit code -> message."""
    trouble: bool
    diverged: bool
    unlearned: bool
    decay_alert_step: int | None
    fall: float
    k: float
    full_precision_falls: Sequence[tuple[str, float]]
    flips: float | None
    never_learned: bool
    not_learned_yet: bool
    degenerate: bool
    lr: object
    lr_changes: Sequence[int]
    last_step: int
    fixed: dict[str, str] = field(default_factory=dict)
    """Cause code -> how it was fixed in the running process and what followed (a live intervention not undone)."""
    dead: Sequence[str] = ()
    """Ternary layers entirely zero in the last snapshot."""
    diseases: Sequence[Any] = ()
    """The measured diseases' causes (:func:`~bitnet_tui.session.analysis.diseases.disease_causes`)."""


def cause(code: str, evidence: str, tier: int) -> Cause:
    return Cause(code, BY_CODE[code].title, evidence, tier)


def causes(e: Evidence) -> list[Cause]:
    """Every cause the evidence supports, ranked: by tier, then by the order of :data:`RULES`."""
    out: list[Cause] = []
    past, half = e.fall >= e.k, e.fall >= e.k * DECAY_REARM
    if e.diverged:
        out.append(cause("nonfinite", f"the held-out loss became non-finite at peak LR {e.lr}", 1))
    if "coupled-l2" in e.audit:
        ev = e.audit["coupled-l2"]
        if e.fall > 1.5:
            ev += f"; the mean ternary scale is {e.fall:.1f}x below its peak (threshold {e.k:g}x)"
        if e.decay_alert_step is not None:
            ev += f"; the detector saw the weights decaying at step {e.decay_alert_step}"
        if e.unlearned:
            ev += "; the held-out loss climbed back toward ln(vocab)"
        for what, fell in e.full_precision_falls:
            ev += f"; the {what} fell {fell:.0f}x"
        tier = 1 if past or e.unlearned else 2 if half or e.decay_alert_step is not None else 3 if e.trouble else 5
        out.append(cause("coupled-l2", ev, tier))
    elif past and (e.unlearned or e.decay_alert_step is not None):
        out.append(cause("decay-shrinking", f"the mean ternary scale fell {e.fall:.1f}x from its peak (threshold "
                                            f"{e.k:g}x) while the loss was not improving", 1))
    if "decay-all" in e.audit:
        ev, fp = e.audit["decay-all"], [f for f in e.full_precision_falls if f[1] >= e.k]
        if fp:
            ev += "; " + "; ".join(f"the {what} fell {fell:.0f}x" for what, fell in fp)
        out.append(cause("decay-all", ev, 1 if fp and e.trouble else 3 if e.trouble else 5))
    if e.dead and e.trouble:
        shown = ", ".join(e.dead[:4]) + (f" and {len(e.dead) - 4} more" if len(e.dead) > 4 else "")
        follows = "; with the scale this far below its peak it follows from the decay" if past else ""
        out.append(cause("dead-layers", f"{len(e.dead)} ternary layer(s) round every weight to 0 ({shown}): they "
                                        f"pass nothing{follows}", 3 if past else 1))
    if e.flips is not None and e.trouble:
        if e.flips < FROZEN and e.never_learned:
            out.append(cause("frozen", f"flip rate {e.flips:.4f}: the weights barely change", 2))
        elif e.flips > THRASHING:
            follows = f"; with the scale {e.fall:.1f}x below its peak the latent weights sit near the rounding " \
                "boundary, so this follows from the decay" if past else ""
            out.append(cause("thrashing", f"{e.flips:.0%} of ternary values flipped since the last snapshot"
                                          f"{follows}", 3 if past else 2))
    if e.degenerate:
        out.append(cause("greedy-small", "greedy decoding of small models loops; the loss says it learned (see the "
                                         "held-out loss against the unigram entropy)", 3))
    if "lr-far" in e.audit:
        out.append(cause("lr-far", e.audit["lr-far"], 3 if e.trouble else 5))
    if e.lr_changes and e.trouble:
        out.append(cause("lr-change", f"{len(e.lr_changes)} LR change(s), the first at step {e.lr_changes[0]}", 3))
    if e.not_learned_yet and e.last_step < SHORT_RUN:
        out.append(cause("short", f"it stopped at step {e.last_step}, before {SHORT_RUN}; models here leave the "
                                  "unigram band after a few hundred steps", 4))
    out += [cause(x.code, x.evidence, x.tier) for x in e.diseases]  # issue 23 (session/analysis/diseases.py)
    for c in out:
        if c.code in e.fixed:
            c.fixed = e.fixed[c.code]
            c.evidence += f"; {c.fixed}"
    order = {r.code: i for i, r in enumerate(RULES)}
    return sorted(out, key=lambda c: (c.tier, order[c.code]))


def rules_table() -> str:
    """The ranking rules as a Markdown table (docs/diagnosis.md holds its output)."""
    rows = ["| code | cause | when, and its tier |", "|---|---|---|"]
    rows += [f"| `{r.code}` | {r.title} | {r.why} |" for r in RULES]
    tiers = ["| tier | evidence |", "|---|---|"] + [f"| {t} | {w} |" for t, w in TIERS.items()]
    return "\n".join(tiers) + "\n\n" + "\n".join(rows) + "\n"
