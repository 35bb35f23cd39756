"""The BitNet b1.58 decoder: RoPE, attention, gated FFN, block, language model.

Reads top-down. Every projection is a :class:`~bitnet_model.nn.quant.BitLinear`; the embedding and the
head stay full precision. With ``ModelConfig(quant=False)`` the very same classes build the
full-precision control, so the two models differ in quantisation and nothing else.

Where it departs from the BitNet FAQ ("The Era of 1-bit LLMs: Training Tips, Code and FAQ"): the FAQ
removes the RMSNorm before attention and the FFN ("BitLinear has built-in RMSNorm"); this decoder keeps
LLaMA's learnable pre-norms beside BitLinear's own weightless norm, so q/k/v and gate/up still see a
learnable per-channel gain (Hugging Face's BitNet keeps them too). BitLinear's inner norm has no gain.
The FFN is SwiGLU by default (LLaMA, b1.58); ``ffn_act="relu2"`` is the gated squared ReLU of Hugging
Face's BitNet and the report's code.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from bitnet_model.nn.config import ModelConfig
from bitnet_model.nn.device import one_thread_on_cpu
from bitnet_model.nn.quant import BitLinear, frozen_weights


def rope_cache(cfg: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of shape (context, head_dim) for rotate-half RoPE (LLaMA)."""
    d = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    angles = torch.outer(torch.arange(cfg.context, dtype=torch.float32), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, heads, T, head_dim) by position; cos/sin are (T, head_dim)."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


KVCache = list[tuple[torch.Tensor, torch.Tensor]]
"""Per block: keys and values (B, heads, T, head_dim) of the positions seen so far (greedy generation)."""


class Attention(nn.Module):
    """Causal multi-head self-attention with RoPE; q, k, v and o are BitLinear."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        h, q, e = cfg.hidden, cfg.quant, cfg.norm_eps
        self.heads = cfg.heads
        self.q = BitLinear(h, h, q, e)
        self.k = BitLinear(h, h, q, e)
        self.v = BitLinear(h, h, q, e)
        self.o = BitLinear(h, h, q, e)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, tuple]:
        """Attend over the new positions of ``x`` (B, T, C) and, with a ``cache``, the earlier ones before them.
        ``cos``/``sin`` are the new positions' rows. Returns the output and the keys/values seen so far."""
        B, T, C = x.shape
        x = self.q.norm_quant(x)  # q, k, v see the same input: normalise and quantise it once for all three
        q, k, v = (p.project(x).view(B, T, self.heads, -1).transpose(1, 2) for p in (self.q, self.k, self.v))
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = torch.cat((cache[0], k), dim=2), torch.cat((cache[1], v), dim=2)
        # one new position attends to every cached one; a prefill is causal
        y = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None and T > 1)
        return self.o(y.transpose(1, 2).reshape(B, T, C)), (k, v)


class FeedForward(nn.Module):
    """Gated FFN, all three projections BitLinear: ``down(act(gate(x)) * up(x))`` with act = SiLU (SwiGLU,
    LLaMA and b1.58) or squared ReLU (``relu2``: Hugging Face's BitNet)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        h, f, q, e = cfg.hidden, cfg.ffn, cfg.quant, cfg.norm_eps
        self.relu2 = cfg.ffn_act == "relu2"
        self.gate = BitLinear(h, f, q, e)
        self.up = BitLinear(h, f, q, e)
        self.down = BitLinear(f, h, q, e)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gate.norm_quant(x)  # shared by gate and up, as q/k/v share theirs
        g = self.gate.project(x)
        g = F.relu(g).square() if self.relu2 else F.silu(g)
        return self.down(g * self.up.project(x))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + ffn(norm(x))."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        # LLaMA's learnable pre-norms stay although each BitLinear re-normalises its input: the inner norm
        # is weightless and per token, so these carry the only learnable per-channel gain before q/k/v and
        # gate/up. The inner norms of o and down play the part of b1.58's sub-norms.
        self.attn_norm = nn.RMSNorm(cfg.hidden, eps=cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ffn_norm = nn.RMSNorm(cfg.hidden, eps=cfg.norm_eps)
        self.ffn = FeedForward(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, tuple]:
        a, kv = self.attn(self.attn_norm(x), cos, sin, cache)
        x = x + a
        return x + self.ffn(self.ffn_norm(x)), kv


class BitNetLM(nn.Module):
    """Decoder-only language model: full-precision embedding and head around BitLinear blocks.

    The head is a separate full-precision ``nn.Linear``, not tied to the embedding (LLaMA and b1.58
    do not tie), so the head's gradients never reach the input embedding.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.norm = nn.RMSNorm(cfg.hidden, eps=cfg.norm_eps)
        self.head = nn.Linear(cfg.hidden, cfg.vocab_size, bias=False)
        cos, sin = rope_cache(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
        for block in self.blocks:  # residual output projections, scaled as in GPT-2 / nanoGPT
            for w in (block.attn.o.weight, block.ffn.down.weight):
                nn.init.normal_(w, mean=0.0, std=0.02 / math.sqrt(2 * cfg.layers))

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, label_smoothing: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, vocab) for every position; with targets (B, T), also the mean cross-entropy."""
        T = idx.shape[1]
        if T > self.cfg.context:
            raise ValueError(f"sequence length {T} exceeds context {self.cfg.context}")
        logits = self.head(self.norm(self.trunk(idx)[0]))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), label_smoothing=label_smoothing)
        return logits, loss

    def trunk(self, idx: torch.Tensor, cache: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
        """The residual stream (B, T, hidden) of the new tokens ``idx`` after the last block, and the updated
        keys/values. With a ``cache``, ``idx`` continues the positions the cache holds."""
        start = cache[0][0].shape[2] if cache else 0
        T = idx.shape[1]
        cos, sin = self.rope_cos[start:start + T], self.rope_sin[start:start + T]
        x = self.embed(idx)
        new: KVCache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, cos, sin, cache[i] if cache else None)
            new.append(kv)
        return x, new

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ) -> torch.Tensor:
        """Continue (B, T) token ids by max_new_tokens: greedy at temperature 0, else sampled.

        Keys and values are cached (one position per new token) while the sequence fits the context;
        beyond it, or with ``use_cache=False`` (the benchmark's "before"), each token re-reads the last
        ``context`` tokens. Weights are quantised once."""
        was_training = self.training
        self.eval()
        try:
            with one_thread_on_cpu(idx.device), frozen_weights(self):  # decoding is many small ops
                cache: KVCache | None = None
                step_in = idx[:, -self.cfg.context:]
                for _ in range(max_new_tokens):
                    if not use_cache or cache is not None and cache[0][0].shape[2] >= self.cfg.context:
                        cache, step_in = None, idx[:, -self.cfg.context:]  # window full: recompute
                    x, cache = self.trunk(step_in, cache)
                    # the head (hidden x vocab) runs on the last position only: the one that is sampled
                    logits = self.head(self.norm(x[:, -1, :]))
                    if temperature <= 0:
                        nxt = logits.argmax(dim=-1, keepdim=True)
                    else:
                        logits = logits / temperature
                        if top_k is not None:
                            kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                            logits = logits.masked_fill(logits < kth, float("-inf"))
                        nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
                    idx = torch.cat((idx, nxt), dim=1)
                    step_in = nxt
        finally:
            self.train(was_training)
        return idx

    def bitlinear_layers(self) -> list[tuple[str, BitLinear]]:
        """Every BitLinear with its name (``blocks.0.attn.q`` ...), in module order."""
        return [(name, m) for name, m in self.named_modules() if isinstance(m, BitLinear)]

    def num_params(self, embedding: bool = True) -> int:
        """Parameter count; ``embedding=False`` leaves out the token embedding (the head stays)."""
        n = sum(p.numel() for p in self.parameters())
        return n if embedding else n - self.embed.weight.numel()

    def flops_per_token(self) -> int:
        """Training matmul FLOPs per token, forward and backward, as nanoGPT / PaLM count them.

        ``6 * N + 12 * layers * hidden * context``: N is the weight count of every matmul (the BitLinears
        and the head; the embedding is a lookup, norms are not matmuls), 6 = 2 forward + 4 backward FLOPs
        per weight; the second term is attention's QK^T and AV over the full context, not halved for the
        causal mask. Quantisation is ignored: the matmuls run in fp32 either way.
        """
        c = self.cfg
        n = sum(m.weight.numel() for _, m in self.bitlinear_layers()) + self.head.weight.numel()
        return 6 * n + 12 * c.layers * c.hidden * c.context
