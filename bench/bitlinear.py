"""BitLinear forward + backward against nn.Linear, and against Hugging Face's BitNet layer, at the model's shapes.

    .venv/bin/python bench/bitlinear.py [--hidden 256 512 768 1024] [--tokens 2048] [--reps 5] [--device auto]

For each width the three shapes a block uses: q/k/v/o (h x h), gate/up (h -> ffn) and down (ffn -> h),
on batch x context = 16 x 128 = 2048 tokens. Contenders, timed step by step in turn so drift in the
machine hits all of them alike:

- ``BitLinear`` (this project's training path: weightless RMSNorm, 8-bit activations, ternary weights, STE);
- ``nn.Linear`` on the same input (no norm, no quantisers): the floor;
- ``transformers.integrations.bitnet.AutoBitLinear(online_quant=True, use_rms_norm=True)``, Hugging
  Face's training-time BitNet layer, when ``transformers`` is installed (``pip install -e '.[bench]'``).
  Its outputs and gradients are checked against BitLinear's before it is timed.

Each contender's time is its fastest forward + backward (the one least disturbed by other load); the
median is printed beside it. Last line: the worst BitLinear/nn.Linear and BitLinear/HF ratios.
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn
from torch._dynamo import config as dynamo_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout
from bitnet_model.nn.quant import BitLinear  # noqa: E402
from bitnet_model.train.config import ModelConfig  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def hf_layer_class() -> type | None:
    try:
        from transformers.integrations.bitnet import AutoBitLinear
    except Exception:  # not installed, or an import-time failure of an optional extra
        return None
    params = inspect.signature(AutoBitLinear.__init__).parameters
    if not {"online_quant", "use_rms_norm"} <= params.keys():
        print("this transformers' AutoBitLinear has no online_quant/use_rms_norm (tested with 5.23): skipped")
        return None
    return AutoBitLinear


def fwd_bwd(layer: nn.Module, x: torch.Tensor, g: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        layer(x).backward(g)
        layer.weight.grad = None
        x.grad = None

    return run


def check_hf(ours: BitLinear, hf: nn.Module, x: torch.Tensor, g: torch.Tensor) -> str:
    """Outputs and gradients of the two layers on the same input and weight; raises if they disagree."""
    xa, xb = x.detach().clone().requires_grad_(), x.detach().clone().requires_grad_()
    ya, yb = ours(xa), hf(xb)
    ya.backward(g)
    yb.backward(g)
    scale = ya.abs().max().item()
    diffs = {
        "out": (ya - yb).abs().max().item() / scale,
        "dx": (xa.grad - xb.grad).abs().max().item() / xa.grad.abs().max().item(),
        "dw": (ours.weight.grad - hf.weight.grad).abs().max().item() / ours.weight.grad.abs().max().item(),
    }
    ours.weight.grad = hf.weight.grad = None
    worst = max(diffs.values())
    if worst > 2e-2:  # a rounding flip moves one 8-bit step (1/127 of a row's max); more is a real difference
        raise SystemExit(f"HF AutoBitLinear disagrees with BitLinear: {diffs}")
    return ", ".join(f"{k} {v:.1e}" for k, v in diffs.items())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 512, 768, 1024])
    p.add_argument("--tokens", type=int, default=16 * 128, help="rows of the input: batch x context")
    p.add_argument("--reps", type=int, default=5, help="timed forward+backward per contender per shape")
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--no-hf", action="store_true", help="leave Hugging Face's layer out even if installed")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    AutoBitLinear = None if args.no_hf else hf_layer_class()
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, tokens {args.tokens}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if AutoBitLinear is None and not args.no_hf:
        print("transformers is not installed (pip install -e '.[bench]'): the Hugging Face comparison is skipped")
    else:
        import transformers

        # HF's quantisers are compiled functions; 12 weight shapes would pass dynamo's default limit of 8
        # recompiles and leave the later shapes running eagerly.
        dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 64)
        print(f"transformers {transformers.__version__}: AutoBitLinear(online_quant=True, use_rms_norm=True); its "
              "quantisers are torch.compile'd, so its first call per shape compiles (not timed)")

    vs_linear: list[float] = []
    vs_hf: list[float] = []
    print(f"{'shape':>22} {'BitLinear ms':>13} {'Linear ms':>10} {'HF ms':>8} {'Bit/Lin':>8} {'Bit/HF':>7}  (median)")
    for h in args.hidden:
        ffn = ModelConfig(hidden=h).ffn
        for name, fin, fout in (("qkvo", h, h), ("gate/up", h, ffn), ("down", ffn, h)):
            torch.manual_seed(0)
            x = torch.randn(args.tokens, fin, device=device, requires_grad=True)
            g = torch.randn(args.tokens, fout, device=device)
            ours = BitLinear(fin, fout).to(device)
            lin = nn.Linear(fin, fout, bias=False).to(device)
            lin.weight.data.copy_(ours.weight.data)
            runs = {"bit": fwd_bwd(ours, x, g), "lin": fwd_bwd(lin, x, g)}
            note = ""
            if AutoBitLinear is not None:
                hf = AutoBitLinear(fin, fout, bias=False, online_quant=True, use_rms_norm=True,
                                   rms_norm_eps=ours.eps).to(device)
                hf.weight.data.copy_(ours.weight.data)
                t0 = time.perf_counter()
                note = check_hf(ours, hf, x, g)  # the first call also compiles HF's quantisers
                note += f"; first HF call {time.perf_counter() - t0:.1f} s"
                runs["hf"] = fwd_bwd(hf, x, g)
            for run in runs.values():
                run()
            times: dict[str, list[float]] = {k: [] for k in runs}
            for _ in range(args.reps):
                for k, run in runs.items():
                    sync(device)
                    t0 = time.perf_counter()
                    run()
                    sync(device)
                    times[k].append(time.perf_counter() - t0)
            best = {k: min(v) for k, v in times.items()}
            med = {k: statistics.median(v) for k, v in times.items()}
            r_lin = best["bit"] / best["lin"]
            vs_linear.append(r_lin)
            hf_ms = f"{best['hf'] * 1e3:8.1f}" if "hf" in best else f"{'-':>8}"
            r_hf = f"{best['bit'] / best['hf']:7.2f}" if "hf" in best else f"{'-':>7}"
            if "hf" in best:
                vs_hf.append(best["bit"] / best["hf"])
            print(f"{name:>8} {fin:>5}x{fout:<6}  {best['bit'] * 1e3:13.1f} {best['lin'] * 1e3:10.1f} {hf_ms} "
                  f"{r_lin:8.2f} {r_hf}  ({med['bit'] * 1e3:.1f} / {med['lin'] * 1e3:.1f}"
                  + (f" / {med['hf'] * 1e3:.1f})" if "hf" in med else ")"))
            if note:
                print(f"{'':>10}HF check (max |diff| / max |value|): {note}")
    last = f"BitLinear/nn.Linear fwd+bwd worst {max(vs_linear):.2f} (best {min(vs_linear):.2f})"
    if vs_hf:
        last += f"; BitLinear/HF AutoBitLinear worst {max(vs_hf):.2f} (best {min(vs_hf):.2f})"
    else:
        why = "--no-hf" if args.no_hf else "transformers not installed or without online_quant"
        last += f"; HF AutoBitLinear not measured ({why})"
    print(last + f" over {len(vs_linear)} shapes")


if __name__ == "__main__":
    main()
