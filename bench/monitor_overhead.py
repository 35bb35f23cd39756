"""What the Monitor costs a user's loop: per training step outside evals, and its evals' share of wall time.

    .venv/bin/python bench/monitor_overhead.py [--hidden 256] [--rounds 12] [--block 2] [--device auto]

A user-style loop (``examples/plain_loop.py``'s TinyGPT with BitNet b1.58 BitLinear layers, AdamW, random
token batches) runs as three identical copies side by side in one process: two plain, one under a ``Monitor``
with its defaults (session log, control socket, LR hooks on the optimizer, the loss read back every step).
Blocks of ``--block`` steps rotate between the copies for ``--rounds`` rounds (each copy goes first, second and
third in turn), so drift in a shared machine hits all three; each copy's step time is its fastest block's mean
(best of N); the headline ratio sets the monitored copy against the faster plain one. The second plain copy
measures the noise floor: on a shared machine two identical loops differ by a few percent, more than the
Monitor costs. So the Monitor's own time is also timed directly: inside
``mon.step()`` on steps without evals (the LR hooks around ``optimizer.step()`` add about 2 microseconds).

Evals at the defaults: the monitored copy then runs with evals and weight snapshots every ``--eval-probe``
steps (8 held-out prompts of 16 tokens continued by 32 greedy tokens, 2 held-out batches: the shape of
bitnet-tui's own ``DiagConfig``); their median time gives the share at the Monitor's default ``eval_every=100``,
``eval / (100 x step + eval)``. Last line: ``monitored/plain step time: R side by side (plain/plain F), P inside
mon.step (target <= 1.02); evals / wall time at defaults: S (target <= 5%)``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `import bitnet_tui` sets it, before torch
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]  # run as a script from a checkout
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from plain_loop import TinyGPT, param_groups  # noqa: E402
from shapes import model_shape  # noqa: E402

from bitnet_model.nn.device import resolve_device  # noqa: E402
from bitnet_tui.instrument.config import MonitorConfig  # noqa: E402
from bitnet_tui.instrument.monitor import Monitor  # noqa: E402

EVAL_EVERY = 100
"""The Monitor's default ``eval_every`` (and ``weights_every``)."""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Loop:
    """One copy of the user's model, optimizer and batches; ``monitor`` watches it or not."""

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        torch.manual_seed(0)
        self.model = TinyGPT(args.vocab, args.hidden, args.layers, heads=args.heads, context=args.context).to(device)
        self.opt = torch.optim.AdamW(param_groups(self.model, 0.1), lr=1e-3, betas=(0.9, 0.95))
        g = torch.Generator().manual_seed(1)
        self.batches = [torch.randint(args.vocab, (args.batch, args.context + 1), generator=g).to(device)
                        for _ in range(4)]
        self.device = device
        self.n = 0
        self.monitor: Monitor | None = None
        self.inside: list[tuple[int, float]] = []
        """(step, seconds inside ``mon.step()``) per monitored step."""

    def step(self) -> None:
        b = self.batches[self.n % len(self.batches)]
        self.n += 1
        loss = F.cross_entropy(self.model(b[:, :-1]).flatten(0, 1), b[:, 1:].flatten())
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if self.monitor is not None:
            t0 = time.perf_counter()
            self.monitor.step(loss)
            sync(self.device)
            self.inside.append((self.monitor.step_count, time.perf_counter() - t0))

    def block(self, n: int) -> float:
        """Mean seconds per step over ``n`` steps."""
        sync(self.device)
        t0 = time.perf_counter()
        for _ in range(n):
            self.step()
        sync(self.device)
        return (time.perf_counter() - t0) / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model_shape(p, batch=16)
    p.add_argument("--rounds", type=int, default=12, help="rounds (each: one block per copy, in turn)")
    p.add_argument("--block", type=int, default=2, help="steps per block")
    p.add_argument("--eval-probe", type=int, default=4, help="steps between evals while timing them")
    p.add_argument("--evals", type=int, default=3, help="evals (with weight snapshots) to time")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda")
    args = p.parse_args()
    device = resolve_device(args.device)

    plain, again, watched = Loop(args, device), Loop(args, device), Loop(args, device)
    copies = {"plain": plain, "plain again": again, "monitored": watched}
    g = torch.Generator().manual_seed(2)
    prompts = torch.randint(args.vocab, (8, 16), generator=g)
    held_out = [tuple(t.to(device) for t in (b[:, :-1], b[:, 1:])) for b in
                torch.randint(args.vocab, (2, args.batch, args.context + 1), generator=g)]
    with tempfile.TemporaryDirectory() as tmp:
        mon = Monitor(watched.model, watched.opt, prompts=prompts, val_batches=held_out, sessions_dir=tmp,
                      run_name="bench", eval_every=10**9,
                      options=MonitorConfig(context=args.context, argv=["bench/monitor_overhead.py"]))
        watched.monitor = mon
        with mon:
            for loop in copies.values():
                loop.block(2)  # warm up
            watched.inside.clear()
            times: dict[str, list[float]] = {name: [] for name in copies}
            names = list(copies)
            for r in range(args.rounds):
                for name in names[r % 3:] + names[:r % 3]:  # each copy goes first, second and third in turn
                    times[name].append(copies[name].block(args.block))
            inside = statistics.median(t for _, t in watched.inside)

            mon.eval_every = mon.weights_every = args.eval_probe  # evals (and snapshots) from here on
            watched.inside.clear()
            watched.block(args.eval_probe * args.evals)
            evals = [t for s, t in watched.inside if s % args.eval_probe == 0]  # an eval and a snapshot each
        layers = len(mon.diagnostics.layers)

    best = {name: min(ts) for name, ts in times.items()}
    # against the faster plain copy: best of 2N plain blocks against N monitored ones, so it leans against the Monitor
    ratio = best["monitored"] / min(best["plain"], best["plain again"])
    floor = best["plain again"] / best["plain"]
    t_eval = statistics.median(evals) - inside
    share = t_eval / (EVAL_EVERY * best["monitored"] + t_eval)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}; TinyGPT hidden "
          f"{args.hidden}, {args.layers} layers ({layers} BitLinear), batch {args.batch} x {args.context} tokens, "
          f"vocab {args.vocab}")
    for name, ts in times.items():
        print(f"step, {name}: best block {best[name] * 1e3:.1f} ms (blocks of {args.block}: "
              f"{', '.join(f'{t * 1e3:.0f}' for t in ts)} ms)")
    for name in ("monitored", "plain again"):
        paired = statistics.median(m / q for m, q in zip(times[name], times["plain"]))
        print(f"{name}/plain: best-of-{args.rounds} {best[name] / best['plain']:.3f}, median of paired blocks "
              f"{paired:.3f}" + ("  (two plain copies: the machine's noise floor)" if name == "plain again" else ""))
    print(f"inside mon.step() without evals: median {inside * 1e3:.2f} ms = {inside / best['plain']:.2%} of a plain "
          f"step (log line, loss read-back, command check; the LR hooks add about 2 us)")
    print(f"eval + weight snapshot (8 prompts x 32 greedy tokens, 2 held-out batches): median {t_eval * 1e3:.0f} ms "
          f"over {len(evals)}")
    print(f"monitored/plain step time: {ratio:.3f} side by side (plain/plain {floor:.3f}), "
          f"{inside / best['plain']:.2%} inside mon.step (target <= 1.02); evals / wall time at defaults: "
          f"{share:.1%} (target <= 5%)")


if __name__ == "__main__":
    main()
