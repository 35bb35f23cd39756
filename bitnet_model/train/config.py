"""Typed, validated configuration for a bitnet-tui run.

One dataclass per concern and :class:`RunConfig` that holds them. Every field a user can set is a knob
(:mod:`bitnet_tui.session.knobs`): its help text and range are declared here once and checked on every
construction (from the CLI, a checkpoint or a log's header), and a bad value raises
:class:`~bitnet_tui.session.errors.ConfigError` with one sentence. ``hidden`` picks the model: layers, heads, FFN
width and context default to values that suit it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from bitnet_model.nn.config import ModelConfig, check
from bitnet_tui.session.analysis.detector import DetectorConfig
from bitnet_tui.session.control.commands import MAX_LR, MIN_LR
from bitnet_tui.session.errors import ConfigError
from bitnet_tui.session.knobs import check_knobs, knob

SCHEDULES = ("two-stage", "two-stage-hold", "stage1", "constant", "cosine")
OPTIMIZERS = ("adamw", "adam")
PRECISIONS = ("auto", "fp32", "bf16")
MAX_STEPS = 1_000_000_000


def auto_lr(hidden: int) -> float:
    """Peak LR for ``--lr auto``, from the BitNet FAQ's Table 2 ("The Era of 1-bit LLMs: Training Tips, Code and
    FAQ"): 1.5e-3 for the 700M model (hidden 1536), 1.2e-3 from 1.3B (hidden 2048) up. The FAQ measures
    nothing smaller; below 2048 the 700M value is used, and ``docs/seed-report.md`` measures it at width 256
    (with AdamW it learns; the report's collapse at this LR came from its optimizer)."""
    return 1.5e-3 if hidden < 2048 else 1.2e-3




@dataclass(kw_only=True, frozen=True)
class TrainConfig:
    """Optimisation: the knobs the report turned, and the FAQ's two-stage recipe."""

    lr: float | str = knob("auto", "Peak learning rate, or 'auto' (the BitNet FAQ's table by width).", kind=float,
                           lo=MIN_LR, hi=MAX_LR, hi_open=True, special=("auto",), sweep=True,
                           shown_default="auto: 1.5e-3 below width 2048, else 1.2e-3")
    steps: int = knob(2000, "Optimizer steps.", kind=int, lo=1, hi=MAX_STEPS, sweep=True)
    batch_size: int = knob(16, "Sequences per step (per process with --nproc).", kind=int, lo=1, hi=65536, sweep=True)
    warmup_steps: int | None = knob(None, "Linear warmup steps.", kind=int, lo=0, hi=MAX_STEPS, flag="warmup",
                                    shown_default="5% of steps, at most 500")
    schedule: str = knob("two-stage", "LR schedule: two-stage (the FAQ's figure: linear decay toward 0, restarted at "
                         "2/3 of the peak at the midpoint), two-stage-hold (decay to 0.8x, then a drop to 2/3 of the "
                         "peak), stage1 (the report's Phase 1: stage one only), constant, cosine.", kind=str,
                         choices=SCHEDULES, sweep=True)
    stage1_end_frac: float = 0.8
    """two-stage-hold: stage 1 decays linearly from the peak to this fraction of it, reached at the midpoint."""
    stage2_frac: float = 2 / 3
    """two-stage: the second stage's peak as a fraction of the first (FAQ: 1.5e-3 -> 1e-3)."""
    final_frac: float = 0.01
    """Where the decays end, as a fraction of their peak (~0)."""
    optimizer: str = knob("adamw", "adamw (decoupled weight decay, the FAQ's recipe) or adam (PyTorch's Adam: L2 "
                          "decay added to the gradient, as the report's code).", kind=str, choices=OPTIMIZERS,
                          sweep=True)
    weight_decay: float = knob(0.1, "Weight decay in stage 1 (stage 2 of two-stage uses 0, as the FAQ).",
                               kind=float, lo=0.0, hi=10.0, sweep=True)
    decay_all: bool = knob(False, "Decay every parameter (norm gains and embeddings too, as the report's code); "
                           "default: 2-D weights only.", kind=bool, sweep=True)
    beta1: float = knob(0.9, "Adam beta1.", kind=float, lo=0.0, hi=1.0, hi_open=True)
    beta2: float = knob(0.95, "Adam beta2 (LLaMA, BitNet).", kind=float, lo=0.0, hi=1.0, hi_open=True)
    label_smoothing: float = knob(0.0, "Cross-entropy label smoothing (report: 0.1).", kind=float, lo=0.0, hi=1.0,
                                  hi_open=True, sweep=True)
    grad_clip: float = knob(0.0, "Clip the gradient norm to this; 0 = off (report: 0.1).", kind=float, lo=0.0,
                            hi=1e9, sweep=True)
    seed: int = knob(0, "Seeds weights, data order and sampling: same seed, same losses on CPU.", kind=int, lo=0,
                     hi=2**63 - 1, sweep=True)
    device: str = knob("auto", "auto (CUDA if present), cpu, cuda or cuda:N.", kind=str)
    precision: str = knob("auto", "auto (bf16 autocast on CUDA and on CPUs with native bf16, else fp32), fp32 or "
                         "bf16; the header records what was used.", kind=str,
                          choices=PRECISIONS)
    log_every: int | None = knob(None, "Read the loss back from the device every N steps (no host sync in "
                                 "between).", kind=int, lo=1, hi=100_000, shown_default="1 on CPU, 10 on CUDA")
    compile: bool = False
    """Run the model's forward through ``torch.compile`` (off by default: the first steps and each new eval
    shape pay seconds to minutes of compiling, and it needs a C++ compiler on CPU)."""

    def __post_init__(self) -> None:
        check_knobs(self)
        if self.warmup_steps is None:
            object.__setattr__(self, "warmup_steps", max(1, min(500, self.steps // 20)))
        check(self.warmup_steps < max(2, self.steps),
               f"warmup ({self.warmup_steps}) must be less than steps ({self.steps}); set --warmup")
        for name in ("stage1_end_frac", "stage2_frac", "final_frac"):
            v = getattr(self, name)
            check(isinstance(v, (int, float)) and 0 <= v <= 1, f"{name} must be between 0 and 1, got {v!r}")
        dev = self.device
        check(dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit()
                                                          and len(dev) < 12),
               f"device must be auto, cpu, cuda or cuda:N, got {dev[:40]!r}")

    @property
    def peak_lr(self) -> float:
        if isinstance(self.lr, str):
            raise ConfigError("lr is 'auto'; build a RunConfig to resolve it")
        return float(self.lr)


@dataclass(kw_only=True, frozen=True)
class DiagConfig:
    """What the run measures about itself; the detector's thresholds are :class:`DetectorConfig`."""

    eval_every: int = knob(50, "Steps between evals (greedy samples, held-out loss).", kind=int, lo=1, hi=MAX_STEPS)
    weights_every: int | None = knob(None, "Steps between ternary weight snapshots.", kind=int, lo=1, hi=MAX_STEPS,
                                     shown_default="same as --eval-every")
    eval_prompts: int = knob(8, "Held-out prompts continued greedily at each eval.", kind=int, lo=1, hi=1024)
    prompt_tokens: int = knob(16, "Tokens of each prompt.", kind=int, lo=1, hi=4096)
    gen_tokens: int = knob(32, "Tokens generated per prompt.", kind=int, lo=1, hi=4096)
    eval_batches: int = knob(2, "Held-out batches averaged for the held-out loss.", kind=int, lo=1, hi=1000)
    report_metric: bool = knob(True, "Also measure the report's metric (20 prompts of 8 random token ids, one "
                               "argmax each, unique out of 20).", kind=bool)
    detector: DetectorConfig = field(default_factory=DetectorConfig)

    def __post_init__(self) -> None:
        check_knobs(self)
        if self.weights_every is None:
            object.__setattr__(self, "weights_every", self.eval_every)


@dataclass(kw_only=True, frozen=True)
class DataConfig:
    """Where the text and the tokenizer come from."""

    data: str | None = knob(None, "A .txt file, a folder of .txt, or a .jsonl with a 'text' field.", kind=str,
                            shown_default="the embedded corpus")
    tokenizer: str | None = knob(None, "A Hugging Face tokenizer.json instead of training BPE.", kind=str)
    val_fraction: float = 0.05
    """Share of the corpus held out for evals and prompts."""
    cache_dir: str | None = None
    """Where trained tokenizers are cached. Default: $BITNET_TUI_CACHE or ~/.cache/bitnet-tui."""

    def __post_init__(self) -> None:
        check_knobs(self)
        v = self.val_fraction
        check(isinstance(v, (int, float)) and 0 < v < 0.5, f"val_fraction must be in (0, 0.5), got {v!r}")


SECTIONS: dict[str, type] = {"model": ModelConfig, "train": TrainConfig, "diag": DiagConfig, "data": DataConfig}


@dataclass(kw_only=True, frozen=True)
class RunConfig:
    """Everything that defines a run. Resolves ``lr="auto"`` against the model width."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    diag: DiagConfig = field(default_factory=DiagConfig)
    data: DataConfig = field(default_factory=DataConfig)
    lr_auto: bool = False
    """Set when the peak LR came from :func:`auto_lr` (recorded in the session header)."""

    def __post_init__(self) -> None:
        if self.train.lr == "auto":
            object.__setattr__(self, "train", replace(self.train, lr=auto_lr(self.model.hidden)))
            object.__setattr__(self, "lr_auto", True)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Rebuild from :meth:`to_dict` output (e.g. a session header); unknown keys are ignored."""
        if not isinstance(d, dict):
            raise ConfigError("config must be a JSON object")

        def build(klass: type, sub: Any) -> Any:
            if not isinstance(sub, dict):
                raise ConfigError(f"config section for {klass.__name__} must be an object")
            names = {f.name for f in fields(klass)}
            kw = {k: v for k, v in sub.items() if k in names}
            if klass is DiagConfig:
                kw["detector"] = DetectorConfig.from_dict(sub.get("detector"), strict=True)
            try:
                return klass(**kw)
            except TypeError as e:  # wrong types slipping past the checks
                raise ConfigError(f"bad {klass.__name__}: {e}") from None

        return cls(**{name: build(klass, d.get(name, {})) for name, klass in SECTIONS.items()},
                   lr_auto=bool(d.get("lr_auto", False)))


def build_config(base: RunConfig | None, knobs: dict[str, Any]) -> RunConfig:
    """``base`` (defaults when None) with every knob that is not None applied. Knob names are field names,
    ``detector_<name>`` for the detector's thresholds."""
    knobs = {k: v for k, v in knobs.items() if v is not None}
    base_d = base.to_dict() if base is not None else {}
    out: dict[str, Any] = {}
    used: set[str] = set()
    for section, klass in SECTIONS.items():
        names = {f.name for f in fields(klass)}
        sec = dict(base_d.get(section, {}))
        if base is not None and "hidden" in knobs and section == "model":
            for k in ("layers", "heads", "ffn", "context"):  # a new width re-derives the shape
                sec.pop(k, None)
        if base is not None and section == "train":
            if base.lr_auto and "lr" not in knobs:
                sec["lr"] = "auto"
            if "steps" in knobs and "warmup_steps" not in knobs and base.train.warmup_steps >= knobs["steps"]:
                sec.pop("warmup_steps", None)  # a shorter continuation re-derives its warmup
        given = {k: v for k, v in knobs.items() if k in names and k != "detector"}
        sec.update(given)
        used |= set(given)
        if section == "diag":
            det = dict(sec.get("detector") or {})
            extra = {k.removeprefix("detector_"): v for k, v in knobs.items() if k.startswith("detector_")}
            det.update(extra)
            used |= {f"detector_{k}" for k in extra}
            sec["detector"] = det
        out[section] = sec
    unknown = set(knobs) - used
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return RunConfig.from_dict(out)
