"""Share of wall time that the run's diagnostics (evals and weight snapshots) take at the default intervals.

    .venv/bin/python bench/diagnostics.py [--steps 6] [--hidden 256] [--device auto]

Runs the real :class:`~bitnet_model.train.trainer.Trainer` with ``DiagConfig()`` defaults (its embedded corpus,
batch 16) for ``--steps`` optimizer steps, timing each training step (from its StepDone events) and each
eval and weight snapshot its Monitor makes. A short run evals at step 0 and at its last step; a long run
evals every ``eval_every`` steps and snapshots every ``weights_every``, so the share at the defaults is

    (eval + snapshot per interval) / (eval_every x step time + eval + snapshot per interval)

from the measured medians. ``--steps`` at or beyond ``eval_every`` also prints the share measured over
the whole run. Last line: ``diagnostics / wall time at defaults: X.X%``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
from bitnet_model.train.config import DiagConfig, ModelConfig, RunConfig, TrainConfig  # noqa: E402
from bitnet_model.train.trainer import Trainer  # noqa: E402
from bitnet_tui.instrument.for_trainer import monitor_for  # noqa: E402
from bitnet_tui.session.log.events import StepDone  # noqa: E402


def timed(fn: Callable[..., list], into: list[float]) -> Callable[..., list]:
    def run(*args: object) -> list:
        t0 = time.perf_counter()
        out = fn(*args)
        into.append(time.perf_counter() - t0)
        return out

    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=6, help="optimizer steps to run")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda")
    args = p.parse_args()

    diag = DiagConfig()
    cfg = RunConfig(model=ModelConfig(hidden=args.hidden), train=TrainConfig(steps=args.steps, device=args.device),
                    diag=diag)
    trainer = Trainer(cfg, run_name="bench")
    t0 = time.perf_counter()
    trainer.setup()
    setup_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "bench.jsonl"
        log.touch()
        mon = monitor_for(trainer, log)
        evals: list[float] = []
        snaps: list[float] = []
        diagnostics = mon.diagnostics
        diagnostics.eval = timed(diagnostics.eval, evals)  # the Monitor calls these through the instance
        diagnostics.weights = timed(diagnostics.weights, snaps)
        step_s: list[float] = []
        tokens = cfg.train.batch_size * cfg.model.context
        mon.subscribe(lambda ev: step_s.append(tokens / ev.tokens_per_s) if isinstance(ev, StepDone) else None)
        t0 = time.perf_counter()
        end = trainer.run()
        wall = time.perf_counter() - t0
    if end.reason != "finished":
        raise SystemExit(f"the run ended with {end.reason}: {end.error}")

    step, ev, sn = statistics.median(step_s), statistics.median(evals), statistics.median(snaps)
    print(f"device {trainer.device}, torch {torch.__version__}, threads {torch.get_num_threads()}; "
          f"hidden {cfg.model.hidden}, batch {cfg.train.batch_size}, context {cfg.model.context}; "
          f"setup {setup_s:.1f} s")
    print(f"training step: median {step * 1e3:.0f} ms, fastest {min(step_s) * 1e3:.0f} ms over {len(step_s)} steps")
    print(f"eval ({diag.eval_prompts} prompts x {diag.gen_tokens} greedy tokens, "
          f"{diag.eval_batches} held-out batches): median {ev * 1e3:.0f} ms over {len(evals)}")
    print(f"weight snapshot ({len(trainer.model.bitlinear_layers())} BitLinears): median {sn * 1e3:.1f} ms "
          f"over {len(snaps)}")
    run_share = (sum(evals) + sum(snaps)) / wall
    print(f"this run: {len(step_s)} steps, {len(evals)} evals, {len(snaps)} snapshots in {wall:.1f} s; "
          f"diagnostics {run_share:.1%} of it" + ("" if args.steps >= diag.eval_every else " (short run: not typical)"))
    per_interval = ev + sn * diag.eval_every / diag.weights_every
    share = per_interval / (diag.eval_every * step + per_interval)
    print(f"diagnostics / wall time at defaults (eval every {diag.eval_every}, snapshot every "
          f"{diag.weights_every}): {share:.1%}")


if __name__ == "__main__":
    main()
