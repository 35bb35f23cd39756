"""Training-step time of BitNet b1.58 against its full-precision control, side by side.

    .venv/bin/python bench/train_step.py [--hidden 256] [--steps 8] [--device auto]

Both models are built from the same ModelConfig except ``quant`` and step on random token batches
(forward, backward, AdamW). Timed steps alternate between the two so drift in the machine hits both,
and each model's time is its fastest step, the one least disturbed by other load.
A third contender is the BitNet model under bf16 autocast (what ``--precision bf16`` does; ``auto`` uses it
on CUDA only), to see whether a CPU with native bf16 should use it too.
Prints tokens/s, achieved matmul FLOP/s (from ``flops_per_token``) against a measured dense fp32
matmul peak, the bf16/fp32 ratio, and on its last line ``bitnet/fp step time ratio: X.XX``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
from bitnet_model.nn.model import BitNetLM  # noqa: E402
from bitnet_model.train.config import ModelConfig  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, n: int = 1024, reps: int = 10) -> float:
    """Dense fp32 FLOP/s of an n x n @ n x n matmul, best of three timings of ``reps`` products."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(3):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 * reps / best


class Runner:
    """One model, its optimizer, and a fixed random batch."""

    def __init__(self, cfg: ModelConfig, batch: int, device: torch.device, bf16: bool = False) -> None:
        torch.manual_seed(0)
        self.model = BitNetLM(cfg).to(device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=5e-4, weight_decay=0.1, betas=(0.9, 0.95))
        data = torch.randint(cfg.vocab_size, (batch, cfg.context + 1), device=device)
        self.x, self.y = data[:, :-1], data[:, 1:]
        self.device = device
        self.bf16 = bf16
        self.times: list[float] = []

    def step(self) -> float:
        sync(self.device)
        t0 = time.perf_counter()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            _, loss = self.model(self.x, self.y)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        sync(self.device)
        return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--steps", type=int, default=8, help="timed steps per model")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--vocab", type=int, default=4096)
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--compile", action="store_true", help="torch.compile both models first (minutes on a CPU)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    base = ModelConfig(hidden=args.hidden, vocab_size=args.vocab)
    runners = {"bitnet": Runner(base, args.batch, device), "fp": Runner(replace(base, quant=False), args.batch, device),
               "bf16": Runner(base, args.batch, device, bf16=True)}
    if args.compile:
        for r in runners.values():
            r.model.compile()
    fpt = runners["bitnet"].model.flops_per_token()
    tokens = args.batch * base.context

    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(
        f"hidden {base.hidden}, layers {base.layers}, heads {base.heads}, ffn {base.ffn}, context {base.context}, "
        f"vocab {base.vocab_size}, batch {args.batch}; {runners['fp'].model.num_params() / 1e6:.2f}M params, "
        f"{fpt / 1e6:.1f} MFLOP/token"
    )
    peak = matmul_peak(device)
    for r in runners.values():
        for _ in range(args.warmup):
            r.step()
    for _ in range(args.steps):
        for r in runners.values():
            r.times.append(r.step())
    peak = max(peak, matmul_peak(device))

    print(f"dense fp32 matmul peak (1024^3 mm, best of before/after): {peak / 1e9:.1f} GFLOP/s")
    best = {}
    for name, r in runners.items():
        best[name] = min(r.times)
        rate = tokens / best[name]
        print(
            f"{name:>6}: step {best[name] * 1e3:7.1f} ms (fastest of {len(r.times)}; median "
            f"{statistics.median(r.times) * 1e3:.1f}), {rate:8.0f} tokens/s, "
            f"{rate * fpt / 1e9:6.1f} GFLOP/s = {rate * fpt / peak:5.1%} of peak"
        )
    print(f"bitnet bf16 autocast / fp32 step time ratio: {best['bf16'] / best['bitnet']:.2f}")
    print(f"bitnet/fp step time ratio: {best['bitnet'] / best['fp']:.2f}")


if __name__ == "__main__":
    main()
