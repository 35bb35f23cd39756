"""A user's own training loop, as someone outside this project writes it: their own ternary layer class (not
named BitLinear), their own tiny GPT, ``torch.optim.Adam(weight_decay=0.1)`` on every parameter (the seed
report's optimizer) or AdamW with decay on 2-D weights only, and the Monitor added as the README shows."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from bitnet_model.data.dataset import load_data
from bitnet_model.train.config import DataConfig
from bitnet_tui import Monitor, MonitorConfig


class TernaryDense(nn.Linear):
    """Their ternary layer: absmean weights in {-1, 0, +1} x scale, absmax 8-bit activations, straight-through."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
        xq = x + ((x * s).round().clamp(-128, 127) / s - x).detach()
        w = self.weight
        g = w.abs().mean().clamp(min=1e-5)
        return F.linear(xq, w + ((w / g).round().clamp(-1, 1) * g - w).detach())


class UserGPT(nn.Module):
    def __init__(self, vocab: int, d: int = 32, context: int = 16) -> None:
        super().__init__()
        self.emb, self.pos = nn.Embedding(vocab, d), nn.Embedding(context, d)
        self.ln1, self.ln2, self.ln_f = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = TernaryDense(d, 3 * d, bias=False), TernaryDense(d, d, bias=False)
        self.fc1, self.fc2 = TernaryDense(d, 4 * d, bias=False), TernaryDense(4 * d, d, bias=False)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        b, t = ids.shape
        h = self.emb(ids) + self.pos(torch.arange(t))
        q, k, v = self.qkv(self.ln1(h)).view(b, t, 3, 2, -1).permute(2, 0, 3, 1, 4)
        h = h + self.out(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, -1))
        h = h + self.fc2(F.relu(self.fc1(self.ln2(h))))
        return self.lm_head(self.ln_f(h))


def optimizer_for(model: nn.Module, kind: str, lr: float) -> torch.optim.Optimizer:
    if kind == "adam":  # the seed report's: coupled L2 on every parameter
        return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "emb" not in n and "pos" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "emb" not in n and "pos" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95))


def train(sessions: Path, kind: str, *, steps: int = 300, lr: float = 1.5e-3, cache: str, seed: int = 0,
          unigram: bool = False, control: bool = False, on_step=None) -> Path:
    """Train to ``steps`` with the Monitor; the session log's path. ``on_step(mon)`` runs after each step."""
    torch.manual_seed(seed)
    data = load_data(DataConfig(cache_dir=cache), 300, 16)
    model = UserGPT(data.vocab_size)
    opt = optimizer_for(model, kind, lr)
    warm = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20))
    batches = data.batches(8, seed=seed)
    val = list(data.val_batches(8, 4))
    extra = {"unigram": data.unigram_counts(data.vocab_size)} if unigram else {}
    with Monitor(model, opt, decode=data.decode, prompts=data.eval_prompts(4, 4), val_batches=val,
                 sessions_dir=str(sessions), run_name=f"user-{kind}", config={"lr": lr, "optimizer": kind},
                 eval_every=20, options=MonitorConfig(total_steps=steps, gen_tokens=16, context=16, control=control,
                                                       **extra)) as mon:
        for _ in range(steps):
            x, y = next(batches)
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
            loss.backward()
            opt.step()
            warm.step()
            opt.zero_grad()
            mon.step(loss)
            if on_step is not None:
                on_step(mon)
            if mon.should_stop:
                break
    assert mon.session_path is not None
    return Path(mon.session_path)
