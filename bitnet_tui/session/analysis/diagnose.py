"""``diagnose``: the verdict a person would write after reading the dashboards.

Which disease (never learned, unigram phase, stuck unigram phase, unlearning with decaying weights,
degenerate decoding after learning, healthy), when it began, the figures that show it, the likely causes
ranked by the evidence for each (the optimizer audit, the ternary scales, the flip rate, the LR history,
interventions), and what to try as a command. Every cause is a hypothesis with its evidence beside it:
the ranking says which one the figures support most, not that it is proven.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bitnet_tui.session.analysis import verdict as V
from bitnet_tui.session.analysis.causes import FIXED_BY, Cause, Evidence, causes
from bitnet_tui.session.analysis.diseases import disease_causes, disease_tries
from bitnet_tui.session.analysis.fixes import FIXES, fill, in_their_terms, is_ours, live_command, same_run_with, values
from bitnet_tui.session.analysis.fold import RunFold
from bitnet_tui.session.analysis.summary import Summary
from bitnet_tui.session.analysis.thresholds import DEAD_ZERO
from bitnet_tui.session.analysis.words import reduced_words
from bitnet_tui.session.log.events import FAILED_ENDS, jsonable
from bitnet_tui.session.text import fmt_value, printable

DISEASES = {
    V.NO_EVALS: "no evals yet", V.DIVERGED: "diverged", V.NEVER_LEARNED: "never learned",
    V.TOO_EARLY: "too early to say (the loss has not left ln(vocab) yet)",
    V.PARTLY_LEARNED: "partly learned (above the unigram band)", V.STUCK_PARTLY: "partly learned, not improving",
    V.UNIGRAM_PHASE: "unigram phase", V.STUCK_UNIGRAM: "stuck in the unigram phase",
    V.NOT_YET_DIVERSE: "learned, greedy output not varied yet",
    V.UNLEARNED: "unlearning", V.NEVER_DIVERSE: "degenerate decoding after learning",
    V.COLLAPSING: "degenerate decoding after learning", V.COLLAPSED_STAYED: "degenerate decoding after learning",
    V.COLLAPSED_RECOVERING: "degenerate decoding after learning (recovering)",
    V.COLLAPSED_RECOVERED: "healthy (recovered from degenerate decoding)", V.HEALTHY: "healthy",
}

TROUBLE = (V.UNLEARNED, V.NEVER_LEARNED, V.STUCK_UNIGRAM, V.STUCK_PARTLY, V.DIVERGED, V.NEVER_DIVERSE,
           V.COLLAPSED_STAYED, V.COLLAPSING, V.COLLAPSED_RECOVERING)
"""Ends that are a problem (the unigram phase early on and a recovered collapse are not)."""
NOT_YET = (V.TOO_EARLY, V.PARTLY_LEARNED, V.UNIGRAM_PHASE)
"""Not learned yet, without the evidence to call it stuck."""
DEGENERATE = (V.NEVER_DIVERSE, V.COLLAPSED_STAYED, V.COLLAPSING)


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
    running: bool = False
    """No ``run_ended`` yet: the verdict is about the run so far."""
    step: int = 0
    """The last step the log holds."""
    ended: str = ""
    """How the log's ``run_ended`` says it ended (``finished at step 300``), once it has."""
    live: bool = False
    """It serves its control socket: a fix can be applied in the running process."""

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


def diagnose(s: Summary, fold: RunFold, checkpoints: list[int], *, live: bool = False) -> Diagnosis:
    """Diagnose one session from its summary, its fold (the LR history, flip rates) and its checkpoint steps
    (``live``: the run serves its control socket now)."""
    disease = DISEASES.get(s.verdict, s.verdict)
    if s.verdict == V.UNLEARNED and (s.scale_fall or 0) >= 2:
        disease = "unlearning with decaying weights"
    ep = episodes(fold)
    if ep and s.verdict != V.UNLEARNED:
        disease += "; " + ", ".join(f"{state} from step {a}" + (f" to {b}" if b is not None else "")
                                    for state, a, b in ep)
    began = s.min_loss_step if s.verdict == V.UNLEARNED else s.collapse_step if s.collapse_step is not None \
        else s.verdict_since
    d = Diagnosis(s.name, s.path, disease, s.verdict, began, running=fold.ended is None, step=s.last_step)
    d.live = live and d.running
    d.figures = _figures(s, fold)
    fall = _scale_fall(s, fold)
    unlearned = s.verdict == V.UNLEARNED or any(state == "unlearning" for state, _, _ in ep)
    d.trouble = s.verdict in TROUBLE or unlearned
    k = fold.thresholds.decay_factor  # the run's own threshold, as its detector judged
    found = disease_causes(fold)  # issue 23's measured diseases (session/analysis/diseases.py)
    d.trouble = d.trouble or fall >= k or any(x.tier == 1 for x in found)  # measured past a threshold: trouble
    d.causes = causes(replace(_evidence(s, fold, d, fall, unlearned), diseases=found))
    if d.trouble and s.verdict != V.UNLEARNED and fall >= k and any(i.code == "decay" for i in fold.timeline):
        d.decayed = fall
    end = fold.ended
    if end is not None:
        d.ended = f"{printable(end.reason, 40)} at step {end.step}"
    if end is not None and end.reason in FAILED_ENDS and s.verdict != V.DIVERGED:  # diverged says it already
        d.failed = f"{printable(end.reason, 40)} at step {end.step}" + (f": {printable(end.error, 300)}"
                                                                         if end.error else "")
    d.ended_well = end is not None and not d.failed and not d.trouble and s.verdict in (V.HEALTHY,
                                                                                       V.COLLAPSED_RECOVERED)
    d.tries = _tries(s, d, checkpoints)
    d.tries = list(dict.fromkeys(d.tries + disease_tries(found)))  # two causes with one fix: offered once
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
    out.insert(1, ("ln(vocab) / unigram entropy", f"{fmt_value(s.ln_vocab)} / {fmt_value(s.unigram_entropy)}"
                                                   f"{unigram_source(fold)}"))
    dead = dead_layers(fold)
    if dead:
        out.append(("ternary layers entirely zero", f"{len(dead)} of {len(fold.last_weights.layers)}: "  # type: ignore
                                                    + ", ".join(dead[:6]) + (" ..." if len(dead) > 6 else "")))
    if fold.last_weights is not None and not fold.last_weights.layers:
        out.append(("ternary layers", "none found: scales, zero shares and flip rates are not measured, so decaying "
                                      "weights cannot be seen (pass MonitorConfig(layers=[...]))"))
    if s.last_unique is not None:
        out.append(("unique tokens (greedy)", f"{s.last_unique}/{s.generated} (lowest {s.min_unique} at step "
                                              f"{s.min_unique_step})"))
    e = fold.last_eval
    if e is not None:
        out.append(("distinct-2 / per-prompt repetition", f"{e.distinct2:.2f} / {fmt_value(e.repetition)}"))
        if reduced_words(e.reduced):
            out.append(("eval sample", f"{reduced_words(e.reduced)} at the last eval (the Monitor's eval_budget: "
                                       "the figures above rest on this sample)"))
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


def unigram_source(fold: RunFold) -> str:
    """Where the unigram entropy the run was judged against came from, when not from the run's own corpus."""
    if any(e.unigram_entropy is not None for e in fold.evals):
        return " (counted from the training batches)"
    if any(i.code == "unigram" for i in fold.timeline):
        return (" (estimated from the held-out batches, biased low on a small sample: pass MonitorConfig(unigram="
                "token counts) or mon.step(loss, batch=x))")
    return ""


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


def _evidence(s: Summary, fold: RunFold, d: Diagnosis, fall: float, unlearned: bool) -> Evidence:
    decayed = next((i.step for i in fold.timeline if i.code == "decay"), None)
    return Evidence(
        audit={str(a.get("code")): printable(str(a.get("message", "")), 600) for a in s.audit},
        trouble=d.trouble, diverged=s.verdict == V.DIVERGED, unlearned=unlearned, decay_alert_step=decayed,
        fall=fall, k=fold.thresholds.decay_factor, full_precision_falls=_full_precision_falls(s, fold),
        flips=_flip_now(fold), never_learned=s.verdict in (V.NEVER_LEARNED, V.STUCK_UNIGRAM, V.STUCK_PARTLY),
        not_learned_yet=s.verdict in NOT_YET, degenerate=s.verdict in DEGENERATE,
        lr=fmt_value(s.key_config.get("lr")), lr_changes=[st for st, _ in fold.lr_changes], last_step=s.last_step,
        fixed=fixed_live(fold), dead=dead_layers(fold))


def dead_layers(fold: RunFold) -> list[str]:
    """Names of the ternary layers entirely zero in the last snapshot."""
    w = fold.last_weights
    return [printable(lw.name, 120) for lw in (w.layers if w else ()) if lw.zero >= DEAD_ZERO]


def fixed_live(fold: RunFold) -> dict[str, str]:
    """Cause code -> "fixed in the running process at step N (decouple, by auto); since then: ..." for every
    live fix in the log that was not undone, with the held-out loss and the ternary scale before and now."""
    applied: list[tuple[str, int, str]] = []
    for item in fold.timeline:
        if item.kind != "intervention":
            continue
        if item.code == "undo_optim" and applied:
            applied.pop()
        elif item.code in FIXED_BY:
            applied.append((item.code, item.step, item.source))
    out: dict[str, str] = {}
    for action, step, by in applied:
        before = [e.val_loss for e in fold.evals if e.step <= step and e.val_loss is not None]
        sc_before = [v for st, v in fold.scales if st <= step]
        now = fold.evals[-1].val_loss if fold.evals else None
        parts = [f"fixed in the running process at step {step} ({action}, by {by})"]
        if before and now is not None:
            parts.append(f"held-out loss {before[-1]:.3f} then, {now:.3f} now")
        if sc_before and fold.scales:
            parts.append(f"mean ternary scale {sc_before[-1]:.3g} then, {fold.scales[-1][1]:.3g} now")
        out.setdefault(FIXED_BY[action], "; ".join(parts))
    return out


def _tries(s: Summary, d: Diagnosis, checkpoints: list[int]) -> list[tuple[str, str]]:
    """What to try, the live command first, then in the terms of whoever trains (our flags only for our runs)."""
    name, ours = s.name, is_ours(s.source, s.argv)
    top = [c for c in d.causes if c.tier <= 3 and c.code in FIXES and not c.fixed]
    v = values(s.key_config.get("lr"), s.optimizer.get("weight_decay"))
    out: list[tuple[str, str]] = []
    if d.live and d.trouble:
        for c in top:
            if FIXES[c.code].live:
                out.append((f"now, in the running process ({FIXES[c.code].what}; undo with undo-optim)",
                            live_command(FIXES[c.code], name, v)))
    if not d.trouble:  # nothing declined: a setting worth an A/B, not a rescue
        top = [c for c in d.causes if c.tier == 5 and c.code in FIXES and not c.fixed]
    low, last = s.min_loss_step, s.last_step
    declined = low is not None and low < last
    good = [c for c in checkpoints if low is not None and declined and c <= low]
    for c in top[:2]:
        fix = FIXES[c.code]
        add = [fill(a, v) for a in fix.add]
        if not ours:
            out.append(in_their_terms(fix, s.source, v))
        elif not d.trouble:
            out.append((f"to see whether it matters, run it again with {fix.what}",
                        same_run_with(s.argv, add, fix.drop) or f"the same training with {' '.join(add)}"))
        elif good:
            out.append((f"fork from step {good[-1]}, before the decline (lowest held-out loss at step {low}), "
                        f"with {fix.what}", shlex.join(["bitnet-tui", "run", "--from", f"{name}@{good[-1]}", *add])))
        else:
            why = f"no checkpoint was kept from before the decline after step {low}" if declined else \
                f"the held-out loss is at its lowest now, step {low}: the decline is in the weights"
            why += "; the kept ones hold the decayed weights" if checkpoints and declined else ""
            out.append((f"start the run again with {fix.what} ({why})",
                        same_run_with(s.argv, add, fix.drop) or f"the same training with {' '.join(add)}"))
    if s.verdict in NOT_YET + (V.STUCK_UNIGRAM, V.STUCK_PARTLY, V.NEVER_LEARNED) and not top:
        if ours and checkpoints:
            steps = s.total_steps or s.last_step
            out.append(("train longer", f"bitnet-tui run --resume {name} --steps {max(steps * 2, 1000)}"))
        elif not ours:
            out.append(("train longer", "more steps in your loop (the figures say it has not learned yet)"))
    if s.verdict in DEGENERATE:
        out.append(("look at the samples where diversity fell", f"bitnet-tui replay {name}   (then n/N to jump)"))
    if not out:
        out.append(("nothing to fix; compare with other runs", f"bitnet-tui compare {name} <other sessions>"))
    return out
