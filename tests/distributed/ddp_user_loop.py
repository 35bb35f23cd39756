"""A user's own DDP training loop under Monitor, for tests/distributed/test_nproc.py (launched by torchrun).

The model, its ternary layer and the loop are the user's; bitnet-tui only rides along. Rank 0 logs and serves the
control socket; every rank applies the commands. Prints each rank's final LR.
"""

from __future__ import annotations

import gc
import sys

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from bitnet_tui import Monitor, MonitorConfig


class TernaryLinear(nn.Linear):  # the user's own: absmean ternary weights with a straight-through estimator
    def forward(self, x):
        s = self.weight.abs().mean().clamp(min=1e-5)
        w = self.weight + ((self.weight / s).round().clamp(-1, 1) * s - self.weight).detach()
        return F.linear(x, w)


class TinyLM(nn.Module):
    def __init__(self, vocab: int = 64, width: int = 32) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, width)
        self.mix = TernaryLinear(width, width, bias=False)
        self.out = nn.Linear(width, vocab, bias=False)

    def forward(self, ids):
        return self.out(F.relu(self.mix(self.emb(ids))))


def train(rank: int) -> float:
    """The user's loop; returns the LR its last step used."""
    torch.manual_seed(0)
    model = DistributedDataParallel(TinyLM())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(rank)
    val = [(torch.randint(0, 64, (4, 8)), torch.randint(0, 64, (4, 8)))]
    with Monitor(model, opt, prompts=torch.randint(0, 64, (2, 4)), val_batches=val, sessions_dir=sys.argv[1],
                 run_name="ddp-user", config={"lr": 1e-2}, eval_every=25, options=MonitorConfig(gen_tokens=4)) as mon:
        for _ in range(100_000):
            x = torch.randint(0, 64, (8, 8), generator=gen)
            loss = F.cross_entropy(model(x).flatten(0, 1), x.roll(1, dims=1).flatten())
            loss.backward()
            opt.step()
            opt.zero_grad()
            mon.step(loss)
            if mon.should_stop:
                break
    return mon.lr.lr_now()


def main() -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    lr = train(rank)  # the model, DDP's reducer (which holds gloo work) and the Monitor are gone once it returns
    print(f"final lr rank {rank}: {lr:g}", flush=True)
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
