"""The detector's thresholds and states: every number a state is judged by, defined once.

``DetectorConfig`` holds the ones a run may change (``--detector-*`` flags, a Monitor's ``detector=``, the log's
header records them); the module constants are the fixed rules, each with its reason. The detector
(:mod:`bitnet_tui.session.analysis.detector`) and every reader of a log judge by these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bitnet_tui.session.errors import ConfigError
from bitnet_tui.session.knobs import check_knobs, knob


@dataclass(kw_only=True, frozen=True)
class DetectorConfig:
    """The detector's thresholds: the one place they are defined (``--detector-*`` flags, logs, dashboard)."""

    window: int = knob(3, "Evals whose median held-out loss sets where the loss sits.", kind=int, lo=1, hi=100)
    uniform_band: float = knob(0.25, "Loss within this share of the gap ln(vocab) - unigram entropy below "
                               "ln(vocab) counts as near uniform.", kind=float, lo=0.0, hi=1.0)
    unigram_band: float = knob(0.15, "Loss within this share of the gap ln(vocab) - unigram entropy above the "
                               "unigram entropy counts as the unigram phase; above it (and below near uniform) "
                               "the model has partly learned.", kind=float, lo=0.0, hi=1.0)
    learned_margin: float = knob(0.05, "Loss below (1 - this) x unigram entropy counts as learned.",
                                 kind=float, lo=0.0, hi=0.5)
    collapse_share: float = knob(0.02, "Unique generated tokens at or below this share: collapsed.",
                                 kind=float, lo=0.0, hi=1.0)
    collapsing_share: float = knob(0.04, "Unique share at or below this: collapsing.", kind=float, lo=0.0, hi=1.0)
    recovered_share: float = knob(0.06, "Unique share at or above this leaves a low-diversity state.",
                                  kind=float, lo=0.0, hi=1.0)
    repetition_collapsed: float = knob(0.9, "Mean per-prompt repetition at or above this: collapsed, whatever "
                                       "the unique count.", kind=float, lo=0.0, hi=1.0)
    diverse_distinct2: float = knob(0.06, "Distinct-2 below this reads as low diversity whatever the unique "
                                    "share.", kind=float, lo=0.0, hi=1.0)
    stuck_evals: int = knob(10, "Warn once when not_learning or the unigram phase has lasted this many evals.",
                            kind=int, lo=1, hi=100_000)
    unlearn_rise: float = knob(0.5, "Unlearning: the loss has climbed back this share of the way from its lowest "
                               "point to ln(vocab).", kind=float, lo=0.05, hi=1.0)
    decay_factor: float = knob(4.0, "Alert when the mean ternary scale falls this many times below its peak "
                               "while the loss is not improving.", kind=float, lo=1.0, hi=1e6)

    def __post_init__(self) -> None:
        check_knobs(self)
        if not self.collapse_share <= self.collapsing_share < self.recovered_share:
            raise ConfigError("thresholds must satisfy collapse_share <= collapsing_share < recovered_share")
        if self.unigram_band + self.uniform_band >= 1:
            raise ConfigError("thresholds must satisfy unigram_band + uniform_band < 1 (the bands would overlap)")

    @classmethod
    def from_dict(cls, d: Any, *, strict: bool = False) -> DetectorConfig:
        """From a header's config; unknown keys are ignored. Not ``strict`` (a log being shown): defaults for
        what is missing or invalid (old logs have none). ``strict`` (a run being built): ConfigError."""
        if not isinstance(d, dict):
            return cls()
        names = set(cls.__dataclass_fields__)
        try:
            return cls(**{k: v for k, v in d.items() if k in names and v is not None})  # null: the default
        except (ValueError, TypeError):
            if strict:
                raise
            return cls()


STATES = ("not_learning", "partial", "unigram", "repetitive", "healthy", "collapsing", "collapsed", "recovering",
          "recovered", "unlearning")
LEVEL = {
    "not_learning": "warning", "partial": "info", "unigram": "info", "repetitive": "info", "healthy": "info",
    "collapsing": "warning", "collapsed": "error", "recovering": "info", "recovered": "info", "unlearning": "error",
}
"""Each state's severity: an alert's level is its new state's, so good news is never a warning."""
LOW = ("collapsing", "collapsed", "recovering")

GAP_SHARE_WITHOUT_UNIGRAM = 0.4
"""Without a unigram entropy, the gap ln(vocab) - unigram entropy is taken as this share of ln(vocab): measured
0.39 for the 50,257-token GPT-2 vocabulary on the bundled corpus (10.82 - 6.59), 0.21 for our 4,096 (8.32 - 6.58);
the larger share keeps the near-uniform band narrow, so a model is not called "not learning" too eagerly."""
UNLEARN_EXIT = 0.5
"""Hysteresis: an un-learning run leaves that state only when the climb falls below this share of ``unlearn_rise``
(one noisy eval back down is not a recovery)."""
DECAY_WHATEVER_LOSS = 2.0
"""A fall of ``decay_factor`` to this power (16x at the default) is decay whatever the loss does: a user's loop
under Adam + coupled L2 measured its ternary scale ÷7,000 in 300 steps while the loss still fell, the head and
embeddings learning around ternary layers that carry almost nothing; healthy runs' scales rise or stay
within 2x of their peak."""
DEAD_ZERO = 0.999
"""A ternary layer with this share of its weights at 0 is dead: it passes (almost) nothing."""
DECAY_REARM = 0.5
"""The decay alert re-arms once the scale is back within ``decay_factor`` x this of its peak."""
SCALE_SHOWN = 1.5
"""Evidence quotes the ternary scale once it has fallen this many times below its peak."""
STUCK_WITHOUT_LOW = 0.5
"""A state is stuck once no new low of the windowed loss has come for this share of ``stuck_evals`` evals (the
width-256 AdamW run at 1.5e-3 sat in the unigram band for 17 evals while its loss fell from 6.99 to 6.30)."""
STUCK_STATES = {"not_learning": "not learning", "partial": "partly learned", "unigram": "in the unigram phase"}
"""States that warn once when they last ``stuck_evals`` evals, and how the warning names them."""


@dataclass(frozen=True)
class EvalFigures:
    """What the detector reads of one eval (None where a run does not measure it)."""

    step: int
    unique: int
    generated: int
    val_loss: float | None = None
    entropy: float | None = None
    distinct2: float | None = None
    repetition: float | None = None
    top_tokens: tuple[tuple[str, int], ...] = ()
    sample: str = ""

    @property
    def share(self) -> float:
        return self.unique / self.generated if self.generated else 0.0
