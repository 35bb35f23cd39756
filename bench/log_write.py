"""Session-log writing as a share of training-step time, and how long reading a long log takes.

    .venv/bin/python bench/log_write.py [--steps 20000] [--read-steps 100000] [--hidden 256]

Writes a realistic event stream (a step event per step; every 100 steps an eval
and a weights snapshot of 4 layers x 7 BitLinears, and a detector alert) through
:class:`SessionWriter` to a real file in a temporary directory, and times it per
step. Beside it, times forward + backward + AdamW steps of ``BitNetLM`` at the
given width, batch 16, on random tokens (fastest of three, the step least disturbed
by other load). Then writes a ``--read-steps`` log and times ``read_session`` on
it, in full and with the summary's ``skip``.
Last line: ``log write / step time: X``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
from bitnet_model.nn.model import BitNetLM  # noqa: E402
from bitnet_model.train.config import ModelConfig  # noqa: E402
from bitnet_tui.session.analysis.summary import SUMMARY_SKIP  # noqa: E402
from bitnet_tui.session.log.reader import read_session  # noqa: E402
from bitnet_tui.session.log.writer import SessionWriter  # noqa: E402
from tests.fixtures.scripted import scripted_run  # noqa: E402


def step_time(hidden: int, batch: int = 16, steps: int = 5) -> float:
    """Fastest of ``steps`` timed training steps (after one warm-up), seconds."""
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=hidden)
    model = BitNetLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.1, betas=(0.9, 0.95))
    x = torch.randint(0, cfg.vocab_size, (batch, cfg.context))
    y = torch.randint(0, cfg.vocab_size, (batch, cfg.context))
    best = float("inf")
    for i in range(steps + 1):
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        _, loss = model(x, y)
        loss.backward()
        opt.step()
        if i:
            best = min(best, time.perf_counter() - t)
    return best


def write_time(path: Path, events: list) -> float:
    """Seconds to write all ``events`` through a SessionWriter (open and close included)."""
    t = time.perf_counter()
    with SessionWriter(path) as w:
        for ev in events:
            w(ev)
    return time.perf_counter() - t


def stream(steps: int) -> list:
    evals = max(1, steps // 100)
    states = ["healthy"] * (evals // 2) + ["collapsed"] * (evals - evals // 2)
    return scripted_run([20] * (evals // 2) + [3] * (evals - evals // 2), states=states, eval_every=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20_000, help="steps of events written for the write timing")
    ap.add_argument("--read-steps", type=int, default=100_000, help="steps in the log timed for reading")
    ap.add_argument("--hidden", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    with tempfile.TemporaryDirectory() as tmp:
        events = stream(args.steps)
        steps = events[-1].step
        # write, train, write: drift in the machine hits both; each keeps its fastest
        writes = [write_time(Path(tmp) / "w0.jsonl", events) / steps]
        per_step_train = step_time(args.hidden, steps=3)
        writes.append(write_time(Path(tmp) / "w1.jsonl", events) / steps)
        per_step_write = min(writes)
        size = (Path(tmp) / "w0.jsonl").stat().st_size
        print(f"write: {len(events)} events, {steps} steps, {size / 1e6:.1f} MB: "
              f"{per_step_write * 1e6:.1f} us per step")
        print(f"train step at hidden {args.hidden}, batch 16: {per_step_train * 1e3:.1f} ms")

        big = Path(tmp) / "big.jsonl"
        big_events = stream(args.read_steps)
        write_time(big, big_events)
        full, quick = [], []
        for _ in range(3):
            t = time.perf_counter()
            data = read_session(big)
            full.append(time.perf_counter() - t)
            t = time.perf_counter()
            read_session(big, skip=SUMMARY_SKIP)
            quick.append(time.perf_counter() - t)
        print(f"read {data.lines} lines ({big.stat().st_size / 1e6:.1f} MB): full {min(full):.2f} s, "
              f"summary (skip step/weights) {min(quick):.2f} s")
    print(f"log write / step time: {per_step_write / per_step_train:.6f}")


if __name__ == "__main__":
    main()
