"""The shape of the BitNet b1.58 decoder: :class:`ModelConfig`, one knob per field (:mod:`bitnet_tui.session.knobs`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bitnet_tui.session.errors import ConfigError
from bitnet_tui.session.knobs import check_knobs, knob

FFN_ACTS = ("swiglu", "relu2")
MIN_VOCAB = 260
"""256 byte tokens, EOT, and a few merges: the smallest vocabulary a byte-level BPE can have here."""


def check(cond: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``cond``."""
    if not cond:
        raise ConfigError(message)


@dataclass(kw_only=True, frozen=True)
class ModelConfig:
    """Shape of the BitNet b1.58 decoder. ``None`` fields are derived from ``hidden``."""

    hidden: int = knob(256, "Model width; picks layers, heads, FFN and context.", kind=int, lo=8, hi=16384,
                       sweep=True)
    layers: int | None = knob(None, "Decoder blocks.", kind=int, lo=1, hi=256,
                              shown_default="2 up to width 128, 4 up to 256, 6 up to 512, else 8")
    heads: int | None = knob(None, "Attention heads; must divide --hidden.", kind=int, lo=1, hi=256,
                             shown_default="width / 64")
    ffn: int | None = knob(None, "FFN inner width.", kind=int, lo=8, hi=262144,
                           shown_default="8/3 x width, rounded up to 64")
    ffn_act: str = knob("swiglu", "FFN: swiglu (LLaMA, b1.58) or relu2 (gated squared ReLU, as Hugging Face's "
                        "BitNet).", kind=str, choices=FFN_ACTS, sweep=True)
    context: int | None = knob(None, "Tokens per sequence.", kind=int, lo=2, hi=65536,
                               shown_default="128 up to width 256, else 256")
    vocab_size: int = knob(4096, "Model vocabulary; a trained BPE keeps the merges the corpus has and the model "
                           "is padded to this size.", kind=int, lo=MIN_VOCAB, hi=1 << 20)
    quant: bool = knob(True, "BitNet b1.58 (ternary weights, 8-bit activations) or the full-precision control.",
                       kind=bool, sweep=True)
    rope_theta: float = 10000.0
    """RoPE base frequency."""
    norm_eps: float = 1e-6
    """RMSNorm epsilon."""

    def __post_init__(self) -> None:
        check_knobs(self)
        h = self.hidden
        if self.layers is None:
            object.__setattr__(self, "layers", 2 if h <= 128 else 4 if h <= 256 else 6 if h <= 512 else 8)
        if self.heads is None:
            object.__setattr__(self, "heads", max(1, h // 64))
        if self.ffn is None:
            object.__setattr__(self, "ffn", 64 * math.ceil(8 * h / 3 / 64))
        if self.context is None:
            object.__setattr__(self, "context", 128 if h <= 256 else 256)
        check(h % self.heads == 0, f"hidden ({h}) must be divisible by heads ({self.heads})")
        check((h // self.heads) % 2 == 0, f"head width hidden/heads ({h // self.heads}) must be even for RoPE")
        check(isinstance(self.rope_theta, (int, float)) and math.isfinite(self.rope_theta) and self.rope_theta > 0,
               "rope_theta must be positive")
        check(isinstance(self.norm_eps, (int, float)) and math.isfinite(self.norm_eps) and self.norm_eps > 0,
               "norm_eps must be positive")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads  # type: ignore[operator]


