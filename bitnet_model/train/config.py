"""Typed, validated configuration for a bitnet-tui run.

Three dataclasses, one per concern, and :class:`RunConfig` that holds them.
``hidden`` picks the model: layers, heads, FFN width and context default to
values that suit it (see :func:`ModelConfig.__post_init__`). Every field is
checked on construction and a bad value raises :class:`ConfigError` with one
sentence that says what is wrong.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from bitnet_model.errors import ConfigError

SCHEDULES = ("two-stage", "stage1", "constant", "cosine")
Schedule = Literal["two-stage", "stage1", "constant", "cosine"]


def peak_lr_for_hidden(hidden: int) -> float:
    """Peak learning rate by model width: the report's "Option 2" table.

    The report found 1.5e-3 (the rate Microsoft's recipe uses for 700M+ models)
    locks a 256-hidden model into degenerate decoding, and 5e-4 lets it recover.
    """
    if hidden <= 0:
        raise ConfigError(f"hidden must be positive, got {hidden}")
    if hidden <= 256:
        return 5e-4
    if hidden <= 768:
        return 8e-4
    return 1.5e-3


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _positive_int(name: str, value: Any) -> None:
    _check(
        isinstance(value, int) and not isinstance(value, bool) and value > 0,
        f"{name} must be a positive integer, got {value!r}",
    )


def _finite(name: str, value: Any) -> float:
    _check(
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        f"{name} must be a finite number, got {value!r}",
    )
    return float(value)


@dataclass(kw_only=True, frozen=True)
class ModelConfig:
    """Shape of the BitNet b1.58 decoder. ``None`` fields are derived from ``hidden``."""

    hidden: int = 256
    """Residual stream width; the report's collapsing model used 256."""
    layers: int | None = None
    """Decoder blocks. Default: 2 up to hidden 128, 4 up to 256, 6 up to 512, 8 beyond."""
    heads: int | None = None
    """Attention heads; must divide ``hidden``. Default: hidden // 64 (head width 64), at least 1."""
    ffn: int | None = None
    """Gated FFN inner width. Default: 8/3 * hidden rounded up to a multiple of 64 (LLaMA, b1.58)."""
    context: int | None = None
    """Tokens of context per sequence. Default: 128 up to hidden 256, else 256."""
    vocab_size: int = 4096
    """Tokenizer vocabulary; small enough that the full-precision head stays cheap on a CPU."""
    quant: bool = True
    """True: BitLinear (ternary weights, 8-bit activations). False: the same model in full precision, as a control."""
    rope_theta: float = 10000.0
    """RoPE base frequency."""
    norm_eps: float = 1e-6
    """RMSNorm epsilon."""

    def __post_init__(self) -> None:
        _positive_int("hidden", self.hidden)
        h = self.hidden
        if self.layers is None:
            object.__setattr__(self, "layers", 2 if h <= 128 else 4 if h <= 256 else 6 if h <= 512 else 8)
        if self.heads is None:
            object.__setattr__(self, "heads", max(1, h // 64))
        if self.ffn is None:
            object.__setattr__(self, "ffn", 64 * math.ceil(8 * h / 3 / 64))
        if self.context is None:
            object.__setattr__(self, "context", 128 if h <= 256 else 256)
        _positive_int("layers", self.layers)
        _positive_int("heads", self.heads)
        _positive_int("ffn", self.ffn)
        _positive_int("context", self.context)
        _positive_int("vocab_size", self.vocab_size)
        _check(self.vocab_size >= 260, f"vocab_size must be at least 260 (256 bytes + specials), got {self.vocab_size}")
        _check(h % self.heads == 0, f"hidden ({h}) must be divisible by heads ({self.heads})")
        _check((h // self.heads) % 2 == 0, f"head width hidden/heads ({h // self.heads}) must be even for RoPE")
        _check(_finite("rope_theta", self.rope_theta) > 0, "rope_theta must be positive")
        _check(_finite("norm_eps", self.norm_eps) > 0, "norm_eps must be positive")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads  # type: ignore[operator]


@dataclass(kw_only=True, frozen=True)
class TrainConfig:
    """Optimisation: the knobs the report turned, and the FAQ's two-stage recipe."""

    lr: float | Literal["auto"] = "auto"
    """Peak learning rate, or "auto" for :func:`peak_lr_for_hidden` (resolved by :class:`RunConfig`)."""
    steps: int = 2000
    """Optimizer steps in the run."""
    batch_size: int = 16
    """Sequences per step."""
    warmup_steps: int | None = None
    """Linear warmup to the peak. Default: 5% of steps, at most 500, at least 1."""
    schedule: Schedule = "two-stage"
    """two-stage (the FAQ's recipe), stage1 (the report's Phase 1 diagnostic), constant, or cosine."""
    stage1_end_frac: float = 0.8
    """Stage 1 decays linearly from the peak to this fraction of it, reached at the midpoint."""
    stage2_frac: float = 2 / 3
    """At the midpoint the LR drops to this fraction of the peak (FAQ: 1.5e-3 -> 1e-3), then decays to ~0."""
    final_frac: float = 0.01
    """Where stage 2 and cosine end, as a fraction of the peak (~0)."""
    weight_decay: float = 0.1
    """AdamW weight decay in stage 1; stage 2 of two-stage uses 0 (FAQ)."""
    beta1: float = 0.9
    """AdamW beta1."""
    beta2: float = 0.95
    """AdamW beta2 (LLaMA, BitNet)."""
    label_smoothing: float = 0.0
    """Cross-entropy label smoothing; the report tried 0.1."""
    grad_clip: float = 0.0
    """Clip the global gradient norm to this value; 0 turns clipping off. The report tried 0.1."""
    seed: int = 0
    """Seeds the weights, the data order and sampling: same seed, same losses on CPU."""
    device: str = "auto"
    """"auto" (CUDA if present, else CPU), "cpu", "cuda" or "cuda:N"."""
    compile: bool = False
    """Run the model's forward through ``torch.compile`` (off by default: the first steps and each new eval
    shape pay seconds to minutes of compiling, and it needs a C++ compiler on CPU)."""

    def __post_init__(self) -> None:
        if isinstance(self.lr, str):
            _check(self.lr == "auto", f"lr must be a positive number or 'auto', got {self.lr!r}")
        else:
            lr = _finite("lr", self.lr)
            _check(lr > 0, f"lr must be positive, got {self.lr!r}")
            _check(lr < 1.0, f"lr must be below 1, got {self.lr!r}")
        _positive_int("steps", self.steps)
        _positive_int("batch_size", self.batch_size)
        if self.warmup_steps is None:
            object.__setattr__(self, "warmup_steps", max(1, min(500, self.steps // 20)))
        _check(
            isinstance(self.warmup_steps, int) and 0 <= self.warmup_steps < max(2, self.steps),
            f"warmup_steps must be between 0 and steps-1, got {self.warmup_steps!r}",
        )
        _check(self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}")
        for name in ("stage1_end_frac", "stage2_frac", "final_frac"):
            v = _finite(name, getattr(self, name))
            _check(0 <= v <= 1, f"{name} must be between 0 and 1, got {v}")
        _check(_finite("weight_decay", self.weight_decay) >= 0, "weight_decay must be >= 0")
        for name in ("beta1", "beta2"):
            v = _finite(name, getattr(self, name))
            _check(0 <= v < 1, f"{name} must be in [0, 1), got {v}")
        ls = _finite("label_smoothing", self.label_smoothing)
        _check(0 <= ls < 1, f"label_smoothing must be in [0, 1), got {ls}")
        _check(_finite("grad_clip", self.grad_clip) >= 0, f"grad_clip must be >= 0 (0 = off), got {self.grad_clip}")
        _check(isinstance(self.seed, int) and not isinstance(self.seed, bool),
               f"seed must be an integer, got {self.seed!r}")
        dev = self.device
        _check(
            isinstance(dev, str) and (dev in ("auto", "cpu", "cuda", "mps") or dev.startswith("cuda:")),
            f"device must be auto, cpu, cuda or cuda:N, got {dev!r}",
        )

    @property
    def peak_lr(self) -> float:
        if isinstance(self.lr, str):
            raise ConfigError("lr is 'auto'; build a RunConfig to resolve it")
        return float(self.lr)


@dataclass(kw_only=True, frozen=True)
class DiagConfig:
    """What the run measures about itself, and the collapse detector's thresholds."""

    eval_every: int = 80
    """Steps between evals (greedy samples, held-out loss); there is always one at step 0. At hidden 256 on a
    2-core CPU (~0.6 s a step, ~2 s an eval) this keeps diagnostics under 5% of wall time."""
    weights_every: int | None = None
    """Steps between ternary weight snapshots. Default: same as eval_every."""
    eval_prompts: int = 8
    """Fixed held-out prompts continued greedily at each eval."""
    prompt_tokens: int = 16
    """Tokens of each prompt."""
    gen_tokens: int = 32
    """Tokens generated per prompt; unique tokens are counted over all prompts together."""
    eval_batches: int = 2
    """Held-out batches averaged for the held-out loss and predictive entropy."""
    collapse_unique: int = 5
    """At or below this many unique generated tokens (once the model has learned) the run is collapsed."""
    collapsing_unique: int = 10
    """At or below this many unique tokens the run is collapsing."""
    recovered_unique: int = 15
    """After a collapse, at or above this many unique tokens the run has recovered."""
    stuck_evals: int = 10
    """Warn once when the unigram phase has lasted this many evals: that is no longer normal."""
    not_learning_margin: float = 0.10
    """Held-out loss within this fraction of ln(vocab) means the model has not started learning."""
    unigram_margin: float = 0.10
    """Held-out loss above (1 - margin) x unigram entropy means the model is still in its unigram phase."""

    def __post_init__(self) -> None:
        _positive_int("eval_every", self.eval_every)
        if self.weights_every is None:
            object.__setattr__(self, "weights_every", self.eval_every)
        _positive_int("weights_every", self.weights_every)
        for name in ("eval_prompts", "prompt_tokens", "gen_tokens", "eval_batches", "stuck_evals"):
            _positive_int(name, getattr(self, name))
        for name in ("collapse_unique", "collapsing_unique", "recovered_unique"):
            _positive_int(name, getattr(self, name))
        _check(
            self.collapse_unique <= self.collapsing_unique < self.recovered_unique,
            "thresholds must satisfy collapse_unique <= collapsing_unique < recovered_unique",
        )
        for name in ("not_learning_margin", "unigram_margin"):
            v = _finite(name, getattr(self, name))
            _check(0 <= v < 1, f"{name} must be in [0, 1), got {v}")


@dataclass(kw_only=True, frozen=True)
class DataConfig:
    """Where the text and the tokenizer come from."""

    data: str | None = None
    """A .txt file, a folder of .txt files, or a .jsonl file with a "text" field. None: the embedded default corpus."""
    tokenizer: str | None = None
    """A Hugging Face tokenizer.json to use instead of training a BPE tokenizer on the corpus."""
    val_fraction: float = 0.05
    """Share of the corpus held out for evals and prompts."""
    cache_dir: str | None = None
    """Where trained tokenizers are cached. Default: $BITNET_TUI_CACHE or ~/.cache/bitnet-tui."""

    def __post_init__(self) -> None:
        v = _finite("val_fraction", self.val_fraction)
        _check(0 < v < 0.5, f"val_fraction must be in (0, 0.5), got {v}")


@dataclass(kw_only=True, frozen=True)
class RunConfig:
    """Everything that defines a run. Resolves ``lr="auto"`` against the model width."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    diag: DiagConfig = field(default_factory=DiagConfig)
    data: DataConfig = field(default_factory=DataConfig)
    lr_auto: bool = False
    """Set when the peak LR came from ``peak_lr_for_hidden`` (recorded in the session header)."""

    def __post_init__(self) -> None:
        if self.train.lr == "auto":
            object.__setattr__(self, "train", replace(self.train, lr=peak_lr_for_hidden(self.model.hidden)))
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
            try:
                return klass(**{k: v for k, v in sub.items() if k in names})
            except TypeError as e:  # wrong types slipping past the checks
                raise ConfigError(f"bad {klass.__name__}: {e}") from None

        return cls(
            model=build(ModelConfig, d.get("model", {})),
            train=build(TrainConfig, d.get("train", {})),
            diag=build(DiagConfig, d.get("diag", {})),
            data=build(DataConfig, d.get("data", {})),
            lr_auto=bool(d.get("lr_auto", False)),
        )
