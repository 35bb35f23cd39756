"""What a Monitor can be told beyond the common arguments: :class:`MonitorConfig`, checked when it is made.

``Monitor(model, optimizer, decode=..., prompts=..., val_batches=..., sessions_dir=..., run_name=...,
config=..., eval_every=...)`` covers a typical loop; everything else is a field here, each with its meaning
below. :class:`TrainerFacts` holds what only a trainer that owns its data and its schedule knows (bitnet-tui's
own trainer fills it through :func:`bitnet_tui.instrument.for_trainer.monitor_for`); a user's loop leaves it out
and the Monitor measures those figures itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitnet_tui.session.analysis.detector import DetectorConfig

NONFINITE = ("auto", "pause", "stop")


@dataclass(kw_only=True)
class MonitorConfig:
    """The Monitor's less common settings. Every field is optional; a bad value raises ``ValueError`` here."""

    session_path: str | Path | None = None
    """The log file to write (created empty by whoever named it); default: a new file in ``sessions_dir``."""
    weights_every: int | None = None
    """Steps between weight snapshots (ternary split, flip rate, scales); default: ``eval_every``."""
    gen_tokens: int = 32
    """Greedy tokens generated from each prompt at an eval."""
    eval_budget: float | None = 0.05
    """The share of wall time evals may take (0 < share < 1): an eval that would take more uses fewer held-out
    batches, then fewer prompts, then shorter continuations, and says so in the log (each eval's ``reduced``, an
    ``eval_budget`` alert when the size changes); None: every eval reads everything it was given
    (:mod:`bitnet_tui.instrument.eval_budget`)."""
    token_text: Callable[[int], str] | None = None
    """One token id as text, for the top-tokens list; default: ``decode([id])``."""
    loss_fn: Callable[..., Any] | None = None
    """``loss_fn(model, batch) -> loss`` for held-out batches that are not ``(inputs, targets)`` pairs."""
    layers: Sequence[Any] | None = None
    """The ternary layers to watch; default: every module whose class name contains ``BitLinear``."""
    vocab_size: int | None = None
    """The model's output width; default: probed with one forward pass."""
    unigram: Any = None
    """Token counts of the training text (a tensor or a sequence, one count per token id): the unigram
    entropy the loss is read against. Without it the Monitor counts the targets of the held-out batches, a
    figure biased low on a small sample, and the header says so."""
    save: Callable[[Path], Any] | None = None
    """``save(path)`` writes a checkpoint; without it, checkpoint commands are refused with an alert."""
    checkpoint_every: int = 0
    """Steps between periodic checkpoints through ``save`` (0: only those asked for, and the final one)."""
    keep_checkpoints: int = 3
    """Periodic checkpoints kept (0: all); asked-for and final ones are always kept."""
    control: bool = True
    """Serve the owner-only control socket beside the log (``attach``, ``ctl``)."""
    detector: DetectorConfig | None = None
    """The detector's thresholds; default: ``DetectorConfig()``."""
    total_steps: int | None = None
    """Steps the loop will run, for progress and for the evals at the last step."""
    report_metric: bool = False
    """Also measure the seed report's 20-token figure at each eval."""
    on_nonfinite: str = "auto"
    """A non-finite loss: "stop" (``should_stop``; the update was skipped or the checkpoint before it is named),
    "pause" (the loop waits in ``step`` until ``bitnet-tui ctl SESSION resume`` or ``stop``, said on stderr), or
    "auto": stop, unless the autopilot is on (it lowers the LR and resumes): a job nobody watches never hangs."""
    log_every: int = 1
    """Steps between read-backs of the loss from the device (1: a host sync every step)."""
    tensorboard: str | None = None
    """Also write every figure to this TensorBoard log directory."""
    trackio: str | None = None
    """Also log every figure to this trackio project."""
    argv: Sequence[str] | None = None
    """The command line recorded in the header; default: ``sys.argv``."""
    context: int | None = None
    """The model's longest sequence: prompts and continuations are cut to fit."""
    parent: dict[str, Any] | None = None
    """The run this one continues (``{"session": ..., "step": ...}``), shown in the header."""
    autopilot: bool = False
    """Opt-in: when the detector names decaying weights or un-learning and the audit names coupled L2 or decay on
    norms/embeddings, apply the matching fix once; lower the LR on a loss spike or a non-finite loss (with a
    cooldown). Every action is an intervention with source ``auto``, undoable."""
    system_every: float = 2.0
    """Seconds between ``system`` samples (CPU, memory, threads, load; on CUDA the device's utilisation, memory and
    temperature), taken by a thread of rank 0 (no device sync); 0: none."""

    @property
    def stops_on_nonfinite(self) -> bool:
        """Whether a non-finite loss stops the run (else it pauses, for a person or the autopilot to resume)."""
        return self.on_nonfinite == "stop" or (self.on_nonfinite == "auto" and not self.autopilot)

    def __post_init__(self) -> None:
        _positive("gen_tokens", self.gen_tokens)
        b = self.eval_budget
        if b is not None and (isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 < b < 1):
            raise ValueError(f"eval_budget must be a share of wall time between 0 and 1 (0.05: 5%) or None, got {b!r}")
        _positive("log_every", self.log_every)
        if self.weights_every is not None:
            _positive("weights_every", self.weights_every)
        for name in ("checkpoint_every", "keep_checkpoints"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {v!r}")
        if self.total_steps is not None:
            _positive("total_steps", self.total_steps)
        if self.on_nonfinite not in NONFINITE:
            raise ValueError(f"on_nonfinite must be one of {', '.join(NONFINITE)}, got {self.on_nonfinite!r}")
        every = self.system_every
        if isinstance(every, bool) or not isinstance(every, (int, float)) or not (every == 0 or 0.1 <= every <= 3600):
            raise ValueError(f"system_every must be 0 (off) or seconds from 0.1 to 3600, got {every!r}")
        if self.detector is not None and not isinstance(self.detector, DetectorConfig):
            raise ValueError(f"detector must be a DetectorConfig, got {type(self.detector).__name__}")


@dataclass(kw_only=True)
class TrainerFacts:
    """What a trainer that owns its data, schedule and checkpoints knows that a Monitor cannot measure."""

    unigram_entropy: float | None = None
    """The corpus' unigram entropy, when computed elsewhere."""
    quantize: Callable[..., Any] | None = None
    """The weight quantiser of the watched layers; default: absmean ternary."""
    checkpoint_suffix: str = ""
    """The suffix of checkpoint names (``step00000100.pt``)."""
    eval_at_start: bool = True
    """Eval at step 0, before training (a fresh run)."""
    start_step: int = 0
    """The step a resumed run starts from."""
    header: dict[str, Any] = field(default_factory=dict)
    """Extra header fields: the corpus and the tokenizer."""
    audit: dict[str, Any] | bool = True
    """The optimizer audit's inputs (``peak_lr``, ``hidden``, ``schedule``), or False to skip the audit."""
    source: str = "monitor"
    """Who drives the loop ("bitnet-tui run" for ours); decides how advice is phrased."""
    flops_per_token: float | None = None
    """Model FLOPs per trained token, for MFU."""
    peak_flops: float | None = None
    """The device's peak FLOP/s, for MFU."""
    skips_nonfinite: bool = False
    """The loop skips the optimizer update of a non-finite step (ours does, on the device): the alert says so."""
    held_out: Callable[[], Any] | None = None
    """A context manager factory the held-out batches are read in: the training step's autocast (ours gives it
    where the run trains in bf16), so the held-out loss is computed as the training loss is; default: none."""


def checked(eval_every: Any, options: Any, facts: Any) -> tuple[MonitorConfig, TrainerFacts]:
    """The Monitor's checked settings: ``eval_every`` a whole number >= 1, the two dataclasses (or defaults)."""
    _positive("eval_every", eval_every)
    o = options if options is not None else MonitorConfig()
    f = facts if facts is not None else TrainerFacts()
    if not isinstance(o, MonitorConfig) or not isinstance(f, TrainerFacts):
        raise TypeError("options must be a MonitorConfig and facts a TrainerFacts")
    return o, f


def _positive(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {v!r}")
