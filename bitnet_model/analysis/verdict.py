"""The verdict on a run: did greedy decoding collapse to a handful of tokens, and did it come back?

Reads the eval stream the way the report did. Detector states in the log win; logs without them fall
back to :class:`~bitnet_model.train.config.DiagConfig`'s unique-token thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bitnet_model.train.config import DiagConfig

NEVER_COLLAPSED = "never collapsed"
COLLAPSE_THEN_RECOVERY = "collapse then recovery"
COLLAPSED_AND_STUCK = "collapsed and stuck"
COLLAPSED_RECOVERING = "collapsed, recovering"
"""Collapsed, and diversity is coming back but has not reached the recovered threshold yet."""
COLLAPSED_AGAIN = "recovered, then collapsed again"
NOT_LEARNING = "not learning"
DIVERGED = "diverged"
"""The last held-out loss is NaN or infinite."""
NO_EVALS = "no evals yet"

COLLAPSED_STATE = "collapsed"
RECOVERED_STATE = "recovered"


@dataclass(frozen=True)
class EvalPoint:
    """The part of an eval the verdict reads."""

    step: int
    val_loss: float
    unique_tokens: int
    state: str = ""


@dataclass(frozen=True)
class Verdict:
    label: str
    collapse_step: int | None = None
    """First eval whose detector state was collapsed (or a detector alert into collapsed)."""
    recovery_step: int | None = None
    """First recovered state after the collapse."""


def verdict(
    evals: Sequence[EvalPoint],
    *,
    ln_vocab: float,
    diag: DiagConfig | None = None,
    transitions: Iterable[tuple[int, str]] = (),
) -> Verdict:
    """Classify a run from its evals (and detector alerts as ``(step, state_to)`` transitions).

    - not learning: the last held-out loss is within ``diag.not_learning_margin``
      of ln(vocab) (or above it);
    - collapse: the first eval in state ``collapsed`` or the first transition
      into it, whichever comes first; without any detector states, the first eval
      at or below ``diag.collapse_unique`` unique tokens;
    - recovery: the first ``recovered`` state after the collapse; without
      detector states, the first eval at or above ``diag.recovered_unique``.
    """
    diag = diag or DiagConfig()
    if not evals:
        return Verdict(NO_EVALS)
    transitions = list(transitions)
    last = evals[-1]
    collapse, recovery = collapse_and_recovery(evals, diag=diag, transitions=transitions)
    if not math.isfinite(last.val_loss):
        return Verdict(DIVERGED, collapse, recovery)
    if last.val_loss >= ln_vocab * (1 - diag.not_learning_margin):
        return Verdict(NOT_LEARNING, collapse, recovery)
    if collapse is None:
        return Verdict(NEVER_COLLAPSED)
    uses_states = any(e.state for e in evals) or bool(transitions)
    state_now = final_state(evals, transitions) if uses_states else ""
    if recovery is not None:
        relapsed = (
            state_now == COLLAPSED_STATE if uses_states else last.unique_tokens <= diag.collapse_unique
        )
        return Verdict(COLLAPSED_AGAIN if relapsed else COLLAPSE_THEN_RECOVERY, collapse, recovery)
    recovering = (
        state_now == "recovering" if uses_states else last.unique_tokens > diag.collapsing_unique
    )
    return Verdict(COLLAPSED_RECOVERING if recovering else COLLAPSED_AND_STUCK, collapse, recovery)


def final_state(evals: Sequence[EvalPoint], transitions: Sequence[tuple[int, str]]) -> str:
    """The detector state in force at the end: the later of the last eval state and the last transition."""
    state, at = "", -1
    for e in evals:
        if e.state:
            state, at = e.state, e.step
    for step, to in transitions:
        if to and step >= at:
            state, at = to, step
    return state


def collapse_and_recovery(
    evals: Sequence[EvalPoint], *, diag: DiagConfig | None = None, transitions: Iterable[tuple[int, str]] = ()
) -> tuple[int | None, int | None]:
    """(collapse step, recovery step) as :func:`verdict` defines them; None where it did not happen."""
    diag = diag or DiagConfig()
    transitions = list(transitions)
    if any(e.state for e in evals) or transitions:
        marks = sorted([(e.step, e.state) for e in evals if e.state] + [(s, t) for s, t in transitions if t])
        collapse = next((s for s, st in marks if st == COLLAPSED_STATE), None)
        if collapse is None:
            return None, None
        recovery = next((s for s, st in marks if st == RECOVERED_STATE and s > collapse), None)
        return collapse, recovery
    collapse = next((e.step for e in evals if e.unique_tokens <= diag.collapse_unique), None)
    if collapse is None:
        return None, None
    recovery = next((e.step for e in evals if e.step > collapse and e.unique_tokens >= diag.recovered_unique), None)
    return collapse, recovery

