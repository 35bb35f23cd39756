"""Eval time with the key/value cache against without it, side by side on one model (hidden 256 defaults).

    .venv/bin/python bench/eval_cache.py [--hidden 256] [--rounds 5] [--device auto]

An eval is the held-out loss over ``eval_batches`` batches plus greedy continuations of ``eval_prompts`` prompts
(``gen_tokens`` each) and the report's 20-prompt metric: what the Monitor runs every ``eval_every`` steps. Without
the cache every generated token re-reads the whole window; with it, each token costs one position. The two are
timed in turn, ``--rounds`` times each, in one process; best and median are printed. Last line: the ratio.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
from bitnet_model.data.dataset import load_data  # noqa: E402
from bitnet_model.nn.device import one_thread_on_cpu, resolve_device  # noqa: E402
from bitnet_model.nn.model import BitNetLM  # noqa: E402
from bitnet_model.train.config import DataConfig, DiagConfig, ModelConfig  # noqa: E402
from bitnet_tui.instrument.evals import evaluate, report_prompt_ids  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = resolve_device(args.device)
    mcfg, diag = ModelConfig(hidden=args.hidden), DiagConfig()
    data = load_data(DataConfig(), mcfg.vocab_size, mcfg.context)
    model = BitNetLM(mcfg).to(device)
    prompts = torch.tensor(data.eval_prompts(diag.eval_prompts, diag.prompt_tokens), device=device)
    val = [(x.to(device), y.to(device)) for x, y in data.val_batches(16, diag.eval_batches)]
    report = report_prompt_ids(mcfg.vocab_size, device)
    cached = model.generate
    uncached = functools.partial(BitNetLM.generate, model, use_cache=False)

    def one(generate) -> float:
        model.generate = generate
        t0 = time.perf_counter()
        with one_thread_on_cpu(device):
            evaluate(model, prompts=prompts, gen_tokens=diag.gen_tokens, decode=data.decode, val_batches=val,
                     report_prompts=report, context=mcfg.context)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    one(cached), one(uncached)  # warm up both paths
    times: dict[str, list[float]] = {"cached": [], "uncached": []}
    for _ in range(args.rounds):
        times["uncached"].append(one(uncached))
        times["cached"].append(one(cached))
    model.generate = cached
    print(f"device {device}, torch {torch.__version__}; hidden {mcfg.hidden}, {diag.eval_prompts} prompts x "
          f"{diag.gen_tokens} greedy tokens, {diag.eval_batches} held-out batches of 16 x {mcfg.context}")
    for name, ts in times.items():
        print(f"eval {name:8s}: best {min(ts) * 1e3:.0f} ms, median {statistics.median(ts) * 1e3:.0f} ms "
              f"over {len(ts)}")
    print(f"eval time with the cache / without: {min(times['cached']) / min(times['uncached']):.2f}")


if __name__ == "__main__":
    main()
