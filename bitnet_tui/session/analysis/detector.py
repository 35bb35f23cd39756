"""The collapse detector: a small state machine over the eval stream that names what a run is doing.

Low diversity means different things depending on where the held-out loss sits (docs/design.md):

- ``not_learning``: the loss has never left the neighbourhood of ln(vocab) (a model that predicts
  uniformly). Normal at step 0, a problem when it lasts.
- ``partial``: the loss has left ln(vocab) but sits above the unigram band: the model has learned part of
  the token frequencies (a run passes through it early; one that stays there learns slowly).
- ``unigram``: the loss sits within the unigram band around the corpus' unigram entropy (a model that
  predicts token frequencies only): the phase every model passes through. Greedy output is the most
  frequent tokens repeated.
- ``repetitive``: the loss has dropped clearly below the unigram entropy (the model learned) while greedy
  output is not yet varied; normal for a few evals; if diversity never comes, the run is degenerate
  decoding after all (``collapsed`` after ``stuck_evals``).
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

from bitnet_tui.session.analysis import words
from bitnet_tui.session.analysis.thresholds import (
    DECAY_REARM,
    DECAY_WHATEVER_LOSS,
    GAP_SHARE_WITHOUT_UNIGRAM,
    LEVEL,
    STATES,
    STUCK_STATES,
    STUCK_WITHOUT_LOW,
    UNLEARN_EXIT,
    DetectorConfig,
    EvalFigures,
)
from bitnet_tui.session.analysis.words import WHILE, finite
from bitnet_tui.session.log.events import Alert
from bitnet_tui.session.log.schema import fits_type


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
    dead_warned: bool = False
    evals_since_low: int = 0
    """Evals since the windowed loss last reached a new low (a run still improving is not stuck)."""
    losses: list[float] = field(default_factory=list)

    # -- where the loss sits ---------------------------------------------------------------
    def loss_now(self) -> float | None:
        recent = self.losses[-self.cfg.window:]
        return statistics.median(recent) if recent else None

    def _gap(self) -> float | None:
        """ln(vocab) - unigram entropy: the span every band is a share of."""
        if self.ln_vocab is None:
            return None
        h = self.unigram_entropy
        return self.ln_vocab - h if h is not None and h < self.ln_vocab else self.ln_vocab * GAP_SHARE_WITHOUT_UNIGRAM

    def uniform_floor(self) -> float | None:
        """Losses at or above this are near uniform."""
        gap = self._gap()
        return None if gap is None or self.ln_vocab is None else self.ln_vocab - self.cfg.uniform_band * gap

    def unigram_top(self) -> float | None:
        """Losses below this (and not below the learned ceiling) are the unigram phase."""
        gap, h = self._gap(), self.unigram_entropy
        return None if gap is None or h is None or self.ln_vocab is None or h >= self.ln_vocab \
            else h + self.cfg.unigram_band * gap

    def learned_ceiling(self) -> float | None:
        h = self.unigram_entropy
        return None if h is None else h * (1 - self.cfg.learned_margin)

    def unlearning(self, loss: float) -> bool:
        if self.ln_vocab is None or self.min_level is None:
            return False
        floor = self.uniform_floor()
        if floor is None or self.min_level >= floor:
            return False  # it never went clearly down
        rise = (loss - self.min_level) / max(1e-9, self.ln_vocab - self.min_level)
        threshold = self.cfg.unlearn_rise * (UNLEARN_EXIT if self.state == "unlearning" else 1.0)
        return rise >= threshold

    # -- judging ---------------------------------------------------------------------------
    def _low(self, f: EvalFigures) -> tuple[bool, bool]:
        """(low diversity with hysteresis, collapsed): every figure of the samples must agree to read as varied."""
        c = self.cfg
        share, rep, d2 = f.share, f.repetition, f.distinct2
        repetitive = rep is not None and rep >= c.repetition_collapsed
        flat = d2 is not None and d2 < c.diverse_distinct2
        if self.low:
            low = share < c.recovered_share or repetitive or flat
        else:
            low = share <= c.collapsing_share or repetitive or flat
        return low, share <= c.collapse_share or repetitive

    def _judge(self, f: EvalFigures) -> str:
        c = self.cfg
        self.low, collapsed = self._low(f)
        loss = self.loss_now()
        if loss is not None:
            if self.unlearning(loss):
                return "unlearning"
            floor, top, ceiling = self.uniform_floor(), self.unigram_top(), self.learned_ceiling()
            if self.learned_at is None:
                if floor is not None and (self.min_level is None or self.min_level >= floor):
                    return "not_learning"
                if ceiling is not None and loss < ceiling:
                    self.learned_at = f.step
                elif top is not None and loss >= top:
                    return "partial"
                elif ceiling is not None or self.low:
                    return "unigram"
        if not self.diverse:
            if self.low:
                if self.learned_at is not None and self.evals_since_learned >= c.stuck_evals:
                    return "collapsed"  # learned, and greedy output never became diverse
                return "repetitive" if self.learned_at is not None or loss is None else "unigram"
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
        loss = finite(f.val_loss)
        if loss is not None:
            self.losses.append(loss)
            del self.losses[:-max(self.cfg.window, 1)]
            now = self.loss_now()
            self.evals_since_low += 1
            if now is not None and (self.min_level is None or now < self.min_level):
                self.min_level, self.evals_since_low = now, 0
            if self.min_loss is None or loss < self.min_loss:
                self.min_loss, self.min_step = loss, f.step
        if self.learned_at is not None:
            self.evals_since_learned += 1
        new = self._judge(f)
        out: list[Alert] = []
        if new == self.state:
            self.evals_in_state += 1
            if new in STUCK_STATES and self.stuck and not self.stuck_warned:
                self.stuck_warned = True
                out.append(self._alert(f, new, new, "warning",
                                       f"still {STUCK_STATES[new]} after {self.evals_in_state} evals (since step "
                                       f"{self.since_step}): {self.says(new, f)}; {self.evidence(f)}"))
            return out
        old, lasted = self.state, f.step - self.since_step
        self.state, self.since_step, self.evals_in_state = new, f.step, 1
        level = LEVEL[new]
        if new == "not_learning" and not old:
            level = "info"  # a random model at its first eval: not a warning
        msg = f"{self.says(new, f)}; {self.evidence(f)}"
        if old:
            msg += f"; {old} lasted {lasted} steps"
        out.append(self._alert(f, old, new, level, msg))
        return out

    @property
    def stuck(self) -> bool:
        """The state has lasted ``stuck_evals`` evals and the loss made no new low in the last part of them
        (:data:`STUCK_WITHOUT_LOW`): a run whose loss still falls is slow, not stuck."""
        return self.evals_in_state >= self.cfg.stuck_evals and \
            self.evals_since_low >= self.cfg.stuck_evals * STUCK_WITHOUT_LOW

    def observe_scale(self, step: int, scale: float) -> list[Alert]:
        """The mean ternary scale (absmean of the latent weights) at a weight snapshot."""
        if not math.isfinite(scale) or scale <= 0:
            return []
        self.last_scale = scale
        if self.peak_scale is None or scale > self.peak_scale:
            self.peak_scale, self.peak_scale_step = scale, step
        fall = self.peak_scale / scale
        if fall < self.cfg.decay_factor:
            if fall < self.cfg.decay_factor * DECAY_REARM:
                self.decay_warned = False
            return []
        loss = self.loss_now()
        improving = loss is not None and self.min_level is not None and loss <= self.min_level + 1e-9
        if self.decay_warned or (improving and fall < self.cfg.decay_factor ** DECAY_WHATEVER_LOSS):
            return []
        self.decay_warned = True
        loss_txt = f"held-out loss median of the last {len(self.losses[-self.cfg.window:])} evals {loss:.3f}, lowest " \
            f"eval {self.min_loss:.3f} at step {self.min_step}" if loss is not None and self.min_loss is not None \
            else "no held-out loss"
        msg = (f"weights decaying toward zero: the mean ternary scale fell {fall:.1f}x (from {self.peak_scale:.3g} at "
               f"step {self.peak_scale_step} to {scale:.3g}) {WHILE[improving]} ({loss_txt}); "
               "check the optimizer's weight decay (coupled L2 in Adam shrinks every weight); fix it in the running "
               "process: D in the dashboard or bitnet-tui ctl SESSION decouple (Adam's L2), W or set-wd to lower "
               "the decay, Z or no-decay-on norms,embeddings")
        return [Alert(step=step, time=time.time(), level="warning", code="decay", message=msg,
                      val_loss=loss, data={"scale": scale, "peak_scale": self.peak_scale,
                                           "peak_step": self.peak_scale_step, "fall": fall})]

    def observe_dead(self, step: int, names: list[str], total: int) -> list[Alert]:
        """Ternary layers whose every weight rounds to 0 at a snapshot (``names`` of ``total``): once, re-armed
        when none is left."""
        if not names:
            self.dead_warned = False
            return []
        if self.dead_warned:
            return []
        self.dead_warned = True
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        return [Alert(step=step, time=time.time(), level="warning", code="dead-layers",
                      message=f"{len(names)} of {total} ternary layers are entirely zero ({shown}): every weight "
                              "rounds to 0, so they pass nothing; this follows the scales' decay when the weights "
                              "are decaying", data={"layers": list(names[:50]), "total": total})]

    # -- words (analysis/words.py) -----------------------------------------------------------
    def says(self, state: str, f: EvalFigures) -> str:
        return words.says(self, state, f)

    def thresholds(self, generated: int) -> str:
        return words.thresholds(self, generated)

    def evidence(self, f: EvalFigures) -> str:
        return words.evidence(self, f)

    def _alert(self, f: EvalFigures, old: str, new: str, level: str, msg: str) -> Alert:
        data: dict[str, Any] = {"share": f.share, "thresholds": self.thresholds(f.generated)}
        for k in ("distinct2", "repetition", "entropy"):
            v = getattr(f, k)
            if v is not None:
                data[k] = v
        if self.min_loss is not None:
            data["min_loss"], data["min_step"] = self.min_loss, self.min_step
        if self.loss_now() is not None:
            data["loss_median"] = self.loss_now()
        if self.peak_scale is not None and self.last_scale is not None:
            data["scale"], data["peak_scale"] = self.last_scale, self.peak_scale
        return Alert(step=f.step, time=time.time(), level=level, code="detector", message=msg,
                     state_from=old, state_to=new, unique_tokens=f.unique, val_loss=finite(f.val_loss),
                     top_tokens=tuple(f.top_tokens)[:5], sample=f.sample[:500], data=data)

    # -- checkpoints and headers -----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "cfg"}

    def load_state_dict(self, d: Any) -> bool:
        """Restore an untrusted state (checkpoint, log header); False, nothing changed, unless every field fits."""
        if not isinstance(d, dict):
            return False
        kept: dict[str, Any] = {}
        for k, v in d.items():
            f = self.__dataclass_fields__.get(k)
            if f is None or k == "cfg":
                continue
            if not fits_type(str(f.type), v) or (k == "state" and v not in STATES and v != ""):
                return False
            kept[k] = [float(x) for x in v] if k == "losses" else v
        for k, v in kept.items():
            setattr(self, k, v)
        return True

    def header(self) -> dict[str, Any]:
        """What a log's header records of the detector: its thresholds and the state it starts from."""
        return {"config": asdict(self.cfg), "state": self.state_dict()}
