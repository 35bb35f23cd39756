"""Joining the process group a launcher prepared: ``torchrun`` (or ``run --nproc``) sets the environment.

No process-group or launcher code of our own: this only calls ``torch.distributed.init_process_group`` with
the backend that fits the device (NCCL on CUDA, gloo on CPU) when ``WORLD_SIZE`` says there is a group, and
always destroys it at the end (a gloo worker that exits without doing so can abort at exit).
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator


def launched() -> bool:
    """This process is one rank of a group a launcher started."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


@contextlib.contextmanager
def joined(device: str | None) -> Iterator[None]:
    """Inside: this process is in the group (when launched as one rank of several); on the way out it leaves."""
    if not launched():
        yield
        return
    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available() and (device or "auto") != "cpu"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield
    finally:
        gc.collect()  # what held gloo work (DDP's reducer in a cycle) goes first: freed after the group, it can abort
        if dist.is_initialized():
            dist.destroy_process_group()


def rank_and_size() -> tuple[int, int, str]:
    """This process's rank, the group's size and its backend (0, 1, "" outside a group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), str(dist.get_backend())
    return 0, 1, ""
