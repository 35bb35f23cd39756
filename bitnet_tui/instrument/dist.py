"""One voice for many processes: what the Monitor does differently under ``torch.distributed``.

Rank 0 writes the session log, serves the control socket and runs evals; the other ranks wait at a barrier
meanwhile, so evals never skew DDP. Commands rank 0 received are broadcast to every rank at the step
boundary, so every rank applies the same LR, pause, stop and checkpoint at the same step. Each read-back
of the loss is one small ``all_gather`` of every rank's losses and LRs (the log records their mean and the
LR's spread); each step boundary broadcasts rank 0's command count, and the commands only when there are
some: ``bench/distributed.py`` measures the cost.
Nothing here starts processes or process groups: that is ``torch.distributed.run`` and the user's job.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import torch


class RankFailed(RuntimeError):
    """A collective failed: another rank died or hung up."""


def peer_failure(e: BaseException) -> bool:
    """An exception from a collective whose peer is gone (inside DDP's backward as well as our own calls)."""
    dist = torch.distributed
    kinds = tuple(k for k in (getattr(dist, "DistBackendError", None), getattr(dist, "DistNetworkError", None),
                              getattr(dist, "DistError", None)) if k is not None)
    if kinds and isinstance(e, kinds):
        return True
    text = str(e).lower()
    return isinstance(e, RuntimeError) and any(w in text for w in ("gloo", "nccl", "connection closed", "peer"))


@dataclass
class World:
    rank: int = 0
    size: int = 1
    backend: str = ""

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    @classmethod
    def detect(cls) -> World:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), str(dist.get_backend()))
        return cls()

    def describe(self, device: Any) -> dict[str, Any]:
        if not self.active:
            return {}
        return {"size": self.size, "backend": self.backend, "devices": str(device), "launcher":
                "torchrun" if torch.distributed.is_torchelastic_launched() else "other"}

    def _device(self) -> torch.device:
        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def gather_steps(self, losses: list[float], lrs: list[float]) -> tuple[list[float], list[float]]:
        """Per logged step: the loss averaged across ranks and the spread (max - min) of the LR across ranks."""
        if not self.active:
            return losses, [0.0] * len(lrs)
        mine = torch.tensor([losses, lrs], dtype=torch.float64, device=self._device())
        out = [torch.empty_like(mine) for _ in range(self.size)]
        self._collective(torch.distributed.all_gather, out, mine)
        t = torch.stack(out).cpu()  # (ranks, 2, steps)
        return t[:, 0].mean(0).tolist(), (t[:, 1].max(0).values - t[:, 1].min(0).values).tolist()

    def share(self, items: list[Any], paused: bool, stopped: bool) -> tuple[list[Any], bool, bool]:
        """Rank 0's commands and run state on every rank: three numbers broadcast each time (command count,
        paused, stopped), the commands themselves only when there are some (``bench/distributed.py``)."""
        if not self.active:
            return items, paused, stopped
        head = torch.tensor([len(items), int(paused), int(stopped)], dtype=torch.int64, device=self._device())
        self._collective(torch.distributed.broadcast, head, src=0)
        n, p, s = (int(x) for x in head.tolist())
        return (self.broadcast(items) if n else []), bool(p), bool(s)

    def _collective(self, fn: Any, *args: Any, **kw: Any) -> None:
        try:
            fn(*args, **kw)
        except Exception as e:  # gloo/NCCL raise RuntimeError subclasses when a peer is gone
            raise RankFailed(f"a rank stopped responding ({type(e).__name__}: {str(e).splitlines()[0][:200]})") \
                from None

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        self._collective(torch.distributed.broadcast_object_list, box, src=0, device=self._device())
        return box[0]

    def barrier(self) -> None:
        if self.active:
            self._collective(torch.distributed.barrier)


DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)
