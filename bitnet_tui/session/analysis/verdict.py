"""The verdict on a run: how it ended, judged by the same detector that watched it.

A verdict is the fold's detector's final word (:mod:`bitnet_tui.session.analysis.fold`: the run's own
thresholds, its evals and weight snapshots in log order, from the state its header recorded), so every
label has an end state behind it: a run that ended with " the" as 245 of 256 tokens is not "healthy", and
a model that learned and then went back to a loss of ln(vocab) is "unlearned", not "not learning".
:func:`verdict` judges a bare sequence of evals the same way (a fresh detector).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bitnet_tui.session.analysis.detector import CollapseDetector, DetectorConfig
from bitnet_tui.session.analysis.fold import EvalPoint, RunFold

NO_EVALS = "no evals yet"
DIVERGED = "diverged"
NEVER_LEARNED = "never learned"
TOO_EARLY = "too early to say"
PARTLY_LEARNED = "partly learned"
STUCK_PARTLY = "partly learned, not improving"
UNIGRAM_PHASE = "in the unigram phase"
STUCK_UNIGRAM = "stuck in the unigram phase"
NOT_YET_DIVERSE = "learned, not yet diverse"
NEVER_DIVERSE = "learned, never diverse"
UNLEARNED = "unlearned"
COLLAPSING = "losing diversity"
COLLAPSED_STAYED = "collapsed and stayed"
COLLAPSED_RECOVERING = "collapsed, recovering"
COLLAPSED_RECOVERED = "collapsed and recovered"
HEALTHY = "healthy"
LABELS = (NO_EVALS, DIVERGED, NEVER_LEARNED, TOO_EARLY, PARTLY_LEARNED, STUCK_PARTLY, UNIGRAM_PHASE, STUCK_UNIGRAM,
          NOT_YET_DIVERSE, NEVER_DIVERSE, UNLEARNED, COLLAPSING, COLLAPSED_STAYED, COLLAPSED_RECOVERING,
          COLLAPSED_RECOVERED, HEALTHY)
"""Every end a run can have."""


@dataclass(frozen=True)
class Verdict:
    label: str
    state: str = ""
    """The detector's final state."""
    since: int | None = None
    """Step the final state began."""
    collapse_step: int | None = None
    """First eval judged collapsed."""
    recovery_step: int | None = None
    """First eval judged recovered after the collapse."""
    min_loss: float | None = None
    min_step: int | None = None
    scale_fall: float | None = None
    """Peak mean ternary scale / the last one."""
    evidence: str = ""
    """The final figures, as the detector words them."""


def replay(evals: Sequence[EvalPoint], scales: Sequence[tuple[int, float]], *, cfg: DetectorConfig,
           ln_vocab: float | None, unigram_entropy: float | None) -> tuple[CollapseDetector, list[tuple[int, str]]]:
    """Run a fresh detector over evals and scale snapshots in step order, an eval before a snapshot of the
    same step (as a Monitor measures them); (detector, [(step, state)])."""
    fold = RunFold(judge=CollapseDetector(cfg, ln_vocab, unigram_entropy))
    d = fold.detector()
    sc = sorted(scales)
    i = 0
    for e in sorted(evals, key=lambda p: p.step):
        while i < len(sc) and sc[i][0] < e.step:
            d.observe_scale(*sc[i])
            i += 1
        fold.judge_eval(e)
    for s in sc[i:]:
        d.observe_scale(*s)
    return d, [(e.step, e.state) for e in fold.evals]


def verdict(evals: Sequence[EvalPoint], *, ln_vocab: float | None, unigram_entropy: float | None = None,
            cfg: DetectorConfig | None = None, scales: Sequence[tuple[int, float]] = (), ended: bool = True) -> Verdict:
    """Classify a bare sequence of evals (and weight-scale snapshots) with a fresh detector."""
    if not evals:
        return Verdict(NO_EVALS)
    d, states = replay(evals, scales, cfg=cfg or DetectorConfig(), ln_vocab=ln_vocab, unigram_entropy=unigram_entropy)
    return judged(d, states, max(evals, key=lambda p: p.step), ended=ended)


def judged(d: CollapseDetector, states: Sequence[tuple[int, str]], last: EvalPoint | None, *,
           ended: bool) -> Verdict:
    """The verdict of a detector that has seen a run (``states``: its state after each eval; ``last``: the last
    eval; ``ended``: whether the run has ended, so a short one that never left ln(vocab) "never learned")."""
    if last is None:
        return Verdict(NO_EVALS)
    collapse = next((s for s, st in states if st == "collapsed"), None)
    recovery = next((s for s, st in states if st == "recovered" and collapse is not None and s > collapse), None)
    fall = d.peak_scale / d.last_scale if d.peak_scale and d.last_scale else None
    common = {"state": d.state, "since": d.since_step, "collapse_step": collapse, "recovery_step": recovery,
              "min_loss": d.min_loss, "min_step": d.min_step, "scale_fall": fall,
              "evidence": d.evidence(last.figures())}
    if last.val_loss is not None and not math.isfinite(last.val_loss):
        return Verdict(DIVERGED, **common)
    stuck = d.stuck
    label = {
        "not_learning": NEVER_LEARNED if ended or stuck else TOO_EARLY,
        "partial": STUCK_PARTLY if stuck else PARTLY_LEARNED,
        "unigram": STUCK_UNIGRAM if stuck else UNIGRAM_PHASE,
        "repetitive": NOT_YET_DIVERSE,
        "unlearning": UNLEARNED,
        "healthy": HEALTHY,
        "recovered": COLLAPSED_RECOVERED,
        "recovering": COLLAPSED_RECOVERING,
        "collapsing": COLLAPSING,
    }.get(d.state)
    if label is None:  # collapsed
        label = COLLAPSED_STAYED if d.diverse else NEVER_DIVERSE
    return Verdict(label, **common)
