"""Training-step time and peak memory of BitNet b1.58 as the width grows.

    .venv/bin/python bench/scaling.py [--hidden 256 512 768 1024] [--batch 1] [--steps 1] [--device auto]

Each width runs in a fresh subprocess (so peak resident memory is that model's alone): it builds
``BitNetLM(ModelConfig(hidden=h))`` with the width's default layers, FFN and context, takes one untimed
warm-up step (forward, backward, AdamW) on random tokens and then ``--steps`` timed ones (more, up to 8,
while they add up to less than ``--min-time`` seconds: the small widths get a best-of-several), and reports
its fastest step and its peak RSS (``resource.getrusage``; on CUDA also ``torch.cuda.max_memory_allocated``).
The default batch of 1 keeps the 1024-wide model (8 layers, context 256) quick on a 2-core CPU; the
trainer's batch is 16 (``--batch 16``). Last line: ``step time 1024/256: X.X`` (largest over smallest width).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(hidden: int, batch: int, steps: int, min_time: float, device_name: str) -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    from bitnet_model.nn.model import BitNetLM
    from bitnet_model.train.config import ModelConfig

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device_name == "auto" else device_name)
    cfg = ModelConfig(hidden=hidden)
    torch.manual_seed(0)
    model = BitNetLM(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.1, betas=(0.9, 0.95))
    data = torch.randint(cfg.vocab_size, (batch, cfg.context + 1), device=device)
    x, y = data[:, :-1], data[:, 1:]
    times: list[float] = []
    i = 0
    while len(times) < steps or (sum(times) < min_time and len(times) < 8):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        _, loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:
            times.append(time.perf_counter() - t0)
        i += 1
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    out = {"hidden": hidden, "layers": cfg.layers, "ffn": cfg.ffn, "context": cfg.context,
           "params": model.num_params(), "step_s": min(times), "rss_mib": rss_kib / 1024,
           "tokens": batch * cfg.context, "steps": len(times), "device": str(device),
           "threads": torch.get_num_threads()}
    if device.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    print(json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 512, 768, 1024])
    p.add_argument("--batch", type=int, default=1, help="sequences per step (the trainer uses 16)")
    p.add_argument("--steps", type=int, default=1, help="timed steps per width, after one warm-up step")
    p.add_argument("--min-time", type=float, default=4.0,
                   help="keep taking timed steps (up to 8) until they add up to this many seconds")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        child(args.child, args.batch, args.steps, args.min_time, args.device)
        return

    rows = []
    for h in args.hidden:
        cmd = [sys.executable, __file__, "--child", str(h), "--batch", str(args.batch), "--steps", str(args.steps),
               "--min-time", str(args.min_time), "--device", args.device]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"hidden {h} failed:\n{res.stderr[-2000:]}")
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        if len(rows) == 1:
            print(f"device {r['device']}, threads {r['threads']}, batch {args.batch}; fastest of at least {args.steps} "
                  f"timed steps (more, up to 8, until {args.min_time:g} s) after one warm-up, each width in a fresh "
                  "process")
            print(f"{'hidden':>6} {'layers':>6} {'ffn':>5} {'ctx':>4} {'params':>8} {'tokens':>6} {'steps':>5} "
                  f"{'step s':>8} {'tokens/s':>9} {'peak RSS MiB':>12}")
        cuda = f" {r['cuda_peak_mib']:9.0f} (CUDA peak MiB)" if "cuda_peak_mib" in r else ""
        print(f"{r['hidden']:>6} {r['layers']:>6} {r['ffn']:>5} {r['context']:>4} {r['params'] / 1e6:7.1f}M "
              f"{r['tokens']:>6} {r['steps']:>5} {r['step_s']:8.2f} {r['tokens'] / r['step_s']:9.0f} "
              f"{r['rss_mib']:12.0f}{cuda}",
              flush=True)
    lo, hi = rows[0], rows[-1]
    print(f"peak RSS {hi['hidden']}/{lo['hidden']}: {hi['rss_mib'] / lo['rss_mib']:.1f}")
    print(f"step time {hi['hidden']}/{lo['hidden']}: {hi['step_s'] / lo['step_s']:.1f}")


if __name__ == "__main__":
    main()
