"""How long replay takes to open a long run, and to seek in it.

Writes a realistic 100,000-step session log to a temporary directory (a step
event every step; an eval and a ternary weight snapshot every 100 steps; a few
alerts and interventions), then times, headless:

1. reading the log and opening the dashboard in replay mode jumped to the end,
   up to the first paint;
2. seeking back to the middle of the run (which rebuilds the feed), up to the
   next paint.

The last line is the open time over a 2 s budget.

    .venv/bin/python bench/replay.py [--steps N]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bitnet_tui.session.log.events import (  # noqa: E402
    SCHEMA_VERSION,
    Alert,
    EvalDone,
    Intervention,
    LayerWeights,
    RunEnded,
    RunStarted,
    StepDone,
    WeightsSnapshot,
)
from bitnet_tui.session.log.reader import read_session  # noqa: E402
from bitnet_tui.session.log.writer import SessionWriter  # noqa: E402

BUDGET_S = 2.0


def write_log(path: Path, steps: int, layers: int = 16) -> int:
    t0 = 1_767_225_600.0
    w = SessionWriter(path)
    w(RunStarted(step=0, time=t0, schema=SCHEMA_VERSION, run_name="bench-replay", config={"train": {"steps": steps}},
                 corpus={}, tokenizer={}, versions={}, argv=(), device="cpu", params=10_000_000,
                 ln_vocab=math.log(4096), unigram_entropy=6.1, total_steps=steps))
    state = "healthy"
    for s in range(1, steps + 1):
        t = t0 + s * 0.05
        w(StepDone(step=s, time=t, loss=3 + 5 * math.exp(-s / 5000) + 0.1 * math.sin(s), lr=1.5e-3 * (1 - s / steps),
                   weight_decay=0.1, grad_norm=1.0, tokens_per_s=40_000.0, stage=1))
        if s % 100 == 0:
            unique = int(20 + 15 * math.sin(s / 7000))
            w(EvalDone(step=s, time=t, val_loss=3.2, unique_tokens=unique, generated_tokens=256, distinct2=0.4,
                       top_share=0.2, top_tokens=(("the", 40), (",", 20), (".", 10)), entropy=3.0,
                       samples=("the cat sat on the mat",) * 8, prompts=("Once",) * 8, state=state))
            w(WeightsSnapshot(step=s, time=t, layers=tuple(
                LayerWeights(name=f"blocks.{i}.mlp", neg=0.3, zero=0.4 + s / steps / 10, pos=0.3, scale=0.02,
                             flip_rate=0.01, near_boundary=0.05) for i in range(layers))))
            new = "collapsing" if unique <= 10 else "healthy"
            if new != state:
                w(Alert(step=s, time=t, level="warning", code="detector", message="bench", state_from=state,
                        state_to=new))
                state = new
        if s % 20_000 == 0:
            w(Intervention(step=s, time=t, action="scale_lr", old=1e-3, new=5e-4, source="dashboard"))
    w(RunEnded(step=steps, time=t0 + steps * 0.05, reason="finished"))
    w.close()
    return w.lines


async def measure(path: Path, steps: int) -> tuple[float, float, int]:
    from bitnet_tui.app.dashboard.app import make_app

    t0 = time.perf_counter()
    app = make_app("replay", session_path=path, start_at="end")  # what `bitnet-tui replay --end` opens
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        t_open = time.perf_counter() - t0
        assert app.feed.step == steps
        t1 = time.perf_counter()
        app._move("seek_step", steps // 2)
        await pilot.pause()
        t_seek = time.perf_counter() - t1
        assert app.feed.step == steps // 2
        points = max(len(s) for s in (app.feed.train_loss, app.feed.lr_series))
    return t_open, t_seek, points


def peak_memory(events: int) -> None:
    """Child process: write a log of about ``events`` events, open it in replay at its end, print peak RSS."""
    import resource

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "big.jsonl"
        lines = write_log(path, events)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t = time.perf_counter()
        asyncio.run(measure(path, events))
        took = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size = path.stat().st_size / 1e6
    print(f"{lines} events ({size:.0f} MB): opened and seeked in {took:.1f} s; peak RSS {peak:.0f} MB "
          f"(before opening {base:.0f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--memory-events", type=int, default=1_000_000,
                    help="Also measure peak memory replaying a log of this many steps in a fresh process (0: skip).")
    ap.add_argument("--memory-child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        peak_memory(args.memory_child)
        return
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.jsonl"
        t = time.perf_counter()
        lines = write_log(path, args.steps)
        size = path.stat().st_size
        took = time.perf_counter() - t
        print(f"log: {args.steps} steps, {lines} events, {size / 1e6:.1f} MB (written in {took:.1f} s)")
        t = time.perf_counter()
        read_session(path, sink=lambda e: None)
        t_read = time.perf_counter() - t  # reading (decoding) the log alone, for scale
        t_open, t_seek, points = asyncio.run(measure(path, args.steps))
    print(f"read + open replay at the end, to first paint: {t_open:.2f} s (reading the log: {t_read:.2f} s)")
    print(f"seek to the middle (step {args.steps // 2}), to next paint: {t_seek:.2f} s")
    print(f"points per series drawn: {points}")
    if args.memory_events:
        import subprocess

        out = subprocess.run([sys.executable, __file__, "--memory-child", str(args.memory_events)],
                             capture_output=True, text=True, check=False)
        print("memory: " + (out.stdout.strip() or out.stderr.strip()[-300:]) + " (target < 500 MB)")
    print(f"replay open time / {BUDGET_S:g} s budget: {t_open / BUDGET_S:.2f}")


if __name__ == "__main__":
    main()
