"""The collapse detector: a small state machine over the eval stream that names what a run is doing.

Low diversity means different things depending on where the held-out loss sits (docs/design.md):

- ``not_learning``: the loss has never left the neighbourhood of ln(vocab) (a model that predicts
  uniformly). Normal at step 0, a problem when it lasts.
- ``unigram``: the loss sits near the corpus' unigram entropy (a model that predicts token frequencies
  only): the phase every model passes through. Greedy output is the most frequent tokens repeated. It is
  also the name for the few evals after the loss has dropped below the unigram entropy while diversity
  catches up; if diversity never comes, the run is degenerate decoding after all.
- ``healthy -> collapsing -> collapsed -> recovering -> recovered``: once the model has learned (loss
  clearly below the unigram entropy) and been diverse, losing diversity is degenerate decoding proper.
- ``unlearning``: the loss went clearly down and has climbed back toward ln(vocab): a model that learned
  a little and is forgetting it (the report's Adam + coupled L2 run). Its evidence is the lowest loss and
  when, the loss now, and how far the ternary scales fell.

States are claims about a window of evals, not latches: the loss level is the median of the last
``window`` held-out losses, and diversity has hysteresis (it must rise past ``recovered_share`` to leave a
low-diversity state). Diversity is judged by shares of what was generated, with per-prompt repetition,
so eight prompts each looping on two tokens (16 unique) read as collapsed. Every state change is an
:class:`~bitnet_tui.session.log.events.Alert` carrying its evidence and the thresholds it was judged by.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bitnet_tui.session.knobs import check_knobs, knob
from bitnet_tui.session.log.events import Alert


@dataclass(kw_only=True, frozen=True)
class DetectorConfig:
    """The detector's thresholds: the one place they are defined (``--detector-*`` flags, logs, dashboard)."""

    window: int = knob(3, "Evals whose median held-out loss sets where the loss sits.", kind=int, lo=1, hi=100)
    uniform_band: float = knob(0.25, "Loss within this share of the gap ln(vocab) - unigram entropy below "
                               "ln(vocab) counts as near uniform.", kind=float, lo=0.0, hi=1.0)
    learned_margin: float = knob(0.05, "Loss below (1 - this) x unigram entropy counts as learned.",
                                 kind=float, lo=0.0, hi=0.5)
    collapse_share: float = knob(0.02, "Unique generated tokens at or below this share: collapsed.",
                                 kind=float, lo=0.0, hi=1.0)
    collapsing_share: float = knob(0.04, "Unique share at or below this: collapsing.", kind=float, lo=0.0, hi=1.0)
    recovered_share: float = knob(0.06, "Unique share at or above this leaves a low-diversity state.",
                                  kind=float, lo=0.0, hi=1.0)
    repetition_collapsed: float = knob(0.9, "Mean per-prompt repetition at or above this: collapsed, whatever "
                                       "the unique count.", kind=float, lo=0.0, hi=1.0)
    stuck_evals: int = knob(10, "Warn once when not_learning or the unigram phase has lasted this many evals.",
                            kind=int, lo=1, hi=100_000)
    unlearn_rise: float = knob(0.5, "Unlearning: the loss has climbed back this share of the way from its lowest "
                               "point to ln(vocab).", kind=float, lo=0.05, hi=1.0)
    decay_factor: float = knob(4.0, "Alert when the mean ternary scale falls this many times below its peak "
                               "while the loss is not improving.", kind=float, lo=1.0, hi=1e6)

    def __post_init__(self) -> None:
        check_knobs(self)
        if not self.collapse_share <= self.collapsing_share < self.recovered_share:
            from bitnet_tui.session.errors import ConfigError

            raise ConfigError("thresholds must satisfy collapse_share <= collapsing_share < recovered_share")

    @classmethod
    def from_dict(cls, d: Any, *, strict: bool = False) -> DetectorConfig:
        """From a header's config; unknown keys are ignored. Not ``strict`` (a log being shown): defaults for
        what is missing or invalid (old logs have none). ``strict`` (a run being built): ConfigError."""
        if not isinstance(d, dict):
            return cls()
        names = set(cls.__dataclass_fields__)
        try:
            return cls(**{k: v for k, v in d.items() if k in names})
        except (ValueError, TypeError):
            if strict:
                raise
            return cls()


STATES = ("not_learning", "unigram", "healthy", "collapsing", "collapsed", "recovering", "recovered", "unlearning")
LEVEL = {
    "not_learning": "warning", "unigram": "info", "healthy": "info", "collapsing": "warning",
    "collapsed": "error", "recovering": "info", "recovered": "info", "unlearning": "error",
}
SAYS = {
    "not_learning": "held-out loss is still near ln(vocab): the model has not started learning",
    "unigram": "unigram phase: greedy output is the most frequent tokens (normal early on)",
    "healthy": "the model has learned and greedy output is diverse",
    "collapsing": "greedy output is losing diversity",
    "collapsed": "degenerate decoding: greedy output uses only a handful of tokens",
    "recovering": "diversity is coming back after a collapse",
    "recovered": "diversity has recovered after a collapse",
    "unlearning": "the held-out loss went down and has climbed back toward ln(vocab): the model is unlearning",
}
NO_LOSS_HEALTHY = "greedy output is diverse (whether the model learned is not measured: no held-out loss)"
LOW = ("collapsing", "collapsed", "recovering")


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


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


@dataclass
class CollapseDetector:
    """Feed it every eval with :meth:`observe` and every weight snapshot's mean scale with :meth:`observe_scale`;
    each returns the alerts it raised. ``unigram_entropy`` may be None (a user's run without a corpus)."""

    cfg: DetectorConfig
    ln_vocab: float | None
    unigram_entropy: float | None
    state: str = ""
    since_step: int = 0
    evals_in_state: int = 0
    learned_at: int | None = None
    """Step of the first eval whose windowed loss was clearly below the unigram entropy."""
    evals_since_learned: int = 0
    diverse: bool = False
    """Set once greedy output has been diverse after the model learned."""
    low: bool = False
    """Diversity is low (with hysteresis)."""
    min_loss: float | None = None
    """Lowest held-out loss of a single eval (evidence), and its step."""
    min_step: int | None = None
    min_level: float | None = None
    """Lowest windowed (median) loss: what "went clearly down" is judged by."""
    peak_scale: float | None = None
    peak_scale_step: int | None = None
    last_scale: float | None = None
    decay_warned: bool = False
    stuck_warned: bool = False
    losses: list[float] = field(default_factory=list)

    # -- where the loss sits ---------------------------------------------------------------
    def _loss_now(self) -> float | None:
        recent = self.losses[-self.cfg.window:]
        return statistics.median(recent) if recent else None

    def _uniform_floor(self) -> float | None:
        """Losses at or above this are near uniform."""
        if self.ln_vocab is None:
            return None
        h = self.unigram_entropy
        if h is not None and h < self.ln_vocab:
            return self.ln_vocab - self.cfg.uniform_band * (self.ln_vocab - h)
        return self.ln_vocab * (1 - self.cfg.uniform_band / 2.5)

    def _learned_ceiling(self) -> float | None:
        h = self.unigram_entropy
        return None if h is None else h * (1 - self.cfg.learned_margin)

    def _unlearning(self, loss: float) -> bool:
        if self.ln_vocab is None or self.min_level is None:
            return False
        floor = self._uniform_floor()
        if floor is None or self.min_level >= floor:
            return False  # it never went clearly down
        rise = (loss - self.min_level) / max(1e-9, self.ln_vocab - self.min_level)
        threshold = self.cfg.unlearn_rise if self.state != "unlearning" else self.cfg.unlearn_rise / 2
        return rise >= threshold

    # -- judging ---------------------------------------------------------------------------
    def _judge(self, f: EvalFigures) -> str:
        c = self.cfg
        share, rep = f.share, f.repetition
        repetitive = rep is not None and rep >= c.repetition_collapsed
        if self.low:
            self.low = share < c.recovered_share or repetitive
        else:
            self.low = share <= c.collapsing_share or repetitive
        collapsed = share <= c.collapse_share or repetitive
        loss = self._loss_now()
        if loss is not None:
            if self._unlearning(loss):
                return "unlearning"
            floor, ceiling = self._uniform_floor(), self._learned_ceiling()
            if self.learned_at is None:
                if floor is not None and (self.min_level is None or self.min_level >= floor):
                    return "not_learning"
                if ceiling is not None and loss < ceiling:
                    self.learned_at = f.step
                elif ceiling is not None or self.low:
                    return "unigram"
        if not self.diverse:
            if self.low:
                if self.learned_at is not None and self.evals_since_learned >= c.stuck_evals:
                    return "collapsed"  # learned, and greedy output never became diverse
                return "unigram"
            self.diverse = True
            return "healthy"
        if collapsed:
            return "collapsed"
        prev = self.state
        if prev in ("collapsed", "recovering"):
            return "recovering" if self.low else "recovered"
        if self.low:
            return "collapsing"
        return "recovered" if prev == "recovered" else "healthy"

    def observe(self, f: EvalFigures) -> list[Alert]:
        """Judge one eval; returns the alerts it raised (a state change, a stuck warning)."""
        loss = _finite(f.val_loss)
        if loss is not None:
            self.losses.append(loss)
            del self.losses[:-max(self.cfg.window, 1)]
            now = self._loss_now()
            if now is not None and (self.min_level is None or now < self.min_level):
                self.min_level = now
            if self.min_loss is None or loss < self.min_loss:
                self.min_loss, self.min_step = loss, f.step
        if self.learned_at is not None:
            self.evals_since_learned += 1
        new = self._judge(f)
        out: list[Alert] = []
        if new == self.state:
            self.evals_in_state += 1
            if new in ("unigram", "not_learning") and self.evals_in_state >= self.cfg.stuck_evals \
                    and not self.stuck_warned:
                self.stuck_warned = True
                what = "the model has not started learning" if new == "not_learning" else \
                    "the model is not getting past token frequencies"
                out.append(self._alert(f, new, new, "warning",
                                       f"still {new.replace('_', ' ')} after {self.evals_in_state} evals (since step "
                                       f"{self.since_step}): {what}; {self.evidence(f)}"))
            return out
        old, lasted = self.state, f.step - self.since_step
        self.state, self.since_step, self.evals_in_state = new, f.step, 1
        level = LEVEL[new]
        if new == "not_learning" and not old:
            level = "info"  # a random model at its first eval: not a warning
        says = SAYS[new] if new != "healthy" or self._loss_now() is not None else NO_LOSS_HEALTHY
        msg = f"{old or 'start'} -> {new} at step {f.step}: {says}; {self.evidence(f)}"
        if old:
            msg += f"; {old} lasted {lasted} steps"
        out.append(self._alert(f, old, new, level, msg))
        return out

    def observe_scale(self, step: int, scale: float) -> list[Alert]:
        """The mean ternary scale (absmean of the latent weights) at a weight snapshot."""
        if not math.isfinite(scale) or scale <= 0:
            return []
        self.last_scale = scale
        if self.peak_scale is None or scale > self.peak_scale:
            self.peak_scale, self.peak_scale_step = scale, step
        fall = self.peak_scale / scale
        if fall < self.cfg.decay_factor:
            if fall < self.cfg.decay_factor / 2:
                self.decay_warned = False
            return []
        loss = self._loss_now()
        improving = loss is not None and self.min_level is not None and loss <= self.min_level + 1e-9
        if self.decay_warned or improving:
            return []
        self.decay_warned = True
        loss_txt = f"held-out loss median of the last {len(self.losses[-self.cfg.window:])} evals {loss:.3f}, lowest " \
            f"eval {self.min_loss:.3f} at step {self.min_step}" if loss is not None and self.min_loss is not None \
            else "no held-out loss"
        msg = (f"weights decaying toward zero: the mean ternary scale fell {fall:.1f}x (from {self.peak_scale:.3g} at "
               f"step {self.peak_scale_step} to {scale:.3g}) while the loss is not improving ({loss_txt}); "
               "check the optimizer's weight decay (coupled L2 in Adam shrinks every weight)")
        return [Alert(step=step, time=time.time(), level="warning", code="decay", message=msg,
                      val_loss=loss, data={"scale": scale, "peak_scale": self.peak_scale,
                                           "peak_step": self.peak_scale_step, "fall": fall})]

    # -- evidence --------------------------------------------------------------------------
    def thresholds(self, generated: int) -> str:
        c = self.cfg
        n = max(generated, 1)
        return (f"thresholds: collapsed <= {c.collapse_share:.0%} ({c.collapse_share * n:.0f}/{n}), collapsing <= "
                f"{c.collapsing_share:.0%}, recovered >= {c.recovered_share:.0%}, repetition >= "
                f"{c.repetition_collapsed:.0%}")

    def evidence(self, f: EvalFigures) -> str:
        parts = [f"{f.unique}/{f.generated} unique tokens ({f.share:.1%})"]
        if f.distinct2 is not None:
            parts.append(f"distinct-2 {f.distinct2:.2f}")
        if f.repetition is not None:
            parts.append(f"per-prompt repetition {f.repetition:.0%}")
        loss = self._loss_now()
        if loss is None:
            parts.append("no held-out loss (judged on the samples alone)")
        else:
            parts.append(self._loss_words(f, loss))
            if self.ln_vocab is not None:
                base = f"ln V {self.ln_vocab:.2f}"
                if self.unigram_entropy is not None:
                    base += f", unigram {self.unigram_entropy:.2f}"
                parts.append(base)
            if self.min_loss is not None and (self.state == "unlearning" or self._unlearning(loss)):
                parts.append(f"lowest {self.min_loss:.3f} at step {self.min_step}")
        if f.entropy is not None and math.isfinite(f.entropy):
            parts.append(f"predictive entropy {f.entropy:.2f}")
        if self.peak_scale and self.last_scale and self.peak_scale / self.last_scale >= 1.5:
            parts.append(f"ternary scale {self.last_scale:.3g} (peak {self.peak_scale:.3g})")
        return ", ".join(parts)

    def _loss_words(self, f: EvalFigures, median: float) -> str:
        """This eval's own held-out loss under its own label; the window's median, what states are judged by,
        labelled as such beside it."""
        own, n = _finite(f.val_loss), len(self.losses[-self.cfg.window:])
        med = f"median of the last {n} evals {median:.3f}"
        if own is None:
            return f"no held-out loss at this eval ({med})"
        return f"held-out loss {own:.3f}" + (f" ({med})" if n > 1 else "")

    def _alert(self, f: EvalFigures, old: str, new: str, level: str, msg: str) -> Alert:
        data: dict[str, Any] = {"share": f.share, "thresholds": self.thresholds(f.generated)}
        for k in ("distinct2", "repetition", "entropy"):
            v = getattr(f, k)
            if v is not None:
                data[k] = v
        if self.min_loss is not None:
            data["min_loss"], data["min_step"] = self.min_loss, self.min_step
        if self._loss_now() is not None:
            data["loss_median"] = self._loss_now()
        if self.peak_scale is not None and self.last_scale is not None:
            data["scale"], data["peak_scale"] = self.last_scale, self.peak_scale
        return Alert(step=f.step, time=time.time(), level=level, code="detector", message=msg,
                     state_from=old, state_to=new, unique_tokens=f.unique, val_loss=_finite(f.val_loss),
                     top_tokens=tuple(f.top_tokens)[:5], sample=f.sample[:500], data=data)

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "cfg"}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        for k, v in d.items():
            if k in self.__dataclass_fields__ and k != "cfg":
                setattr(self, k, list(v) if k == "losses" else v)
