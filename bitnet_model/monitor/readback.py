"""Step figures, read back from the device every ``log_every`` steps: no host sync in between.

``Monitor.step(loss)`` keeps the loss (a tensor stays on its device) with the LR the optimizer used, the
weight decay and the wall time; :meth:`Readback.flush` reads all kept values in one transfer, averages the
loss across ranks, and emits one ``step`` event per step. A non-finite loss raises an alert and pauses (or
stops) the run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from bitnet_model.log.events import Alert, StepDone


@dataclass
class _Pending:
    step: int
    loss: Any
    grad_norm: Any
    tokens: int | None
    stage: int
    extra: dict[str, float]
    lr: float
    weight_decay: float
    time: float
    dt: float


def _values(xs: list[Any]) -> list[float]:
    """Floats of a list of numbers and tensors, with one device transfer for all the tensors."""
    tensors = [x.detach().float().reshape(()) for x in xs if isinstance(x, torch.Tensor)]
    read = iter(torch.stack(tensors).tolist()) if tensors else iter(())
    return [next(read) if isinstance(x, torch.Tensor) else (math.nan if x is None else float(x)) for x in xs]


class Readback:
    def __init__(self, monitor: Any, log_every: int) -> None:
        self.mon = monitor
        self.log_every = max(1, int(log_every))
        self.pending: list[_Pending] = []
        self._last = time.perf_counter()
        self._peak = None

    def restart_clock(self) -> None:
        """Training starts now: the first step's rate must not count the setup and the step-0 eval."""
        self._last = time.perf_counter()

    def add(self, step: int, loss: Any, grad_norm: Any, tokens: int | None, stage: int,
            metrics: dict[str, float]) -> None:
        now = time.perf_counter()
        dt, self._last = now - self._last, now
        mon = self.mon
        lr = mon.lr.applied if mon.lr.applied is not None else metrics.pop("lr", math.nan)
        groups = getattr(getattr(mon.optimizer, "optimizer", mon.optimizer), "param_groups", None) or [{}]
        wd = float(groups[0].get("weight_decay", 0.0) or 0.0)
        if isinstance(loss, torch.Tensor):
            loss = loss.detach()
        self.pending.append(_Pending(step, loss, grad_norm, tokens, stage, dict(metrics), float(lr), wd,
                                     time.time(), dt))

    def due(self) -> bool:
        return len(self.pending) >= self.log_every

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        losses = _values([p.loss for p in batch])
        norms = _values([p.grad_norm for p in batch])
        extras = [{k: v for k, v in zip(p.extra, _values(list(p.extra.values())))} for p in batch]
        mon = self.mon
        losses, spreads = mon.world.gather_steps(losses, [p.lr for p in batch])
        if not mon.world.main:
            return
        mem = None
        if mon.device.type == "cuda":
            mem = torch.cuda.max_memory_allocated(mon.device) / 2**20
            torch.cuda.reset_peak_memory_stats(mon.device)
        for p, loss, gn, spread, extra in zip(batch, losses, norms, spreads, extras):
            tps = p.tokens / p.dt if p.tokens and p.dt > 0 else None
            mfu = tps * mon.flops_per_token / mon.peak_flops if tps and mon.flops_per_token and mon.peak_flops \
                else None
            mon.emit(StepDone(step=p.step, time=p.time, loss=loss, lr=p.lr, weight_decay=p.weight_decay,
                              grad_norm=None if p.grad_norm is None else gn, tokens_per_s=tps, stage=p.stage,
                              lr_spread=spread if mon.world.active else None, mfu=mfu, peak_mem_mb=mem,
                              extra=extra))
            if not math.isfinite(loss):
                self._nonfinite(p.step, loss, gn, p.lr)

    def _nonfinite(self, step: int, loss: float, gn: float, lr: float) -> None:
        mon = self.mon
        stop = mon.on_nonfinite == "stop"
        what = "stopping" if stop else "paused; lower the LR and resume"
        mon.emit(Alert(step=step, time=time.time(), level="error", code="nonfinite",
                       message=f"non-finite loss {loss} (grad norm {gn}) at LR {lr:.3g}: training is {what}"))
        if stop:
            if mon.steering.stop_reason is None:
                mon.steering.stop_reason = "nonfinite"
        else:
            mon.steering.pause_by("auto: non-finite loss")
