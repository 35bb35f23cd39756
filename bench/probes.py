"""What the eval-time disease probes cost beside an eval and a training step, at the defaults.

    .venv/bin/python bench/probes.py [--hidden 256] [--repeats 5]

Builds the default model (``ModelConfig(hidden=...)``, batch 16 x context 128) and times, interleaved so a
shared machine's load falls on all three alike: one training step (forward, backward, AdamW), one
:func:`~bitnet_tui.instrument.probes.probe` forward on ``PROBE_SEQS`` sequences of a held-out batch, and the probe
against the held-out forward it sits beside. The last line is the probe's share of wall time at one eval every
50 steps: ``probe / (50 x step)``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
from bitnet_model.nn.model import BitNetLM  # noqa: E402
from bitnet_model.train.config import DiagConfig, ModelConfig  # noqa: E402
from bitnet_tui.instrument.probes import PROBE_SEQS, probe  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=args.hidden)
    model = BitNetLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1.5e-3)
    x = torch.randint(0, cfg.vocab_size, (16, cfg.context))
    y = torch.roll(x, -1, dims=1)
    steps, probes, heldout = [], [], []
    for _ in range(args.repeats + 1):
        t0 = time.perf_counter()
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        t1 = time.perf_counter()
        probe(model, x[:PROBE_SEQS])
        t2 = time.perf_counter()
        with torch.no_grad():
            model(x, y)
        t3 = time.perf_counter()
        steps.append(t1 - t0)
        probes.append(t2 - t1)
        heldout.append(t3 - t2)
    step, pr, ho = (statistics.median(v[1:]) for v in (steps, probes, heldout))  # the first is warm-up
    every = DiagConfig().eval_every
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; hidden {cfg.hidden}, batch 16, "
          f"context {cfg.context}; medians of {args.repeats}")
    print(f"training step {step * 1e3:.0f} ms; probe ({PROBE_SEQS} sequences) {pr * 1e3:.1f} ms; one held-out "
          f"batch forward {ho * 1e3:.0f} ms")
    print(f"probe / training step: {pr / step:.3f}")
    print(f"probe / wall time at defaults (eval every {every}): {pr / (every * step):.2%}")


if __name__ == "__main__":
    main()
