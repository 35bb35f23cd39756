"""Past one process, measured: --nproc 2 against --nproc 1, the per-step command share, and the host-sync change.

    .venv/bin/python bench/distributed.py [--hidden 128] [--steps 60]

1. ``bitnet-tui run --nproc 2`` against ``--nproc 1`` (same per-process batch, headless, tiny evals), tokens/s from
   the logs' step events (global tokens). On this 2-core CPU the two ranks share the cores, so this measures the
   overhead of DDP and the Monitor's collectives, not a speedup.
2. In a 2-rank gloo group: the step boundary's broadcast of three numbers (command count, paused, stopped), which
   the Monitor does every logged step, against broadcasting the (empty) command list itself every step.
3. The loss read back every step (``--log-every 1``, a host sync per step) against every 10 steps, in one process:
   tokens/s of the training step, side by side.

Last line: tokens/s with --nproc 2 / --nproc 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_tokens_per_s(nproc: int, hidden: int, steps: int, sdir: Path) -> float:
    args = [sys.executable, "-m", "bitnet_tui", "run", "--headless", "--nproc", str(nproc), "--hidden", str(hidden),
            "--steps", str(steps), "--eval-every", str(steps), "--eval-prompts", "1", "--gen-tokens", "4",
            "--eval-batches", "1", "--no-report-metric", "--sessions-dir", str(sdir / f"n{nproc}")]
    subprocess.run(args, check=True, capture_output=True, cwd=ROOT, timeout=1800)
    log = next((sdir / f"n{nproc}").glob("*.jsonl"))
    rates = [e["tokens_per_s"] for e in map(json.loads, log.read_text().splitlines())
             if e["kind"] == "step" and e["step"] > 5 and "tokens_per_s" in e]
    return statistics.median(rates)


def collectives() -> None:
    """Run as one rank of a 2-rank group (``--worker``): time both ways of sharing commands."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    n, out = 2000, {}
    for name in ("three numbers", "the list itself"):
        for _ in range(200):
            _share(name)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(n):
            _share(name)
        out[name] = (time.perf_counter() - t0) / n * 1e6
    if dist.get_rank() == 0:
        print(json.dumps(out))
    dist.destroy_process_group()
    del torch


def _share(name: str) -> None:
    import torch
    import torch.distributed as dist

    if name == "three numbers":
        dist.broadcast(torch.zeros(3, dtype=torch.int64), src=0)
    else:
        dist.broadcast_object_list([[]], src=0)


def host_sync(hidden: int, steps: int) -> dict[int, float]:
    """Median tokens/s of the training step at log_every 1 and 10, alternating short runs in this process."""
    from bitnet_model.train.config import DiagConfig, ModelConfig, RunConfig, TrainConfig
    from bitnet_model.train.trainer import Trainer
    from bitnet_tui.instrument.for_trainer import monitor_for

    rates: dict[int, list[float]] = {1: [], 10: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(3):
            for every in (1, 10):
                cfg = RunConfig(model=ModelConfig(hidden=hidden), train=TrainConfig(steps=steps, log_every=every),
                                diag=DiagConfig(eval_every=10 * steps, eval_prompts=1, gen_tokens=4, eval_batches=1,
                                                report_metric=False))
                tr = Trainer(cfg)
                log = Path(tmp) / f"s{every}-{time.time_ns()}.jsonl"
                log.touch()
                mon = monitor_for(tr, log)
                mon.eval_at_start = False
                t0 = time.perf_counter()
                tr.run()
                rates[every].append(steps * cfg.train.batch_size * cfg.model.context / (time.perf_counter() - t0))
    return {k: statistics.median(v) for k, v in rates.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        collectives()
        return
    import torch

    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}, CUDA {torch.cuda.is_available()}")
    with tempfile.TemporaryDirectory() as tmp:
        one = run_tokens_per_s(1, args.hidden, args.steps, Path(tmp))
        two = run_tokens_per_s(2, args.hidden, args.steps, Path(tmp))
    print(f"--nproc 1: {one:,.0f} tokens/s; --nproc 2: {two:,.0f} tokens/s (global; the ranks share 2 cores)")
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          __file__, "--worker"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    costs = json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1])
    print("per step boundary, 2 ranks on gloo: " + ", ".join(f"{k} {v:.0f} us" for k, v in costs.items()))
    sync = host_sync(args.hidden, args.steps)
    print(f"host sync: loss read every step {sync[1]:,.0f} tokens/s, every 10 steps {sync[10]:,.0f} tokens/s "
          f"(ratio {sync[10] / sync[1]:.3f}; on a CPU the read is nearly free)")
    print(f"tokens/s --nproc 2 / --nproc 1: {two / one:.2f}")


if __name__ == "__main__":
    main()
