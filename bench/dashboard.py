"""Does the dashboard slow training down? Tokens/s headless vs with the live dashboard open.

Trains the same small-but-not-trivial run (hidden 256, 4 layers) twice: once
headless (`run --headless`'s path: the trainer thread and the plain-lines view), once under the
live dashboard in Textual's headless ``run_test`` (the trainer in its thread
worker, the UI draining and redrawing at 4 Hz). Tokens/s is measured from the
logged step times, excluding the first steps (warm-up) and eval pauses. A
warm-up run comes first and the order alternates between rounds: the first
run in a process is markedly slower, and a shared machine is noisy.

    .venv/bin/python bench/dashboard.py [--steps N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bitnet_model.train.config import DataConfig, DiagConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from bitnet_tui.app.runs.build import build_run  # noqa: E402
from bitnet_tui.app.runs.plan import RunPlan  # noqa: E402
from bitnet_tui.session.log.events import Event, StepDone  # noqa: E402


def config(steps: int, cache: str) -> RunConfig:
    return RunConfig(
        model=ModelConfig(hidden=256, vocab_size=1024, context=128),
        train=TrainConfig(lr=1.5e-3, steps=steps, batch_size=8),
        diag=DiagConfig(eval_every=max(10, steps // 3), eval_prompts=4, prompt_tokens=8, gen_tokens=16, eval_batches=1),
        data=DataConfig(cache_dir=cache),
    )


def tokens_per_s(events: list[Event], skip: int = 5) -> float:
    """Median of the per-step rates the trainer logged (its own timing of forward+backward+update)."""
    rates = [e.tokens_per_s for e in events if isinstance(e, StepDone) and e.step > skip]
    return statistics.median(rates)


def wall_tokens_per_s(events: list[Event], tokens_per_step: int, skip: int = 5) -> float:
    """Steps over wall time between step events (includes any time the trainer lost between steps)."""
    steps = [e for e in events if isinstance(e, StepDone) and e.step > skip]
    gaps = [b.time - a.time for a, b in zip(steps, steps[1:], strict=False) if b.step == a.step + 1]
    gaps.sort()
    kept = gaps[: max(1, int(len(gaps) * 0.9))]  # drop the steps that waited on an eval
    return tokens_per_step * len(kept) / sum(kept)


def local_run(cfg: RunConfig):
    """The run as ``bitnet-tui run`` builds it (data, model, Monitor, session log in a scratch directory)."""
    return build_run(RunPlan(cfg=cfg, sessions=Path(tempfile.mkdtemp(prefix="bench-dashboard-"))), argv=["bench"])


def headless(cfg: RunConfig) -> list[Event]:
    """The real headless path: trainer thread plus the plain-lines view, as `run --headless` when piped."""
    import io

    from bitnet_tui.app.headless import HeadlessView

    events: list[Event] = []
    run = local_run(cfg)
    run.subscribe(events.append)
    HeadlessView(run, tty=False, out=io.StringIO()).watch()
    return events


async def with_dashboard(cfg: RunConfig) -> list[Event]:
    from bitnet_tui.app.dashboard.app import make_app

    events: list[Event] = []
    run = local_run(cfg)
    run.subscribe(events.append)
    app = make_app("live", run=run)
    async with app.run_test(size=(160, 48)) as pilot:
        while app.feed.ended is None:
            await pilot.pause(0.1)
    return events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=2,
                    help="Alternate headless and dashboard runs this many times; best of each.")
    args = ap.parse_args()
    runs: dict[str, list[tuple[float, float, float]]] = {"headless": [], "dashboard": []}
    with tempfile.TemporaryDirectory() as cache:
        cfg = config(args.steps, cache)
        headless(config(10, cache))  # warm-up: tokenizer cached, torch kernels and allocator primed
        per_step = cfg.train.batch_size * cfg.model.context
        for r in range(args.rounds):
            for name in ("headless", "dashboard")[:: 1 if r % 2 == 0 else -1]:
                t = time.perf_counter()
                ev = headless(cfg) if name == "headless" else asyncio.run(with_dashboard(cfg))
                runs[name].append((tokens_per_s(ev), wall_tokens_per_s(ev, per_step), time.perf_counter() - t))
    best = {k: max(v, key=lambda r: r[1]) for k, v in runs.items()}
    (ha, wa, t_a), (hb, wb, t_b) = best["headless"], best["dashboard"]
    print(f"best of {args.rounds} alternating runs, {args.steps} steps, hidden 256, {per_step} tokens/step")
    print(f"{'':28}{'headless':>12}{'dashboard':>12}")
    print(f"{'tokens/s (step timing)':28}{ha:12,.0f}{hb:12,.0f}")
    print(f"{'tokens/s (wall, step gaps)':28}{wa:12,.0f}{wb:12,.0f}")
    print(f"{'whole run, s':28}{t_a:12.1f}{t_b:12.1f}")
    print(f"dashboard/headless tokens/s: {wb / wa:.2f}")


if __name__ == "__main__":
    main()
