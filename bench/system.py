"""What the system sampler costs a training loop: step time with it running and without, in alternating rounds.

    .venv/bin/python bench/system.py [--hidden 256] [--rounds 6] [--seconds 15] [--every 2] [--device auto]

A user-style loop (``examples/plain_loop.py``'s TinyGPT with BitLinear layers, AdamW, random token batches) runs
under a ``Monitor`` that writes its session log, with no sampler of its own (``system_every=0``). Rounds of
``--seconds`` each alternate between the sampler running (a :class:`SystemSampler` on the Monitor's emitter, every
``--every`` seconds, its events written to the log) and not, starting with it off and then on, off... so drift in
a shared machine falls on both; a round's figure is its median step time. The sampler is a thread of the same
process, so the two cannot run side by side in one round: they take turns.

The shares the rounds can resolve are bounded by the machine's noise (the spread of the rounds without the sampler
is printed beside them), so the sampler's own time is also measured directly: one reading and its emit (psutil,
the load average, the log line), timed 200 times, over the interval. Last line: ``with/without sampler: R
(rounds ...); one sample S ms every E s = P of wall time (target <= 0.5%)``.
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
from bitnet_tui.instrument.system import SystemSampler  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_system(path: Path | None) -> int:
    """``system`` events in the log so far."""
    return sum('"kind":"system"' in line for line in Path(str(path)).read_text().splitlines())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    model_shape(p, batch=16)
    p.add_argument("--rounds", type=int, default=6, help="rounds in all, half with the sampler")
    p.add_argument("--seconds", type=float, default=15.0, help="seconds per round")
    p.add_argument("--every", type=float, default=2.0, help="the sampler's interval (the default system_every)")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda")
    args = p.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = TinyGPT(args.vocab, args.hidden, args.layers, heads=args.heads, context=args.context).to(device)
    opt = torch.optim.AdamW(param_groups(model, 0.1), lr=1e-3, betas=(0.9, 0.95))
    g = torch.Generator().manual_seed(1)
    batches = [torch.randint(args.vocab, (args.batch, args.context + 1), generator=g).to(device) for _ in range(4)]

    with tempfile.TemporaryDirectory() as tmp:
        mon = Monitor(model, opt, sessions_dir=tmp, run_name="bench", eval_every=10**9,
                      options=MonitorConfig(context=args.context, system_every=0, argv=["bench/system.py"]))
        n = 0

        def step() -> float:
            nonlocal n
            b = batches[n % len(batches)]
            n += 1
            sync(device)
            t0 = time.perf_counter()
            loss = F.cross_entropy(model(b[:, :-1]).flatten(0, 1), b[:, 1:].flatten())
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            mon.step(loss)
            sync(device)
            return time.perf_counter() - t0

        def round_(sampling: bool) -> tuple[float, int]:
            sampler = SystemSampler(mon.emitter, lambda: mon.step_count, mon.device, args.every,
                                    started=True).start() if sampling else None
            times: list[float] = []
            end = time.monotonic() + args.seconds
            while time.monotonic() < end:
                times.append(step())
            if sampler is not None:
                sampler.close()
            return statistics.median(times), len(times)

        with mon:
            for _ in range(3):
                step()  # warm up
            rounds: dict[bool, list[float]] = {False: [], True: []}
            steps = 0
            for r in range(args.rounds):
                t, k = round_(sampling=r % 2 == 1)
                rounds[r % 2 == 1].append(t)
                steps += k
            logged = count_system(mon.session_path)
            sampler = SystemSampler(mon.emitter, lambda: mon.step_count, mon.device, args.every, started=True)
            sampler.sample()
            one = []
            for _ in range(200):
                t0 = time.perf_counter()
                with mon.emitter.lock:
                    mon.emitter.emit(sampler.sample())
                one.append(time.perf_counter() - t0)

    with_s, without = statistics.median(rounds[True]), statistics.median(rounds[False])
    ratio = with_s / without
    spread = (max(rounds[False]) - min(rounds[False])) / without
    t_one = statistics.median(one)
    share = t_one / args.every
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}; TinyGPT hidden "
          f"{args.hidden}, {args.layers} layers, batch {args.batch} x {args.context}; {steps} steps in "
          f"{args.rounds} rounds of {args.seconds:g} s; {logged} system events logged in the rounds with the sampler")
    for sampling in (False, True):
        print(f"median step, sampler {'on ' if sampling else 'off'}: "
              f"{', '.join(f'{t * 1e3:.1f}' for t in rounds[sampling])} ms")
    print(f"one sample and its log line: median {t_one * 1e3:.3f} ms (of 200)")
    print(f"with/without sampler: {ratio:.4f} (rounds without it spread {spread:.1%}); one sample {t_one * 1e3:.2f} "
          f"ms every {args.every:g} s = {share:.4%} of wall time (target <= 0.5%)")


if __name__ == "__main__":
    main()
