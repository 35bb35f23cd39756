"""Evals and weight snapshots, judged by the detector: the figures every screen and verdict rests on."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch

from bitnet_model.nn.device import one_thread_on_cpu
from bitnet_tui.instrument.config import MonitorConfig, TrainerFacts
from bitnet_tui.instrument.eval_budget import EvalBudget, EvalSize, min_tokens
from bitnet_tui.instrument.evals import eval_mode, evaluate, logits_of, report_prompt_ids
from bitnet_tui.instrument.probes import safe_probe
from bitnet_tui.instrument.unigram import GIVEN, HELD_OUT, TRAINING, TokenCounts, training_note
from bitnet_tui.instrument.weights import (
    Quantize,
    WeightWatcher,
    embedding_rms,
    find_ternary_layers,
    norm_gains,
    unwrap,
)
from bitnet_tui.session.analysis.detector import CollapseDetector, DetectorConfig, EvalFigures
from bitnet_tui.session.analysis.diseases import DiseaseWatch
from bitnet_tui.session.analysis.thresholds import DEAD_ZERO
from bitnet_tui.session.analysis.words import reduced_words
from bitnet_tui.session.log.events import Alert, EvalDone, Event, WeightsSnapshot


def unigram_stats(counts: torch.Tensor) -> tuple[float, torch.Tensor]:
    """(entropy in nats, log-probabilities with a floor for unseen tokens) of token counts."""
    c = counts.double()
    p = c / c.sum()
    nz = p[p > 0]
    entropy = float(-(nz * nz.log()).sum())
    floor = 0.5 / float(c.sum())  # an unseen token gets half a count
    q = p.clamp(min=floor)
    return entropy, (q / q.sum()).log().float()  # renormalised: a KL against it is never negative


@dataclass(frozen=True)
class Baselines:
    vocab: int | None
    ln_vocab: float | None
    unigram_entropy: float | None
    unigram_log: torch.Tensor | None
    estimated: bool
    """The unigram distribution was estimated from the held-out batches' targets."""
    tokens: int = 0
    """Tokens the estimate rests on (0 when figures were given)."""


def baselines(model: Any, prompts: torch.Tensor | None, val_batches: Sequence[Any], *, vocab_size: int | None,
              unigram: torch.Tensor | None, unigram_entropy: float | None) -> Baselines:
    """ln(vocab) and the unigram entropy a run's loss is read against. The vocabulary is the model's output width
    (probed with one forward when not given); without token counts, they are estimated from the held-out targets."""
    vocab = vocab_size or _probe_vocab(model, prompts)
    estimated = False
    if unigram is None and unigram_entropy is None and val_batches and vocab:
        unigram = target_counts(val_batches, vocab)
        estimated = unigram is not None
    unigram_log = None
    if unigram is not None:
        h, unigram_log = unigram_stats(unigram)
        unigram_entropy = unigram_entropy if unigram_entropy is not None else h
    tokens = int(unigram.sum()) if estimated and unigram is not None else 0
    return Baselines(vocab, math.log(vocab) if vocab else None, unigram_entropy, unigram_log, estimated, tokens)


def _probe_vocab(model: Any, prompts: torch.Tensor | None) -> int | None:
    if prompts is None or not prompts.numel():
        return None
    m = unwrap(model)
    with eval_mode(m), torch.no_grad(), torch.random.fork_rng(devices=[]):
        return int(logits_of(m(prompts[:1, :2])).shape[-1])


def target_counts(val_batches: Sequence[Any], vocab: int) -> torch.Tensor | None:
    """Token counts of the held-out batches' targets (``(x, y)`` tuples or dicts with ``labels``)."""
    counts = torch.zeros(vocab, dtype=torch.float64)
    for b in val_batches:
        y = b.get("labels") if isinstance(b, dict) else b[1] if isinstance(b, (tuple, list)) else None
        if isinstance(y, torch.Tensor):
            y = y.flatten().cpu()
            y = y[(y >= 0) & (y < vocab)]
            counts += torch.bincount(y, minlength=vocab).double()
    return counts if counts.sum() > 0 else None


class Diagnostics:
    """Everything a Monitor measures about a model, outside the training step."""

    def __init__(self, model: Any, *, prompts: torch.Tensor | None, gen_tokens: int,
                 decode: Callable | None, token_text: Callable | None, val_batches: Sequence[Any],
                 loss_fn: Callable | None, layers: Any, quantize: Quantize | None, detector: DetectorConfig,
                 ln_vocab: float | None, unigram_entropy: float | None, unigram_log: torch.Tensor | None,
                 report_prompts: torch.Tensor | None, context: int | None,
                 token_counts: Callable[[], torch.Tensor | None] | None = None, unigram_source: str = GIVEN,
                 unigram_tokens: int = 0, eval_budget: float | None = None, eval_every: int = 100,
                 held_out: Callable[[], AbstractContextManager[Any]] | None = None) -> None:
        self.model = model
        self.held_out = held_out or contextlib.nullcontext
        """The context the held-out batches are read in (the training step's autocast, when the trainer gives it)."""
        self.prompts = prompts
        self.gen_tokens = gen_tokens
        self.decode = decode
        self.token_text = token_text
        self.val_batches = list(val_batches)
        self.loss_fn = loss_fn
        self.layers = find_ternary_layers(model, layers)
        self.watcher = WeightWatcher(quantize)
        self.detector = CollapseDetector(detector, ln_vocab, unigram_entropy)
        self.diseases = DiseaseWatch()
        """Issue 23's rules (session/analysis/diseases.py): evals and snapshots here, step events from the readback."""
        self.unigram_log = unigram_log
        self.report_prompts = report_prompts
        self.context = context
        self.token_counts = token_counts
        """The training batches' token counts so far (read at an eval), or None."""
        self.unigram_source, self.unigram_tokens = unigram_source, unigram_tokens
        full = EvalSize(len(self.val_batches), int(prompts.shape[0]) if prompts is not None else 0, gen_tokens)
        self.budget = EvalBudget(eval_budget, eval_every, full,
                                 floor_tokens=min_tokens(gen_tokens, self.detector.cfg.repetition_collapsed))
        """Sizes each eval to the share of wall time it may take; the Monitor feeds it the step times."""
        self._reduced: dict[str, Any] = {}

    @property
    def device(self) -> torch.device:
        p = next(iter(unwrap(self.model).parameters()), None)
        return p.device if p is not None else torch.device("cpu")

    def _training_unigram(self, step: int) -> list[Event]:
        """Judge against the training batches' counts once they outnumber the held-out sample's (never when
        counts were given): the detector's figure and the KL's reference move to them."""
        if self.token_counts is None or self.unigram_source == GIVEN:
            return []
        c = self.token_counts()
        n = int(c.sum()) if c is not None else 0
        if c is None or (self.unigram_source == HELD_OUT and n <= self.unigram_tokens):
            return []
        h, self.unigram_log = unigram_stats(c)
        before, before_n = self.detector.unigram_entropy, self.unigram_tokens
        out: list[Event] = []
        if self.unigram_source != TRAINING:
            out.append(Alert(step=step, time=time.time(), level="info", code="unigram",
                             message=training_note(h, n, before if self.unigram_source == HELD_OUT else None, before_n),
                             data={"unigram_entropy": h, "tokens": n, "source": TRAINING}))
        self.detector.unigram_entropy, self.unigram_source, self.unigram_tokens = h, TRAINING, n
        return out

    def eval(self, step: int) -> list[Event]:
        """One eval, sized by :attr:`budget`: an ``eval`` event, the detector's alerts, and an ``eval_budget`` alert
        when its size changed."""
        t0 = time.perf_counter()
        notes = self._training_unigram(step)
        size = self.budget.plan()
        prompts = self.prompts[:size.prompts] if self.prompts is not None else None
        val = self.val_batches[:size.batches]
        r = evaluate(unwrap(self.model), prompts=prompts, gen_tokens=size.tokens, decode=self.decode,
                     token_text=self.token_text, val_batches=val, loss_fn=self.loss_fn, unigram_log=self.unigram_log,
                     report_prompts=self.report_prompts, context=self.context, held_out=self.held_out)
        with one_thread_on_cpu(self.device):  # many small ops: one thread is as fast, and never spins
            probes = safe_probe(unwrap(self.model), val[0] if val else None, prompts, self.loss_fn)
        self.budget.eval_took(size, time.perf_counter() - t0, r.heldout_s, r.generate_s)
        reduced = size.reduced_from(self.budget.full)
        if reduced != self._reduced:
            notes.append(self._size_alert(step, reduced))
            self._reduced = reduced
        alerts = self.detector.observe(EvalFigures(
            step=step, unique=r.unique_tokens, generated=r.generated_tokens, val_loss=r.val_loss, entropy=r.entropy,
            distinct2=r.distinct2, repetition=r.repetition, top_tokens=r.top_tokens,
            sample=r.samples[0] if r.samples else ""))
        ev = EvalDone(
            step=step, time=time.time(), val_loss=r.val_loss, unique_tokens=r.unique_tokens,
            generated_tokens=r.generated_tokens, distinct2=r.distinct2, top_share=r.top_share,
            top_tokens=r.top_tokens, entropy=r.entropy, samples=r.samples, prompts=r.prompts,
            state=self.detector.state, repetition=r.repetition, kl_unigram=r.kl_unigram,
            report_unique=r.report_unique, report_prompts=r.report_prompts,
            unigram_entropy=self.detector.unigram_entropy if self.unigram_source == TRAINING else None,
            unigram_tokens=self.unigram_tokens if self.unigram_source == TRAINING else None, probes=probes,
            reduced=reduced)
        return [*notes, ev, *alerts, *self.diseases.observe(ev)]

    def _size_alert(self, step: int, reduced: dict[str, Any]) -> Alert:
        b = self.budget
        if reduced:
            text = (f"evals now read {reduced_words(reduced)} to stay within the eval budget: {b.reason()}; "
                    "the diversity figures rest on the samples each eval lists")
        else:
            text = "evals read everything they were given again: a full eval fits the eval budget"
        return Alert(step=step, time=time.time(), level="info", code="eval_budget", message=text,
                     data={"reduced": reduced, "eval_budget": b.share, "step_s": b.step_time(),
                           "full_eval_s": b.cost(b.full)})

    def keep_step_before(self, due: bool) -> None:
        """``due``: the next optimizer step ends at a weight snapshot; keep the latent weights for its update/weight
        ratio."""
        if due:
            self.watcher.keep_step_before(self.layers)

    def weights(self, step: int) -> list[Event]:
        """One weight snapshot, and the detector's alert when the ternary scales are decaying."""
        with one_thread_on_cpu(self.device):
            layers = self.watcher.snapshot(self.layers)
            gain, emb = norm_gains(self.model), embedding_rms(self.model)
        ev = WeightsSnapshot(step=step, time=time.time(), layers=layers, norm_gain=gain, embed_norm=emb)
        scales = [lw.scale for lw in layers if math.isfinite(lw.scale)]
        alerts = self.detector.observe_scale(step, sum(scales) / len(scales)) if scales else []
        alerts += self.detector.observe_dead(step, [lw.name for lw in layers if lw.zero >= DEAD_ZERO], len(layers))
        return [ev, *alerts, *self.diseases.observe(ev)]

    def state_dict(self) -> dict[str, Any]:
        return {"detector": self.detector.state_dict(), "watcher": self.watcher.state_dict(),
                "unigram": {"source": self.unigram_source, "tokens": self.unigram_tokens}}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.detector.load_state_dict(d.get("detector", {}))
        self.watcher.load_state_dict(d.get("watcher", {}))
        u = d.get("unigram") or {}
        if u.get("source") == TRAINING and self.unigram_source != GIVEN:  # the figure the detector was restored with
            self.unigram_source, self.unigram_tokens = TRAINING, int(u.get("tokens") or 0)


def diagnostics_for(model: Any, decode: Callable | None, prompts: Any, val_batches: Sequence[Any],
                    o: MonitorConfig, f: TrainerFacts, device: torch.device, eval_every: int = 100,
                    ) -> tuple[Baselines, Diagnostics, TokenCounts | None]:
    """A Monitor's baselines, diagnostics and training-token counter (None when the unigram figure was given)
    from its arguments (``prompts``: a tensor or lists of ids)."""
    if prompts is not None and not isinstance(prompts, torch.Tensor):
        try:
            prompts = torch.tensor(prompts, dtype=torch.long)
        except (TypeError, ValueError, OverflowError, RuntimeError):  # torch's words name its own internals
            raise ValueError("Monitor(prompts=...): the prompts must be lists of whole token ids, all of one length "
                             "(or a 2-D tensor of ids)") from None
    prompts = prompts.to(device) if prompts is not None else None
    unigram = o.unigram
    if unigram is not None and not isinstance(unigram, torch.Tensor):
        unigram = torch.tensor(unigram, dtype=torch.float64)
    b = baselines(model, prompts, val_batches, vocab_size=o.vocab_size, unigram=unigram,
                  unigram_entropy=f.unigram_entropy)
    counts = TokenCounts(b.vocab) if b.vocab and unigram is None and f.unigram_entropy is None else None
    d = Diagnostics(
        model, prompts=prompts, gen_tokens=o.gen_tokens, decode=decode, token_text=o.token_text,
        val_batches=val_batches, loss_fn=o.loss_fn, layers=o.layers, quantize=f.quantize,
        detector=o.detector or DetectorConfig(), ln_vocab=b.ln_vocab, unigram_entropy=b.unigram_entropy,
        unigram_log=b.unigram_log, context=o.context, token_counts=counts.read if counts is not None else None,
        unigram_source=HELD_OUT if b.estimated else GIVEN if b.unigram_entropy is not None else "",
        unigram_tokens=b.tokens, eval_budget=o.eval_budget, eval_every=eval_every, held_out=f.held_out,
        report_prompts=report_prompt_ids(b.vocab, device) if o.report_metric and b.vocab else None)
    return b, d, counts
