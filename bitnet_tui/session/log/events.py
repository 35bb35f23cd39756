"""The event stream: the only way a run tells the world what it does.

Events are frozen, slotted dataclasses holding plain values (floats, ints, strings, tuples, and dicts
nobody mutates): never tensors, so they may cross threads freely. Every consumer (session log, dashboard,
headless display, tests) sees the same objects. ``to_dict`` gives the JSON written to session logs;
non-finite floats become the strings "NaN", "Infinity" and "-Infinity" so every line stays valid JSON.
Reading them back is :mod:`bitnet_tui.session.log.schema`.

Schema 2 (this version) opened the format to any training loop: the header's BitNet- and corpus-specific
fields are optional, step and eval events carry an ``extra`` mapping of user metrics, and alerts carry
their evidence in ``data``. Schema 1 logs still read. A ``system`` event (:class:`SystemSample`: CPU, memory,
threads, load, the CUDA device's utilisation, memory and temperature) is a later kind of schema 2: a reader that
predates it counts its lines as malformed and reads the rest.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)


@dataclass(frozen=True, slots=True)
class Event:
    """Base class. ``kind`` names the event in the log; ``step`` is the last completed optimizer step."""

    kind: ClassVar[str] = "event"
    step: int
    time: float
    """Wall-clock seconds since the epoch when the event was made."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object for the log. Optional fields at their empty default (None, {}, ()) are left out:
        a reader fills them back in, and a step line stays as short as schema 1's."""
        d: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            v = getattr(self, f.name)
            if (v is None or v == {} or v == ()) and (f.default is not MISSING or f.default_factory is not MISSING):
                continue
            d[f.name] = jsonable(v)
        return d


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    """First event of every run: everything needed to understand and reproduce it."""

    kind: ClassVar[str] = "run_started"
    schema: int
    run_name: str
    config: dict[str, Any]
    """The run's configuration: bitnet-tui's RunConfig.to_dict(), or whatever a user's loop passed."""
    versions: dict[str, str] = field(default_factory=dict)
    argv: tuple[str, ...] = ()
    device: str = ""
    corpus: dict[str, Any] = field(default_factory=dict)
    """name, source, sha256, characters, train/val tokens (bitnet-tui's own runs)."""
    tokenizer: dict[str, Any] = field(default_factory=dict)
    """kind, vocab_size (what the tokenizer has), sha256, path."""
    params: int | None = None
    """Parameters, embeddings included."""
    vocab_size: int | None = None
    """The model's output vocabulary (padded beyond the tokenizer's when asked)."""
    ln_vocab: float | None = None
    """Loss of a model that predicts uniformly over the vocabulary."""
    unigram_entropy: float | None = None
    """Loss of a model that predicts only token frequencies (nats)."""
    total_steps: int | None = None
    parent: dict[str, Any] | None = None
    """For a forked or resumed session: {"session": path, "name", "step": fork step, "relation"}."""
    optimizer: dict[str, Any] = field(default_factory=dict)
    """name, lr, betas, weight_decay and where decay applies (the optimizer audit's reading)."""
    audit: tuple[dict[str, Any], ...] = ()
    """Findings of the optimizer audit at start: {code, message, fix}."""
    world: dict[str, Any] = field(default_factory=dict)
    """Distributed runs: size, backend, devices."""
    source: str = ""
    """What produced the log: bitnet-tui's trainer, a user's loop under Monitor, an HF or Lightning callback."""
    detector: dict[str, Any] = field(default_factory=dict)
    """{"config": the detector's thresholds, "state": its state at this session's first step (a fork's or a
    resume's checkpoint; absent for a fresh run)}: every reader's fold judges from the same start."""


@dataclass(frozen=True, slots=True)
class StepDone(Event):
    """One optimizer step."""

    kind: ClassVar[str] = "step"
    loss: float
    lr: float
    weight_decay: float = 0.0
    grad_norm: float | None = None
    """Global gradient norm before clipping."""
    tokens_per_s: float | None = None
    stage: int = 1
    """1 or 2 (two-stage schedules); 1 for the others."""
    lr_spread: float | None = None
    """Distributed runs: max - min of the LR across ranks (0 when they agree)."""
    mfu: float | None = None
    """Model FLOPs utilisation against the device's peak, where known."""
    peak_mem_mb: float | None = None
    """Peak device memory since the last step event (CUDA)."""
    extra: dict[str, float] = field(default_factory=dict)
    """User metrics passed to ``Monitor.step(**metrics)``."""


@dataclass(frozen=True, slots=True)
class EvalDone(Event):
    """Held-out loss and what greedy decoding looks like right now."""

    kind: ClassVar[str] = "eval"
    unique_tokens: int
    """Distinct token ids across all greedy continuations."""
    generated_tokens: int
    val_loss: float | None = None
    distinct2: float = 0.0
    """Distinct bigrams / bigrams, across continuations."""
    top_share: float = 0.0
    """Share of generated tokens taken by the most frequent one."""
    top_tokens: tuple[tuple[str, int], ...] = ()
    """Most frequent generated tokens (text, count), most frequent first."""
    entropy: float | None = None
    """Mean predictive entropy (nats) on held-out text."""
    samples: tuple[str, ...] = ()
    """Greedy continuations, decoded; untrusted text (escape before display)."""
    prompts: tuple[str, ...] = ()
    state: str = ""
    """Collapse detector state after this eval."""
    repetition: float | None = None
    """Mean over prompts of the share of a continuation's tokens that repeat an earlier token of it."""
    kl_unigram: float | None = None
    """Mean KL(model || unigram) on held-out text: ~0 for a model that predicts only frequencies."""
    report_unique: int | None = None
    """The report's metric: unique argmax tokens over ``report_prompts`` prompts of 8 random token ids."""
    report_prompts: int | None = None
    unigram_entropy: float | None = None
    """The unigram entropy this eval was judged against, when counted from the training batches as they passed
    (it replaces the header's figure from this eval on); None: the header's."""
    unigram_tokens: int | None = None
    """Training tokens that figure rests on."""
    extra: dict[str, float] = field(default_factory=dict)
    probes: dict[str, Any] = field(default_factory=dict)
    """Forward-probe figures (activations per BitLinear, attention per layer, output log Z): docs/diagnosis.md."""
    reduced: dict[str, Any] = field(default_factory=dict)
    """What this eval used of what it was given, where it used less to stay within the Monitor's ``eval_budget``:
    ``{"val_batches": [used, given], "prompts": [...], "gen_tokens": [...]}`` (only the reduced ones); empty when
    it read everything. The diversity figures rest on ``generated_tokens`` and ``len(samples)`` either way."""


@dataclass(frozen=True, slots=True)
class LayerWeights:
    """Ternary weight statistics of one quantised layer."""

    name: str
    neg: float
    zero: float
    pos: float
    scale: float
    """absmean of the latent weights: the ternary scale."""
    flip_rate: float
    """Share of ternary values that changed since the previous snapshot (NaN at the first)."""
    near_boundary: float
    """Share of latent weights within 5% of a rounding boundary (|w/scale| near 0.5)."""
    rms: float | None = None
    """RMS of the latent weights."""
    update_ratio: float | None = None
    """||W - W_prev|| / ||W|| of the latent weights over the one optimizer step before this snapshot (None when the
    step before was not kept: a snapshot off the ``weights_every`` grid)."""
    flip_back: float | None = None
    """Share of the ternary values that flipped since the previous snapshot and are back at the value they had the
    snapshot before it (None until three snapshots, or when nothing flipped)."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: jsonable(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class WeightsSnapshot(Event):
    kind: ClassVar[str] = "weights"
    layers: tuple[LayerWeights, ...]
    norm_gain: float | None = None
    """Mean |gain| of the model's RMSNorm/LayerNorm weights (coupled L2 decay pulls them toward 0)."""
    embed_norm: float | None = None
    """RMS of the token embedding."""


@dataclass(frozen=True, slots=True)
class Alert(Event):
    """A detector state change, a non-finite loss, a write failure, a crash, an audit finding."""

    kind: ClassVar[str] = "alert"
    level: str
    """info, warning or error."""
    code: str
    """detector, decay, nonfinite, io, crash, audit, command, checkpoint, remote, output."""
    message: str
    state_from: str = ""
    state_to: str = ""
    unique_tokens: int | None = None
    val_loss: float | None = None
    top_tokens: tuple[tuple[str, int], ...] = ()
    sample: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    """The figures behind the alert (shares, thresholds, lowest loss, scales)."""


@dataclass(frozen=True, slots=True)
class Intervention(Event):
    """A command the run applied: what changed, old -> new, who asked."""

    kind: ClassVar[str] = "intervention"
    action: str
    """A command's wire name (set_lr, scale_lr, undo_lr, pause, resume, stop, checkpoint, eval)."""
    old: float | str | None
    new: float | str | None
    source: str
    """dashboard, cli, remote, signal, auto: ..., api."""


@dataclass(frozen=True, slots=True)
class CheckpointSaved(Event):
    kind: ClassVar[str] = "checkpoint"
    path: str
    pinned: bool = False
    """Asked for by a person (kept when older periodic checkpoints are pruned)."""
    removed: tuple[str, ...] = ()
    """Older periodic checkpoints deleted to keep the newest ``--keep-checkpoints``."""


@dataclass(frozen=True, slots=True)
class RunEnded(Event):
    """Last event of a run that ended on its own terms. A log without one crashed (or is still running)."""

    kind: ClassVar[str] = "run_ended"
    reason: str
    """finished, stopped, interrupted, terminated, hangup, nonfinite, error, rank_failed."""
    error: str = ""


@dataclass(frozen=True, slots=True)
class SystemSample(Event):
    """What the training process costs the machine, sampled off the training thread every ``system_every`` seconds
    (rank 0's process; no device sync). Every figure is optional: one the platform cannot give is left out."""

    kind: ClassVar[str] = "system"
    cpu_percent: float | None = None
    """The process' CPU use over the last interval, all its threads: 100 is one core busy."""
    cpus: int | None = None
    """Logical CPUs of the machine (what ``cpu_percent`` and ``load1`` are read against)."""
    rss_mb: float | None = None
    """Resident memory of the process (MiB)."""
    threads: int | None = None
    """Threads of the process."""
    load1: float | None = None
    """The machine's load average over one minute."""
    gpu_util: float | None = None
    """CUDA: the device's utilisation (%) over the last sample period (NVML)."""
    gpu_mem_mb: float | None = None
    """CUDA: device memory in use (MiB): NVML's figure for the whole device, else what torch's allocator holds."""
    gpu_mem_total_mb: float | None = None
    gpu_temp_c: float | None = None
    """CUDA: the device's temperature (°C, NVML)."""


FAILED_ENDS = frozenset({"nonfinite", "error", "rank_failed"})
"""The end reasons of a run that failed (a run that ends so exits 1)."""


EVENT_TYPES: dict[str, type[Event]] = {
    c.kind: c for c in (RunStarted, StepDone, EvalDone, WeightsSnapshot, Alert, Intervention, CheckpointSaved, RunEnded,
                        SystemSample)
}


def jsonable(v: Any) -> Any:
    """A value as it is written to JSON: non-finite floats as strings, tuples as lists."""
    if isinstance(v, float):
        if math.isfinite(v):
            return v
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, (tuple, list)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, LayerWeights):
        return v.to_dict()
    return v
