"""Where tensors run: the device a run asks for, and how many CPU threads small work gets."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch

from bitnet_tui.session.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """"auto" (CUDA if present, else CPU), "cpu", "cuda", "cuda:N" or "mps"; ConfigError if it is not here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name} was asked for but CUDA is not available here")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device mps was asked for but MPS is not available here")
    return dev


@contextlib.contextmanager
def one_thread_on_cpu(device: torch.device | str) -> Iterator[None]:
    """Run the block on one intra-op thread when ``device`` is a CPU, then restore the thread count.

    For work made of many small ops (greedy decoding, per-layer statistics): one thread is as fast there,
    and on a CPU shared with other jobs it never waits on a descheduled partner thread at every op.
    """
    if torch.device(device).type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def native_bf16(device: torch.device | str) -> bool:
    """Whether bf16 autocast runs natively here: CUDA, or a CPU with AVX-512 BF16 or AMX tiles (where
    ``bench/train_step.py`` measured the BitNet step at 0.70x its fp32 time, with the same losses)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return True
    if dev.type != "cpu":
        return False
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):  # torch.cpu's own CPUID probes
        fn = getattr(torch.cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except RuntimeError:
            continue
    return False


def resolve_precision(device: torch.device | str, precision: str) -> str:
    """``--precision auto``: bf16 autocast where it is native (:func:`native_bf16`), else fp32."""
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


PEAK_BF16_FLOPS = {
    "H100 SXM": 989e12, "H100 NVL": 835e12, "H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12, "GH200": 989e12,
    "A100": 312e12, "L40S": 362e12, "L4": 121e12, "A10G": 70e12, "A10": 125e12, "RTX 4090": 165e12,
}
"""Dense bf16 tensor-core peaks (vendor datasheets, without sparsity), matched against the device name."""


def peak_flops(device: torch.device) -> float | None:
    """The device's dense bf16 peak in FLOP/s where it is known (CUDA cards above), else None (CPUs: see
    ``bench/train_step.py``, which measures the achieved matmul peak instead)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, flops in PEAK_BF16_FLOPS.items():
        if key in name:
            return flops
    return None


def estimated_params(m: Any) -> int:
    """Parameters of a decoder with this shape (``ModelConfig``), without building it."""
    h, f, v, layers = m.hidden, m.ffn, m.vocab_size, m.layers
    return 2 * v * h + layers * (4 * h * h + 3 * h * f + 2 * h) + h


def check_memory(cfg: Any, device: torch.device) -> None:
    """Refuse, before allocating anything, a model whose weights, gradients and Adam's two moments (16 bytes a
    parameter) would not fit in this machine's memory (or the GPU's)."""
    need = 16 * estimated_params(cfg.model)
    if device.type == "cuda":
        have = torch.cuda.get_device_properties(device).total_memory
        where = f"GPU memory ({have / 2**30:.0f} GiB)"
    else:
        try:
            have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return
        where = f"this machine's memory ({have / 2**30:.0f} GiB)"
    if need > have:
        raise ConfigError(f"a model of width {cfg.model.hidden} with {cfg.model.layers} layers needs about "
                          f"{need / 2**30:.0f} GiB for weights, gradients and optimizer state, more than {where}")
