"""Training diseases beyond the collapse detector: rules over the step, eval and weight-snapshot events.

Each rule reads one measured figure (``step`` losses and grad norms; an ``eval``'s ``probes``; a ``weights``
snapshot's ``update_ratio`` and ``flip_back``), enters at one threshold and leaves at a lower one (hysteresis),
and says so with an :class:`~bitnet_tui.session.log.events.Alert` whose ``code`` names the disease and whose ``data``
holds the figures and the thresholds. The same rules run live in the Monitor (:class:`DiseaseWatch`) and their
alerts are what :func:`disease_causes` (``diagnose``) and the dashboard read: one fold of one event stream.

Where a threshold comes from is written beside it; most are ours, measured on this project's runs
(docs/diagnosis.md gives the figures): the sources describe the signatures and give few numbers.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from bitnet_tui.session.log.events import Alert, EvalDone, Event, StepDone, WeightsSnapshot
from bitnet_tui.session.text import printable


@dataclass(frozen=True)
class DiseaseConfig:
    """The rules' thresholds (enter / leave): one place, named in every alert's ``data``."""

    spike_window: int = 100
    """Steps of loss history a spike is judged against. Ours: OLMo 2 (arXiv 2501.00656) judges gradient-norm and
    loss spikes against a rolling window of earlier steps; 100 steps keeps a short run judgeable."""
    spike_min_steps: int = 20
    """No spike is judged before this many steps of history (ours: the first steps' loss falls by nats)."""
    spike_z: float = 6.0
    """A loss this many standard deviations above the window's mean is a spike. Ours (OLMo 2's spike score counts
    values several standard deviations above a rolling mean; we take 6, which no healthy tiny run here reached)."""
    spike_rearm_z: float = 2.0
    """After a spike, the rule re-arms once the loss is back within this many standard deviations (hysteresis)."""
    spike_min_rise: float = 0.2
    """...and at least this many nats above the mean (ours: a quiet window's tiny spread is no spike)."""
    ratio_frozen: float = 1e-9
    """Update/weight ratio at or below this, with no ternary flip: the layer did not move (exactly 0 when its
    ``requires_grad`` is off or the optimizer does not hold it). CS231n (neural-networks-3) expects ~1e-3."""
    ratio_high: float = 0.3
    """Update/weight ratio at or above this in one step: the latent weights are rewritten, not trained. Ours:
    CS231n's ~1e-3 is for float weights under SGD; BitNet's latent weights under Adam move ~1e-2 of their norm
    per step in healthy runs here, and 0.14 in the first steps without warmup (Adam's first steps move every
    weight by ~LR, and init std is 0.02), so 1e-3 would flag every healthy run."""
    ratio_high_leave: float = 0.15
    clip_zero: float = 0.5
    """Share of a BitLinear input's int8 values that round to 0 at or above this: an outlier sets the per-token
    scale and the rest lose their resolution. Ours: healthy runs here reach 0.16 at the FFN's down input (heavy
    tailed, as BitNet a4.8, arXiv 2411.04965, describes it) and ~0.01 elsewhere."""
    clip_zero_leave: float = 0.3
    entropy_low: float = 0.2
    """Mean over a layer's heads of the normalised attention entropy (1 uniform, 0 one-hot) below this: entropy
    collapse. Zhai et al. 2023 (arXiv 2303.06296) name the pathologically low entropy and give no number; ours."""
    entropy_leave: float = 0.3
    attn_logit_high: float = 30.0
    """Largest q.k/sqrt(d) at or above this: attention logit growth (Wortsman et al. 2023, arXiv 2309.14322, after
    Dehghani et al.). Ours: a logit gap of 30 makes softmax one-hot in fp32 (e^-30 ~ 1e-13)."""
    attn_logit_leave: float = 20.0
    log_z_drift: float = 20.0
    """|mean log Z - its first measured value| at or above this: output logit divergence (Wortsman et al.; PaLM's
    z-loss, coefficient 1e-4, keeps log Z near 0). Ours: the sources give the mitigation, not a threshold."""
    log_z_leave: float = 10.0
    flip_back_high: float = 0.5
    """Share of flips that return to the value of two snapshots before, at or above this (with ``flip_min``
    flipping): weights oscillating across the rounding boundary (arXiv 2502.00490; Tequila). Ours."""
    flip_back_leave: float = 0.3
    flip_min: float = 0.01
    shock_rise: float = 1.0
    """Quantisation shock: the mean loss of the ``shock_steps`` steps after the stage changes is this many nats
    above the ``shock_steps`` before it. Ours (Hugging Face's 1.58-bit fine-tuning write-up shows the jump when a
    float model is switched to ternary at once, and a lambda ramp that avoids it; it gives no threshold)."""
    shock_steps: int = 10


CODES = {
    "loss-spike": "loss spikes", "update-ratio": "update/weight ratio too high", "frozen-layer": "frozen layer",
    "act-clip": "8-bit activation outliers", "attn-entropy": "attention entropy collapse",
    "attn-logit": "attention logit growth", "logit-z": "output logit divergence",
    "flip-back": "weights oscillating at the rounding boundary", "quant-shock": "quantisation shock",
}
"""Every disease rule's alert code and the disease it names."""

ONE_OFF = ("loss-spike", "quant-shock")
"""Diseases that are events (a spike, a jump), not states: their rules raise and never clear."""

ADVICE = {
    "loss-spike": ("keep the next run from spiking", "a longer warmup; clip the gradient norm"),
    "update-ratio": ("the latent weights move too far per step", "a lower peak LR or a longer warmup"),
    "frozen-layer": ("give the frozen layer to the optimizer", "requires_grad True, in a param group with LR > 0"),
    "act-clip": ("find where the outlier channels come from (the input, an embedding column, a norm gain)",
                 "keep such inputs at 8 bits or rotate them (Hadamard) before quantising (BitNet a4.8, v2)"),
    "attn-entropy": ("keep attention from collapsing", "warmup; QK-norm or sigmaReparam (Zhai et al. 2023)"),
    "attn-logit": ("bound q.k", "QK-layernorm (Wortsman et al. 2023)"),
    "logit-z": ("keep log Z near 0", "a z-loss, 1e-4 x log^2 Z (PaLM)"),
    "flip-back": ("let the flips settle", "momentum (Adam's beta1 0.9: measured 15% flip-back where beta1 0 gave "
                  "53%); a lower LR in the late phase (the BitNet FAQ's second stage)"),
    "quant-shock": ("ramp quantisation in instead of switching at once", "a lambda warmup (Hugging Face's "
                    "1.58-bit fine-tuning write-up)"),
}
"""What to try for each disease beyond the LR (``diagnose`` adds it when the disease is on): (what, how)."""


def _fmt(v: float) -> str:
    return f"{v:.3g}"


class DiseaseWatch:
    """Feed it every event (:meth:`observe`); it returns the alerts its rules raise. Pure: no torch, no I/O."""

    def __init__(self, cfg: DiseaseConfig | None = None) -> None:
        self.cfg = cfg or DiseaseConfig()
        self.on: dict[tuple[str, str], bool] = {}
        self.losses: deque[float] = deque(maxlen=self.cfg.spike_window)
        self.norms: deque[float] = deque(maxlen=self.cfg.spike_window)
        self.recent_norm_z: deque[float] = deque(maxlen=5)
        self.spiking = False
        self.first_log_z: float | None = None
        self.first_entropy: dict[str, float] = {}
        self.lr = math.nan
        self.stage: int | None = None
        self.stage_losses: deque[float] = deque(maxlen=self.cfg.shock_steps)
        self.shock: tuple[int, float, list[float]] | None = None
        """(step of the change, mean before, losses after) while a stage change is being judged."""

    def observe(self, ev: Event) -> list[Alert]:
        if isinstance(ev, StepDone):
            return self._step(ev)
        if isinstance(ev, EvalDone) and isinstance(ev.probes, dict) and ev.probes:
            return self._probes(ev)
        if isinstance(ev, WeightsSnapshot):
            return self._weights(ev)
        return []

    # -- hysteresis ---------------------------------------------------------------------------
    def _flag(self, code: str, key: str, enter: bool, leave: bool) -> str | None:
        """'enter' or 'leave' when the (code, key) state changes, else None."""
        was = self.on.get((code, key), False)
        if not was and enter:
            self.on[(code, key)] = True
            return "enter"
        if was and leave:
            self.on[(code, key)] = False
            return "leave"
        return None

    def _alert(self, step: int, code: str, change: str, message: str, data: dict[str, Any]) -> Alert:
        level = "warning" if change == "enter" else "info"
        text = f"{CODES[code]}: {message}" if change == "enter" else f"{CODES[code]} cleared: {message}"
        return Alert(step=step, time=time.time(), level=level, code=code, message=text,
                     data={"disease": code, "change": change, **data})

    # -- step rules: loss spikes, quantisation shock -------------------------------------------
    def _step(self, ev: StepDone) -> list[Alert]:
        c, out = self.cfg, []
        self.lr = ev.lr
        gn = ev.grad_norm if ev.grad_norm is not None and math.isfinite(ev.grad_norm) else None
        if gn is not None:
            if len(self.norms) >= c.spike_min_steps:
                m, sd = statistics.fmean(self.norms), statistics.pstdev(self.norms)
                self.recent_norm_z.append((gn - m) / sd if sd > 0 else 0.0)
            self.norms.append(gn)
        loss = ev.loss
        if not math.isfinite(loss):
            return out  # the non-finite alert says it
        out += self._shock(ev.step, ev.stage, loss)
        if len(self.losses) >= c.spike_min_steps:
            m, sd = statistics.fmean(self.losses), statistics.pstdev(self.losses)
            z = (loss - m) / sd if sd > 0 else (math.inf if loss > m else 0.0)
            if not self.spiking and z >= c.spike_z and loss - m >= c.spike_min_rise:
                self.spiking = True
                gz = max(self.recent_norm_z, default=None)
                before = f"; the grad norm was {gz:.1f} sd above its window in the 5 steps up to it" \
                    if gz is not None and gz >= c.spike_z else "; no grad-norm spike before it"
                out.append(self._alert(ev.step, "loss-spike", "enter",
                                       f"loss {loss:.3f} at step {ev.step} is {z:.1f} sd above the mean {m:.3f} (sd "
                                       f"{sd:.3f}) of the last {len(self.losses)} steps (threshold {c.spike_z:g} sd)"
                                       f"{before}; LR {_fmt(ev.lr)}",
                                       {"loss": loss, "mean": m, "sd": sd, "z": z, "grad_z": gz, "lr": ev.lr,
                                        "threshold": c.spike_z}))
                return out  # the spike stays out of the window it is judged against
            if self.spiking and z <= c.spike_rearm_z:
                self.spiking = False
            if self.spiking:
                return out
        self.losses.append(loss)
        return out

    def _shock(self, step: int, stage: int, loss: float) -> list[Alert]:
        c = self.cfg
        if self.stage is not None and stage != self.stage and len(self.stage_losses) >= c.shock_steps // 2:
            self.shock = (step, statistics.fmean(self.stage_losses), [])
        self.stage = stage
        self.stage_losses.append(loss)
        if self.shock is None:
            return []
        at, before, after = self.shock
        after.append(loss)
        if len(after) < c.shock_steps:
            return []
        self.shock = None
        rise = statistics.fmean(after) - before
        if rise < c.shock_rise:
            return []
        return [self._alert(step, "quant-shock", "enter",
                            f"the mean loss rose {rise:.2f} nats (from {before:.3f} to {before + rise:.3f}) over "
                            f"the {c.shock_steps} steps after the stage changed at step {at} (threshold "
                            f"{c.shock_rise:g})", {"rise": rise, "before": before, "at": at,
                                                   "threshold": c.shock_rise})]

    # -- eval rules: activations, attention, output logits --------------------------------------
    def _probes(self, ev: EvalDone) -> list[Alert]:
        c, p, out = self.cfg, ev.probes, []
        for name, f in sorted(_dict(p.get("act")).items()):
            zero = _num(f, "zero")
            if zero is None:
                continue
            ch = self._flag("act-clip", name, zero >= c.clip_zero, zero <= c.clip_zero_leave)
            if ch:
                out.append(self._alert(ev.step, "act-clip", ch,
                                       f"{printable(name, 80)}: {zero:.0%} of its int8 activations round to 0 (crest "
                                       f"absmax/RMS {_fmt(_num(f, 'crest') or math.nan)}, largest "
                                       f"{_fmt(_num(f, 'crest_max') or math.nan)}; enter >= {c.clip_zero:.0%}, "
                                       f"leave <= {c.clip_zero_leave:.0%})",
                                       {"layer": name, "zero": zero, "crest": _num(f, "crest"),
                                        "threshold": c.clip_zero}))
        for name, f in sorted(_dict(p.get("attn")).items()):
            raw = f.get("entropy") if isinstance(f, dict) else None
            ents = [float(x) for x in raw if _num({"v": x}, "v") is not None] if isinstance(raw, list) else []
            if ents:
                mean = statistics.fmean(ents)
                first = self.first_entropy.setdefault(name, mean)
                ch = self._flag("attn-entropy", name, mean < c.entropy_low, mean > c.entropy_leave)
                if ch:
                    out.append(self._alert(ev.step, "attn-entropy", ch,
                                           f"{printable(name, 80)}: mean normalised attention entropy {mean:.2f} "
                                           f"(first measured {first:.2f}; heads {', '.join(f'{x:.2f}' for x in ents)}"
                                           f"; enter < {c.entropy_low:g}, leave > {c.entropy_leave:g})",
                                           {"layer": name, "entropy": mean, "first": first, "heads": ents,
                                            "threshold": c.entropy_low}))
            top = _num(f, "max_logit")
            if top is not None:
                ch = self._flag("attn-logit", name, top >= c.attn_logit_high, top < c.attn_logit_leave)
                if ch:
                    out.append(self._alert(ev.step, "attn-logit", ch,
                                           f"{printable(name, 80)}: largest q.k/sqrt(d) {top:.1f} (enter >= "
                                           f"{c.attn_logit_high:g}, leave < {c.attn_logit_leave:g})",
                                           {"layer": name, "max_logit": top, "threshold": c.attn_logit_high}))
        log_z = _num(p, "log_z")
        if log_z is not None:
            if self.first_log_z is None:
                self.first_log_z = log_z
            drift = abs(log_z - self.first_log_z)
            ch = self._flag("logit-z", "", drift >= c.log_z_drift, drift < c.log_z_leave)
            if ch:
                out.append(self._alert(ev.step, "logit-z", ch,
                                       f"mean log Z of the output logits {log_z:.1f} (first measured "
                                       f"{self.first_log_z:.1f}, largest |logit| {_fmt(_num(p, 'logit_max') or 0)};"
                                       f" enter at a drift >= {c.log_z_drift:g}, leave < {c.log_z_leave:g})",
                                       {"log_z": log_z, "first": self.first_log_z, "drift": drift,
                                        "threshold": c.log_z_drift}))
        return out

    # -- snapshot rules: update/weight ratio, frozen layers, flip-back ---------------------------
    def _weights(self, ev: WeightsSnapshot) -> list[Alert]:
        c, out = self.cfg, []
        ratios = {lw.name: lw.update_ratio for lw in ev.layers
                  if lw.update_ratio is not None and math.isfinite(lw.update_ratio)}
        if ratios:
            moving = [n for n, r in ratios.items() if r > c.ratio_frozen]
            for lw in ev.layers:
                r = ratios.get(lw.name)
                if r is None:
                    continue
                still = r <= c.ratio_frozen and not (lw.flip_rate > 0)
                ch = self._flag("frozen-layer", lw.name, still and bool(moving), r > c.ratio_frozen * 1e3)
                if ch:
                    out.append(self._alert(ev.step, "frozen-layer", ch,
                                           f"{printable(lw.name, 80)}: update/weight ratio {r:.2g} over the step "
                                           f"before the snapshot, flip rate {_fmt(lw.flip_rate)}, while "
                                           f"{len(moving)} other layer(s) moved (median ratio "
                                           f"{_fmt(statistics.median(ratios[n] for n in moving))}); LR {_fmt(self.lr)}",
                                           {"layer": lw.name, "ratio": r, "flip_rate": lw.flip_rate,
                                            "threshold": c.ratio_frozen}))
            top_name, top = max(ratios.items(), key=lambda kv: kv[1])
            ch = self._flag("update-ratio", "", top >= c.ratio_high, top < c.ratio_high_leave)
            if ch:
                out.append(self._alert(ev.step, "update-ratio", ch,
                                       f"largest update/weight ratio {top:.3g} ({printable(top_name, 80)}) in one "
                                       f"step, median {_fmt(statistics.median(ratios.values()))}; LR {_fmt(self.lr)}"
                                       f" (enter >= {c.ratio_high:g}, leave < {c.ratio_high_leave:g}; CS231n's "
                                       "~1e-3 is for float weights)",
                                       {"ratio": top, "layer": top_name, "lr": self.lr, "threshold": c.ratio_high}))
        backs = [(lw.flip_back, lw.flip_rate, lw.near_boundary) for lw in ev.layers
                 if lw.flip_back is not None and math.isfinite(lw.flip_back) and math.isfinite(lw.flip_rate)]
        if backs:
            back = statistics.fmean(b for b, _, _ in backs)
            flips = statistics.fmean(f for _, f, _ in backs)
            near = statistics.fmean(n for _, _, n in backs if math.isfinite(n)) if backs else math.nan
            ch = self._flag("flip-back", "", back >= c.flip_back_high and flips >= c.flip_min,
                            back < c.flip_back_leave or flips < c.flip_min / 2)
            if ch:
                out.append(self._alert(ev.step, "flip-back", ch,
                                       f"{back:.0%} of the ternary flips since the last snapshot went back to the "
                                       f"value of the one before (flip rate {flips:.3f}; {near:.1%} of latent "
                                       f"weights within 5% of the rounding boundary; enter >= "
                                       f"{c.flip_back_high:.0%} with flip rate >= {c.flip_min:g})",
                                       {"flip_back": back, "flip_rate": flips, "near_boundary": near,
                                        "threshold": c.flip_back_high}))
        return out


def _dict(v: Any) -> dict:
    """A mapping read from a log, or {} (a hostile file may hold anything there)."""
    return v if isinstance(v, dict) else {}


def _num(d: Any, key: str) -> float | None:
    v = d.get(key) if isinstance(d, dict) else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


@dataclass(frozen=True)
class DiseaseCause:
    """One disease a run's alerts show, for ``diagnose``'s causes (:mod:`~.causes`, one row of its table each)."""

    code: str
    title: str
    evidence: str
    tier: int
    """1 while the rule's alert is on at the end (a one-off event: once raised), 2 when raised and since cleared
    (the figure is below its threshold now): :data:`~bitnet_tui.session.analysis.causes.TIERS`."""


def disease_causes(fold_or_events: Any) -> list[DiseaseCause]:
    """The diseases a run's alerts raised, from a :class:`~bitnet_tui.session.analysis.fold.RunFold` (its
    timeline) or a list of events; codes in the order they first appeared, the latest alert as the evidence."""
    items: list[tuple[str, str, str, int]] = []  # (code, level, text, step)
    timeline = getattr(fold_or_events, "timeline", None)
    if timeline is not None:
        items = [(i.code, i.level, i.text, i.step) for i in timeline if i.kind == "alert" and i.code in CODES]
    else:
        items = [(e.code, e.level, printable(e.message.split("\n")[0], 300), e.step) for e in fold_or_events
                 if isinstance(e, Alert) and e.code in CODES]
    seen: dict[str, list[tuple[str, str, int]]] = {}
    for code, level, text, step in items:
        seen.setdefault(code, []).append((level, text, step))
    out = []
    for code, hits in seen.items():
        raised = [h for h in hits if h[0] != "info"]
        if not raised:
            continue
        still = code in ONE_OFF or hits[-1][0] != "info"
        _, text, step = raised[-1]
        ev = f"{len(raised)} alert(s), the last at step {step}: {text}" + ("" if still else "; since cleared")
        out.append(DiseaseCause(code, CODES[code], ev, 1 if still else 2))
    return out


def disease_tries(found: list[DiseaseCause]) -> list[tuple[str, str]]:
    """What to try beyond the LR for each disease on at the end (tier 1): (what, how)."""
    return [ADVICE[c.code] for c in found if c.tier == 1 and c.code in ADVICE]
