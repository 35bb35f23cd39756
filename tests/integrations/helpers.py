"""What the integration tests share: ternary layers and a small causal LM of the tests' own (as a user would
bring them), a user's loop under a Monitor, steering over the real control socket, the LR each optimizer step
really used, and a session log read back by event kind."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from bitnet_tui.instrument.config import MonitorConfig
from bitnet_tui.instrument.monitor import Monitor
from bitnet_tui.session.control.client import request
from bitnet_tui.session.control.peer import control_path
from bitnet_tui.session.log.events import Event, StepDone
from bitnet_tui.session.log.reader import read_session

VOCAB, SEQ = 300, 16
"""The user-loop tests' vocabulary and window length."""


class BitLinear(nn.Linear):
    """b1.58's absmean ternary weights with a straight-through estimator (the BitNet FAQ's rule, no activation
    quantisation): defined here, not imported from bitnet-tui, as a user's model would."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        s = w.abs().mean().clamp(min=1e-5)
        wq = (w / s).round().clamp(-1, 1) * s
        return F.linear(x, w + (wq - w).detach(), self.bias)


def bitify(module: nn.Module) -> int:
    """Replace every ``nn.Linear`` inside ``module`` with a :class:`BitLinear` holding the same weights."""
    n = 0
    for name, child in module.named_children():
        if type(child) is nn.Linear:
            new = BitLinear(child.in_features, child.out_features, bias=child.bias is not None)
            new.load_state_dict(child.state_dict())
            setattr(module, name, new)
            n += 1
        else:
            n += bitify(child)
    return n


class Block(nn.Module):
    """Pre-norm causal self-attention and an MLP, every projection a ``linear``."""

    def __init__(self, d: int, heads: int, linear: type[nn.Linear]) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.o = linear(d, 3 * d, bias=False), linear(d, d, bias=False)
        self.up, self.down = linear(d, 4 * d, bias=False), linear(4 * d, d, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, t, d = h.shape
        q, k, v = self.qkv(self.ln1(h)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        h = h + self.o(a)
        return h + self.down(F.gelu(self.up(self.ln2(h))))


class TinyLM(nn.Module):
    """A small causal LM as a user would write one: ``forward(ids) -> logits``, up to ``context`` tokens."""

    def __init__(self, vocab: int = 300, d: int = 64, layers: int = 2, heads: int = 4, context: int = 64,
                 linear: type[nn.Linear] = BitLinear) -> None:
        super().__init__()
        self.emb, self.pos = nn.Embedding(vocab, d), nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads, linear) for _ in range(layers))
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.norm(h))


class TernaryLinear(nn.Module):
    """The user's own ternary layer (not named BitLinear, so the Monitor is told where it is): absmean ternary
    weights with a straight-through estimator."""

    def __init__(self, d_in: int, d_out: int, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) * d_in ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        s = w.abs().mean().clamp(min=1e-5)
        return F.linear(x, w + ((w / s).round().clamp(-1, 1) * s - w).detach())


def batch(step: int, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """A user's (x, y) batch of random tokens, the same for the same ``step``."""
    ids = torch.randint(0, VOCAB, (n, SEQ + 1), generator=torch.Generator().manual_seed(step))
    return ids[:, :-1], ids[:, 1:]


def model_and_monitor(tmp_path, lr: float, **kw) -> tuple[nn.Module, torch.optim.Optimizer, Monitor]:
    """A user's TinyLM with :class:`TernaryLinear` projections, its AdamW, and a Monitor told where the ternary
    layers are (``kw`` overrides the Monitor's arguments)."""
    torch.manual_seed(0)
    model = TinyLM(VOCAB, linear=TernaryLinear)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    kw = {"prompts": [[1, 2, 3, 4], [5, 6, 7, 8]], "decode": lambda ids: " ".join(map(str, ids)),
          "val_batches": [batch(10_000)], "sessions_dir": str(tmp_path / "sessions"), "gen_tokens": 4,
          "context": 64, "layers": [m for m in model.modules() if isinstance(m, TernaryLinear)],
          "config": {"train": {"lr": lr}}, **kw}
    return model, opt, Monitor(model, opt, **split_options(kw))


def split_options(kw: dict) -> dict:
    """Monitor keywords with the :class:`MonitorConfig` fields among them gathered into ``options``."""
    names = {f.name for f in fields(MonitorConfig)}
    out = {k: v for k, v in kw.items() if k not in names}
    opts = {k: v for k, v in kw.items() if k in names}
    if opts:
        out["options"] = MonitorConfig(**opts)
    return out


def train_step(model: nn.Module, opt: torch.optim.Optimizer, step: int) -> torch.Tensor:
    """Forward, backward and ``opt.step()`` on ``batch(step)``; the loop zeroes the gradients itself."""
    x, y = batch(step)
    loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
    loss.backward()
    opt.step()
    return loss


def send_at(step: int, session: Callable[[], Path], req: dict[str, Any], replies: list[dict[str, Any]]
            ) -> Callable[[Event], None]:
    """A Monitor subscriber: when step ``step``'s event arrives, another thread sends ``req`` over the run's
    control socket (as ``bitnet-tui ctl`` would) and the training thread waits for the reply, so the command is
    queued before this step's boundary and the next optimizer step is the first to feel it."""

    def on_event(ev: Event) -> None:
        if isinstance(ev, StepDone) and ev.step == step:
            t = threading.Thread(target=lambda: replies.append(request(control_path(session()), req)))
            t.start()
            t.join(10)

    return on_event


def lr_recorder(optimizer: torch.optim.Optimizer) -> list[float]:
    """The LR each ``optimizer.step()`` really used: a step pre-hook registered after the Monitor's sees the
    param groups as the step reads them."""
    used: list[float] = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: used.append(float(opt.param_groups[0]["lr"])))
    return used


def by_kind(path: Path) -> dict[str, list[Event]]:
    data = read_session(path)
    assert not data.warnings, data.warnings
    out: dict[str, list[Event]] = {}
    for ev in data.stream():
        out.setdefault(ev.kind, []).append(ev)
    return out
