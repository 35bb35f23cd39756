"""Your own training loop, watched and steered by bitnet-tui's Monitor.

    python examples/plain_loop.py [--steps 200] [--hidden 128] [--lr 1.5e-3] [--sessions-dir sessions]

A small GPT whose projections are BitNet b1.58 ``BitLinear`` layers (defined here, as the BitNet FAQ writes
them), trained with AdamW and a warmup-cosine schedule on bitnet-tui's embedded corpus. The loop is plain
PyTorch; the Monitor is three lines of it. While it runs, from another terminal:

    bitnet-tui attach latest            # the dashboard, with every control
    bitnet-tui ctl latest set-lr 5e-4   # one command
    bitnet-tui watch latest             # read-only

Afterwards: ``bitnet-tui summary latest``, ``bitnet-tui replay latest``. On CPU the defaults take well under a
minute; ``--steps 6 --eval-every 3`` is a smoke test.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle CPU threads sleep, not spin (shared boxes)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from bitnet_model.data.dataset import Data, load_data  # noqa: E402
from bitnet_model.train.config import DataConfig  # noqa: E402
from bitnet_tui import Monitor, MonitorConfig  # noqa: E402


# -- the model: what a user brings ------------------------------------------------------------------------
def activation_quant(x: torch.Tensor) -> torch.Tensor:
    """Per-token absmax 8-bit activations."""
    scale = 127.0 / x.abs().max(dim=-1, keepdim=True).values.clamp(min=1e-5)
    return (x * scale).round().clamp(-128, 127) / scale


def weight_quant(w: torch.Tensor) -> torch.Tensor:
    """Per-tensor absmean ternary weights {-1, 0, +1} times a scale."""
    scale = 1.0 / w.abs().mean().clamp(min=1e-5)
    return (w * scale).round().clamp(-1, 1) / scale


class BitLinear(nn.Linear):
    """The BitNet FAQ's BitLinear: RMSNorm on the input, quantised activations and weights, straight-through
    gradients, no bias. The Monitor finds these layers by their class name."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.rms_norm(x, (x.shape[-1],))
        x_q = x + (activation_quant(x) - x).detach()
        w = self.weight
        return F.linear(x_q, w + (weight_quant(w) - w).detach())


class Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = BitLinear(d, 3 * d, bias=False), BitLinear(d, d, bias=False)
        self.up, self.down = BitLinear(d, 4 * d, bias=False), BitLinear(4 * d, d, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, t, d = h.shape
        q, k, v = self.qkv(h).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        h = h + self.proj(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d))
        return h + self.down(F.gelu(self.up(h)))


class TinyGPT(nn.Module):
    """Token and position embeddings, ``layers`` blocks, a full-precision head: ``forward(ids) -> logits``."""

    def __init__(self, vocab: int, d: int = 128, layers: int = 2, heads: int = 4, context: int = 64) -> None:
        super().__init__()
        self.context = context
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.norm, self.head = nn.RMSNorm(d), nn.Linear(d, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.norm(h))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay 2-D weights only (not norms, embeddings or biases), as LLaMA and the BitNet FAQ do."""
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "tok" not in n and "pos" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "tok" not in n and "pos" not in n)]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def warmup_cosine(steps: int, warmup: float = 0.1):
    n = max(1, int(steps * warmup))
    return lambda s: (s + 1) / n if s < n else 0.5 * (1 + math.cos(math.pi * (s - n) / max(1, steps - n)))


def corpus(vocab: int, context: int) -> Data:
    """bitnet-tui's embedded corpus (Python's own prose) with a byte-level BPE tokenizer of ``vocab`` tokens."""
    return load_data(DataConfig(), vocab, context)


def arguments(doc: str, steps: int = 200, lr: float = 1.5e-3) -> argparse.ArgumentParser:
    """The flags all three examples share."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--steps", type=int, default=steps, help="optimizer steps")
    p.add_argument("--hidden", type=int, default=128, help="model width")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--vocab", type=int, default=512, help="tokenizer vocabulary (trained on first use, cached)")
    p.add_argument("--context", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=lr, help="peak learning rate")
    p.add_argument("--eval-every", type=int, default=50, help="steps between evals and weight snapshots")
    p.add_argument("--sessions-dir", default=None, help="where the session log goes (default: $BITNET_TUI_SESSIONS "
                                                         "or ./sessions)")
    p.add_argument("--seed", type=int, default=0)
    return p


def main() -> None:
    args = arguments(__doc__).parse_args()
    torch.manual_seed(args.seed)
    data = corpus(args.vocab, args.context)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = TinyGPT(data.vocab_size, args.hidden, args.layers, context=args.context).to(device)
    opt = torch.optim.AdamW(param_groups(model, 0.1), lr=args.lr, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(args.steps))
    batches = data.batches(args.batch_size, seed=args.seed)

    options = MonitorConfig(token_text=data.token_text, unigram=data.unigram_counts(data.vocab_size),
                            total_steps=args.steps, context=args.context)
    with Monitor(model, opt, decode=data.decode, prompts=data.eval_prompts(4, 8),
                 val_batches=[tuple(t.to(device) for t in b) for b in data.val_batches(args.batch_size, 2)],
                 sessions_dir=args.sessions_dir, run_name=f"plain-h{args.hidden}-lr{args.lr:g}",
                 eval_every=args.eval_every, options=options,
                 config={"model": {"hidden": args.hidden, "layers": args.layers, "vocab_size": data.vocab_size},
                         "train": {"lr": args.lr, "steps": args.steps, "batch_size": args.batch_size,
                                   "optimizer": "adamw", "schedule": "warmup-cosine"}}) as mon:
        print(f"session: {mon.session_path}\nsteer it: bitnet-tui ctl {mon.session_path} set-lr 5e-4",
              file=sys.stderr)
        for _ in range(args.steps):
            x, y = (t.to(device) for t in next(batches))
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            mon.step(loss, grad_norm=grad_norm, tokens=x.numel())
            if mon.should_stop:  # bitnet-tui ctl ... stop, or q in the dashboard
                break
    end = mon.last_end
    print(f"{end.reason} at step {end.step}; bitnet-tui summary {mon.session_path}")


if __name__ == "__main__":
    main()
