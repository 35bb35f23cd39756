"""Step figures, read back from the device every ``log_every`` steps: no host sync in between.

``Monitor.step(loss)`` keeps the loss (a tensor stays on its device) with the LR the optimizer used, the
weight decay and the wall time; :meth:`Readback.flush` reads all kept values in one transfer, averages the
loss across ranks, and emits one ``step`` event per step. A non-finite loss raises an alert and pauses (or
stops) the run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from bitnet_tui.instrument.dist import World
from bitnet_tui.session.log.events import Event, StepDone


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
    """Keeps each step's figures until the next read-back, then emits them as ``step`` events (rank 0).

    ``applied_lr``: the LR the optimizer used this step (None: the loop's ``lr=`` metric, if any);
    ``weight_decay``: the first param group's decay now; ``flops``: (FLOPs per token, peak FLOP/s) for MFU;
    ``on_nonfinite(step, loss, grad_norm, lr)``: called after a non-finite loss's step event; ``watch(event)``: the
    alerts a step event raises (the disease rules: loss spikes, quantisation shock), emitted after it."""

    def __init__(self, emit: Callable[[Event], None], world: World, *, applied_lr: Callable[[], float | None],
                 weight_decay: Callable[[], float], device: torch.device, log_every: int,
                 flops: tuple[float | None, float | None],
                 on_nonfinite: Callable[[int, float, float, float], None],
                 watch: Callable[[Event], list[Any]] | None = None) -> None:
        self.watch = watch
        self.emit, self.world, self.device = emit, world, device
        self.applied_lr, self.weight_decay, self.on_nonfinite = applied_lr, weight_decay, on_nonfinite
        self.flops_per_token, self.peak_flops = flops
        self.log_every = max(1, int(log_every))
        self.pending: list[_Pending] = []
        self._last = time.perf_counter()

    def restart_clock(self) -> None:
        """Training starts now: the first step's rate must not count the setup and the step-0 eval."""
        self._last = time.perf_counter()

    def leave_out(self, seconds: float) -> None:
        """``seconds`` were spent paused: the next step's time (and its tok/s) must not count them."""
        self._last += max(0.0, seconds)

    def add(self, step: int, loss: Any, grad_norm: Any, tokens: int | None, stage: int,
            metrics: dict[str, float]) -> None:
        now = time.perf_counter()
        dt, self._last = now - self._last, now
        applied = self.applied_lr()
        lr = applied if applied is not None else metrics.pop("lr", math.nan)
        wd = self.weight_decay()
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
        losses, spreads = self.world.gather_steps(losses, [p.lr for p in batch])
        if not self.world.main:
            return
        mem = None
        if self.device.type == "cuda":
            mem = torch.cuda.max_memory_allocated(self.device) / 2**20
            torch.cuda.reset_peak_memory_stats(self.device)
        for p, loss, gn, spread, extra in zip(batch, losses, norms, spreads, extras):
            tps = p.tokens / p.dt if p.tokens and p.dt > 0 else None
            mfu = tps * self.flops_per_token / self.peak_flops if tps and self.flops_per_token and self.peak_flops \
                else None
            ev = StepDone(step=p.step, time=p.time, loss=loss, lr=p.lr, weight_decay=p.weight_decay,
                          grad_norm=None if p.grad_norm is None else gn, tokens_per_s=tps, stage=p.stage,
                          lr_spread=spread if self.world.active else None, mfu=mfu, peak_mem_mb=mem, extra=extra)
            self.emit(ev)
            for alert in self.watch(ev) if self.watch is not None else ():
                self.emit(alert)
            if not math.isfinite(loss):
                self.on_nonfinite(p.step, loss, gn, p.lr)


def first_group_wd(optimizer: Any) -> float:
    """The weight decay of an optimizer's first param group now (0 without one)."""
    groups = getattr(getattr(optimizer, "optimizer", optimizer), "param_groups", None) or [{}]
    return float(groups[0].get("weight_decay", 0.0) or 0.0)
