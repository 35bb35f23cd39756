"""The collapse detector: a small state machine over the eval stream.

Low diversity means different things depending on where the held-out loss sits
(DESIGN.md, "What makes collapse legible"):

- near ln(vocab): the model has not started learning ("not_learning");
- near the corpus' unigram entropy, before the loss has ever gone clearly below
  it: the unigram phase every model passes through ("unigram"), normal unless it lasts;
- clearly below the unigram entropy at some point: the model has learned. Diversity lags
  the loss by a few evals as a model leaves the unigram phase, so the phase ends only
  once greedy output has been diverse (above ``collapsing_unique``); a model that learns
  but never gets there stays "unigram" and is warned about after ``stuck_evals`` evals.
  From then on, losing diversity is degenerate decoding proper:
  healthy -> collapsing -> collapsed -> recovering -> recovered.

Every state change is an :class:`~bitnet_model.events.Alert` with its evidence
(step, unique tokens, held-out loss, top tokens, a sample) and how long the
previous state lasted. When the loss is unknown (``None``) diversity alone decides.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from bitnet_model.log.events import Alert
from bitnet_model.train.config import DiagConfig

STATES = ("not_learning", "unigram", "healthy", "collapsing", "collapsed", "recovering", "recovered")
_LEVEL = {
    "not_learning": "warning",
    "unigram": "info",
    "healthy": "info",
    "collapsing": "warning",
    "collapsed": "error",
    "recovering": "info",
    "recovered": "info",
}
_SAYS = {
    "not_learning": "held-out loss is still near ln(vocab): the model has not started learning",
    "unigram": "unigram phase: loss near the unigram entropy, greedy output is the most frequent tokens "
               "(normal early on)",
    "healthy": "greedy output is diverse",
    "collapsing": "greedy output is losing diversity",
    "collapsed": "degenerate decoding: greedy output uses only a handful of tokens",
    "recovering": "diversity is coming back after a collapse",
    "recovered": "diversity has recovered after a collapse",
}


@dataclass
class CollapseDetector:
    """Feed it every eval with :meth:`observe`; it returns an Alert on each state change."""

    cfg: DiagConfig
    ln_vocab: float
    unigram_entropy: float
    state: str = ""
    since_step: int = 0
    evals_in_state: int = 0
    learned: bool = False
    """Set once the held-out loss has gone clearly below the unigram entropy."""
    started: bool = False
    """Set once the held-out loss has left the neighbourhood of ln(vocab)."""
    diverse: bool = False
    """Set once greedy output has been diverse after the model learned: only then can it collapse."""
    stuck_warned: bool = False
    history: list[tuple[int, str]] = field(default_factory=list)

    def _judge(self, unique: int, val_loss: float | None) -> str:
        c = self.cfg
        if val_loss is not None and math.isfinite(val_loss):
            if val_loss < self.ln_vocab * (1 - c.not_learning_margin):
                self.started = True
            if val_loss < self.unigram_entropy * (1 - c.unigram_margin):
                self.learned = True
            if not self.started:
                return "not_learning"
            if not self.learned or not self.diverse:
                if unique <= c.collapsing_unique:
                    return "unigram"
                self.diverse = self.learned
                return "healthy"
        prev = self.state
        if unique <= c.collapse_unique:
            return "collapsed"
        if prev in ("collapsed", "recovering"):
            return "recovered" if unique >= c.recovered_unique else "recovering"
        if unique <= c.collapsing_unique:
            return "collapsing"
        return "recovered" if prev == "recovered" else "healthy"

    def observe(
        self,
        step: int,
        unique: int,
        val_loss: float | None = None,
        top_tokens: tuple[tuple[str, int], ...] = (),
        sample: str = "",
    ) -> Alert | None:
        new = self._judge(unique, val_loss)
        if new == self.state:
            self.evals_in_state += 1
            if new == "unigram" and self.evals_in_state >= self.cfg.stuck_evals and not self.stuck_warned:
                self.stuck_warned = True
                return self._alert(step, new, new, unique, val_loss, top_tokens, sample,
                                   f"still in the unigram phase after {self.evals_in_state} evals "
                                   f"(since step {self.since_step}): the model is not getting past token frequencies",
                                   level="warning")
            return None
        old, lasted = self.state, step - self.since_step
        self.state, self.since_step, self.evals_in_state = new, step, 1
        self.history.append((step, new))
        msg = f"{old or 'start'} -> {new} at step {step}: {_SAYS[new]} ({unique} unique tokens"
        if val_loss is not None:
            msg += f", held-out loss {val_loss:.3f}"
        msg += ")"
        if old:
            msg += f"; {old} lasted {lasted} steps"
        return self._alert(step, old, new, unique, val_loss, top_tokens, sample, msg, level=_LEVEL[new])

    @staticmethod
    def _alert(step, old, new, unique, val_loss, top_tokens, sample, msg, level) -> Alert:
        return Alert(
            step=step, time=time.time(), level=level, code="detector", message=msg,
            state_from=old, state_to=new, unique_tokens=unique, val_loss=val_loss,
            top_tokens=tuple(top_tokens)[:5], sample=sample[:500],
        )

    def state_dict(self) -> dict:
        return {
            "state": self.state, "since_step": self.since_step, "evals_in_state": self.evals_in_state,
            "learned": self.learned, "started": self.started, "stuck_warned": self.stuck_warned,
            "diverse": self.diverse,
        }

    def load_state_dict(self, d: dict) -> None:
        for k in ("state", "since_step", "evals_in_state", "learned", "started", "stuck_warned", "diverse"):
            setattr(self, k, d.get(k, False) if k == "diverse" else d[k])
