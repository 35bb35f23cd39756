"""``diagnose``: the verdict a person would write after reading the dashboards.

Which disease (never learned, unigram phase, stuck unigram phase, unlearning with decaying weights,
degenerate decoding after learning, healthy), when it began, the figures that show it, the likely causes
ranked by the evidence for each (the optimizer audit, the ternary scales, the flip rate, the LR history,
interventions), and what to try as a command. Every cause is a hypothesis with its evidence beside it:
the ranking says which one the figures support most, not that it is proven.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from typing import Any

from bitnet_tui.session.analysis import verdict as V
from bitnet_tui.session.analysis.fold import RunFold
from bitnet_tui.session.analysis.summary import Summary
from bitnet_tui.session.log.events import FAILED_ENDS, jsonable
from bitnet_tui.session.text import fmt_num, fmt_value, printable

DISEASES = {
    V.NO_EVALS: "no evals yet", V.DIVERGED: "diverged", V.NEVER_LEARNED: "never learned",
    V.UNIGRAM_PHASE: "unigram phase", V.STUCK_UNIGRAM: "stuck in the unigram phase",
    V.UNLEARNED: "unlearning", V.NEVER_DIVERSE: "degenerate decoding after learning",
    V.COLLAPSING: "degenerate decoding after learning", V.COLLAPSED_STAYED: "degenerate decoding after learning",
    V.COLLAPSED_RECOVERING: "degenerate decoding after learning (recovering)",
    V.COLLAPSED_RECOVERED: "healthy (recovered from degenerate decoding)", V.HEALTHY: "healthy",
}

TROUBLE = (V.UNLEARNED, V.NEVER_LEARNED, V.STUCK_UNIGRAM, V.DIVERGED, V.NEVER_DIVERSE, V.COLLAPSED_STAYED,
           V.COLLAPSING, V.COLLAPSED_RECOVERING)
"""Ends that are a problem (the unigram phase early on and a recovered collapse are not)."""


@dataclass
class Cause:
    title: str
    evidence: str
    score: float
    """How strongly the run's figures point at it (for ranking; not a probability)."""


@dataclass
class Diagnosis:
    name: str
    path: str
    disease: str
    verdict: str
    began: int | None
    figures: list[tuple[str, str]] = field(default_factory=list)
    causes: list[Cause] = field(default_factory=list)
    tries: list[tuple[str, str]] = field(default_factory=list)
    """(what, command)."""
    trouble: bool = False
    """Whether the run ended in trouble (then ``causes`` are hypotheses for it; else settings worth knowing)."""
    decayed: float | None = None
    """In trouble with the decay alert raised: how many times the mean ternary scale fell from its peak."""
    ended_well: bool = False
    """The run has ended (``run_ended`` finished or stopped) and its last window is healthy: only then may a
    screen say it ended well."""
    failed: str = ""
    """How the run failed, when it did (``error at step 37: RuntimeError: ...``): the log's ``run_ended``."""

    def headline(self, short: bool = False) -> str:
        """The disease, with the weights' decay where it goes with it; a failed run's end first."""
        state = self.disease
        if self.decayed is not None:
            state = f"{state}; scale ÷{self.decayed:.0f}" if short else \
                f"{state}, with the weights decaying (mean ternary scale ÷{self.decayed:.1f} from its peak)"
        if not self.failed:
            return state
        if short:
            return f"{self.failed.split(':')[0]}; {state}"
        return f"the run failed ({self.failed}); until then: {state}"

    def to_json(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def diagnose(s: Summary, fold: RunFold, checkpoints: list[int]) -> Diagnosis:
    """Diagnose one session from its summary, its fold (the LR history, flip rates) and its checkpoint steps."""
    disease = DISEASES.get(s.verdict, s.verdict)
    if s.verdict == V.UNLEARNED and (s.scale_fall or 0) >= 2:
        disease = "unlearning with decaying weights"
    ep = episodes(fold)
    if ep and s.verdict != V.UNLEARNED:
        disease += "; " + ", ".join(f"{state} from step {a}" + (f" to {b}" if b is not None else "")
                                    for state, a, b in ep)
    began = s.min_loss_step if s.verdict == V.UNLEARNED else s.collapse_step if s.collapse_step is not None \
        else s.verdict_since
    d = Diagnosis(s.name, s.path, disease, s.verdict, began)
    d.figures = _figures(s, fold)
    d.causes = sorted(_causes(s, fold), key=lambda c: -c.score)
    fall = _scale_fall(s, fold)
    d.trouble = s.verdict in TROUBLE or any(state == "unlearning" for state, _, _ in ep)
    k = fold.thresholds.decay_factor  # the run's own threshold, as its detector judged
    d.trouble = d.trouble or fall >= k  # a measured fall past the threshold is trouble whatever the loss says
    if d.trouble and s.verdict != V.UNLEARNED and fall >= k and any(i.code == "decay" for i in fold.timeline):
        d.decayed = fall
    end = fold.ended
    if end is not None and end.reason in FAILED_ENDS and s.verdict != V.DIVERGED:  # diverged says it already
        d.failed = f"{printable(end.reason, 40)} at step {end.step}" + (f": {printable(end.error, 300)}"
                                                                         if end.error else "")
    d.ended_well = end is not None and not d.failed and not d.trouble and s.verdict in (V.HEALTHY,
                                                                                       V.COLLAPSED_RECOVERED)
    d.tries = _tries(s, d, checkpoints)
    return d


def episodes(fold: RunFold) -> list[tuple[str, int, int | None]]:
    """(state, from step, to step or None) of every unlearning or collapsed stretch the detector logged."""
    out: list[tuple[str, int, int | None]] = []
    open_: tuple[str, int] | None = None
    for step, state in fold.transitions:
        if open_ is not None and state != open_[0]:
            out.append((open_[0], open_[1], step))
            open_ = None
        if state in ("unlearning", "collapsed") and open_ is None:
            open_ = (state, step)
    if open_ is not None:
        out.append((open_[0], open_[1], None))
    return out


def _figures(s: Summary, fold: RunFold) -> list[tuple[str, str]]:
    if s.min_loss is None and s.evals:
        out = [("held-out loss", "none measured: the state is read from the greedy samples alone (a Monitor "
                                 "measures it when given val_batches)")]
    else:
        out = [("held-out loss now", fmt_value(s.last_val_loss)),
               ("lowest held-out loss", "—" if s.min_loss is None else f"{s.min_loss:.3f} at step {s.min_loss_step}")]
    out.insert(1, ("ln(vocab) / unigram entropy", f"{fmt_value(s.ln_vocab)} / {fmt_value(s.unigram_entropy)}"))
    if s.last_unique is not None:
        out.append(("unique tokens (greedy)", f"{s.last_unique}/{s.generated} (lowest {s.min_unique} at step "
                                              f"{s.min_unique_step})"))
    e = fold.last_eval
    if e is not None:
        out.append(("distinct-2 / per-prompt repetition", f"{e.distinct2:.2f} / {fmt_value(e.repetition)}"))
        if e.report_unique is not None:
            out.append(("the report's metric", f"{e.report_unique}/{e.report_prompts} (20 random prompts, one argmax "
                                               "each: noisy near a uniform model)"))
    if fold.scales:
        peak = max(fold.scales, key=lambda p: p[1])
        out.append(("mean ternary scale", f"{fold.scales[-1][1]:.3g} now, peak {peak[1]:.3g} at step {peak[0]}"))
    flips = _flip_now(fold)
    if flips is not None:
        out.append(("flip rate (last snapshot)", f"{flips:.3f}"))
    first = fold.first_weights
    for label, now, then in (("norm gain (mean |g|)", s.norm_gain, first.norm_gain if first else None),
                             ("embedding RMS", s.embed_norm, first.embed_norm if first else None)):
        if now is not None:
            was = f", {fmt_value(then)} at step {first.step}" if then is not None and first is not None else ""
            out.append((label, f"{fmt_value(now)} now{was}"))
    out.append(("LR changes", str(len(fold.lr_changes))))
    return out


def _scale_fall(s: Summary, fold: RunFold) -> float:
    """How many times the mean ternary scale is below its peak now (1 when it never fell): the figure the
    weights panel and ``summary`` show."""
    peak = max((v for _, v in fold.scales), default=0.0)
    now = fold.scales[-1][1] if fold.scales else 0.0
    return max(s.scale_fall or 1.0, peak / now if peak and now > 0 else 1.0)


def _full_precision_falls(s: Summary, fold: RunFold) -> list[tuple[str, float]]:
    """The full-precision parameters (norm gains, embedding) that shrank 4x or more since the first snapshot."""
    first, out = fold.first_weights, []
    if first is None:
        return out
    for what, then, now in (("mean norm gain", first.norm_gain, s.norm_gain),
                            ("embedding RMS", first.embed_norm, s.embed_norm)):
        if then is not None and now is not None and now > 0 and then / now >= 4:
            out.append((what, then / now))
    return out


def _flip_now(fold: RunFold) -> float | None:
    w = fold.last_weights
    if w is None:
        return None
    vals = [lw.flip_rate for lw in w.layers if lw.flip_rate == lw.flip_rate]
    return sum(vals) / len(vals) if vals else None


def _causes(s: Summary, fold: RunFold) -> list[Cause]:
    out: list[Cause] = []
    audit = {a.get("code"): a for a in s.audit}
    fall = _scale_fall(s, fold)
    k = fold.thresholds.decay_factor
    unlearned = s.verdict == V.UNLEARNED or any(state == "unlearning" for state, _, _ in episodes(fold))
    decayed = [i for i in fold.timeline if i.code == "decay"]
    bad_end = s.verdict in TROUBLE or unlearned or bool(decayed) or fall >= k
    if "coupled-l2" in audit:
        ev = audit["coupled-l2"]["message"]
        score = 1.0 + (2.0 if fall >= k else 1.0 if fall >= k / 2 else 0.0) + (2.0 if unlearned else 0.0) + \
            (1.0 if decayed else 0.0)
        if fall > 1.5:
            ev += f"; the mean ternary scale is {fall:.1f}x below its peak"
        if decayed:
            ev += f"; the detector saw the weights decaying at step {decayed[0].step}"
        for what, fell in _full_precision_falls(s, fold):
            ev += f"; the {what} fell {fell:.0f}x"
        out.append(Cause("the optimizer: Adam with coupled L2 weight decay", ev, score if bad_end else 0.2))
    elif fall >= k and (unlearned or decayed):
        out.append(Cause("weight decay shrinking the latent weights",
                         f"the mean ternary scale fell {fall:.1f}x from its peak while the loss climbed back", 2.5))
    if "decay-all" in audit:
        out.append(Cause("weight decay on norm gains and embeddings", audit["decay-all"]["message"],
                         0.8 if bad_end else 0.1))
    lr = s.key_config.get("lr")
    if s.verdict == V.DIVERGED:
        out.append(Cause("the LR is too high for this run",
                         f"the loss became non-finite at peak LR {fmt_value(lr)}", 3.0))
    if "lr-far" in audit:
        out.append(Cause("a peak LR far from the BitNet FAQ's", audit["lr-far"]["message"], 0.5 if bad_end else 0.1))
    flips = _flip_now(fold)
    if flips is not None and bad_end:
        if flips > 0.3:
            if fall >= k:  # latent weights shrunk toward the rounding boundary flip at every step: a symptom
                out.append(Cause("ternary weights thrashing", f"{flips:.0%} of ternary values flipped since the "
                                 f"last snapshot; with the scale {fall:.1f}x below its peak the latent weights sit "
                                 "near the rounding boundary, so this follows from the decay", 0.3))
            else:
                out.append(Cause("ternary weights thrashing", f"{flips:.0%} of ternary values flipped since the "
                                 "last snapshot", 0.6))
        elif flips < 1e-3 and s.verdict in (V.NEVER_LEARNED, V.STUCK_UNIGRAM):
            out.append(Cause("ternary weights frozen", f"flip rate {flips:.4f}: the weights barely change", 0.6))
    if fold.lr_changes and bad_end:
        first = fold.lr_changes[0][0]
        out.append(Cause("a person's LR change", f"{len(fold.lr_changes)} LR change(s), the first at step {first}",
                         0.4))
    if s.verdict in (V.UNIGRAM_PHASE, V.NEVER_LEARNED) and s.last_step < 500:
        # a guess from the step count alone: below every cause with a measured figure behind it
        out.append(Cause("the run is short", f"it stopped at step {s.last_step}; models leave the unigram phase "
                         "after a few hundred steps here", 0.1 if bad_end else 1.0))
    if s.verdict in (V.NEVER_DIVERSE, V.COLLAPSED_STAYED, V.COLLAPSING):
        out.append(Cause("a small model decoding greedily", "greedy decoding of small models loops; the loss says "
                         "it learned (see the held-out loss against the unigram entropy)", 0.5))
    return out


def _tries(s: Summary, d: Diagnosis, checkpoints: list[int]) -> list[tuple[str, str]]:
    name = s.name
    before = [c for c in checkpoints if d.began is None or c <= d.began]
    at = f"{name}@{before[-1]}" if before else (f"{name}@{checkpoints[0]}" if checkpoints else "")
    out: list[tuple[str, str]] = []
    top = d.causes[0].title if d.causes and d.causes[0].score >= 1 else ""
    fixes: list[tuple[list[str], tuple[str, ...], str]] = []  # (flags to add, flags to drop, what it changes)
    if "Adam with coupled" in top or "weight decay shrinking" in top:
        fixes.append((["--optimizer", "adamw"], ("--optimizer",), "AdamW (decoupled decay)"))
    if "norm gains" in top or any("norm gains" in c.title for c in d.causes[:2]):
        fixes.append((["--no-decay-all"], ("--decay-all", "--no-decay-all"), "decay on 2-D weights only"))
    low = s.min_loss_step
    good = [c for c in checkpoints if low is not None and c <= low]
    for add, drop, what in fixes:
        if not d.trouble:  # nothing declined: a setting worth an A/B, not a rescue
            out.append((f"to see whether it matters, run it again with {what}",
                        same_run_with(s.argv, add, drop) or f"the same training with {' '.join(add)}"))
            continue
        if good:
            out.append((f"fork from step {good[-1]}, before the decline (lowest held-out loss at step {low}), "
                        f"with {what}", f"bitnet-tui run --from {name}@{good[-1]} {' '.join(add)}"))
            continue
        why = "no checkpoint was kept from before the decline" + (f" at step {low}" if low is not None else "")
        if checkpoints:
            why += "; the kept ones hold the decayed weights"
        again = same_run_with(s.argv, add, drop)
        out.append((f"start the run again with {what} ({why})",
                    again or f"the same training with {' '.join(add)}"))
    if s.verdict == V.DIVERGED and at:
        lr = s.key_config.get("lr")
        half = fmt_num(float(lr) / 2) if isinstance(lr, (int, float)) else "<half the LR>"
        out.append(("fork from the last checkpoint with half the LR", f"bitnet-tui run --from {at} --lr {half}"))
    if s.verdict in (V.UNIGRAM_PHASE, V.STUCK_UNIGRAM, V.NEVER_LEARNED) and checkpoints and not fixes:
        steps = s.total_steps or s.last_step
        out.append(("train longer", f"bitnet-tui run --resume {name} --steps {max(steps * 2, 1000)}"))
    if s.verdict in (V.NEVER_DIVERSE, V.COLLAPSED_STAYED, V.COLLAPSING) and at:
        out.append(("look at the samples where diversity fell", f"bitnet-tui replay {name}   (then n/N to jump)"))
    if not out:
        out.append(("nothing to fix; compare with other runs", f"bitnet-tui compare {name} <other sessions>"))
    return out


ONE_RUN_ONLY = ("--session-file", "--detach", "--resume")
"""Flags of a ``run`` command line that belong to that one run and are not carried into a new one."""


def same_run_with(argv: tuple[str, ...], add: list[str], drop: tuple[str, ...]) -> str | None:
    """The ``bitnet-tui run`` command line recorded in a header, with the flags in ``drop`` (and their values)
    removed and ``add`` appended; None when the run was not started by ``bitnet-tui run`` (a user's loop)."""
    if len(argv) < 2 or argv[1] != "run" or not ("bitnet" in argv[0] or argv[0].endswith("__main__.py")):
        return None
    out: list[str] = []
    rest = list(argv[2:])
    while rest:
        arg = rest.pop(0)
        flag = arg.split("=", 1)[0]
        if flag in drop or flag in ONE_RUN_ONLY:
            if "=" not in arg and flag not in ("--detach", "--decay-all", "--no-decay-all") and rest \
                    and not rest[0].startswith("--"):
                rest.pop(0)  # its value
            continue
        out.append(arg)
    return shlex.join(["bitnet-tui", "run", *out, *add])
