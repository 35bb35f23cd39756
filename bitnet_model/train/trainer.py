"""Our way of training a BitNet b1.58 model on a corpus: a loop that calls a monitor like any user's loop.

:class:`Trainer` is the training step and nothing else: data, model, optimizer, the FAQ's schedule written
into the optimizer before each step, the backward pass and the update. Everything else (the session log,
evals, weight snapshots, the detector, commands, checkpoints, the control socket) is the monitor given to it
(bitnet-tui's ``Monitor``, built by ``bitnet_tui.instrument.for_trainer.monitor_for``), which it calls after
each step, exactly as a user's loop would; this package never imports it (:class:`LoopMonitor` is all the
loop needs of it).
It runs in whichever thread calls :meth:`Trainer.run`. Under ``torch.distributed`` (``--nproc``), every rank
runs one Trainer on its own shard of the data, wrapped in DDP; the Monitor gives them one voice.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from bitnet_model.nn.device import check_memory, resolve_device, resolve_precision
from bitnet_model.nn.model import BitNetLM
from bitnet_model.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from bitnet_model.train.config import RunConfig
from bitnet_model.train.distributed import rank_and_size
from bitnet_model.train.guard import step_if_finite
from bitnet_model.train.optim import build_optimizer
from bitnet_model.train.schedule import lr_at, stage_at, wd_at
from bitnet_tui.session.errors import ConfigError
from bitnet_tui.session.log.events import RunEnded


class LoopMonitor(Protocol):
    """What the loop needs of its monitor: the step count, the step call, the stop flag, the end, its state."""

    step_count: int

    @property
    def should_stop(self) -> bool: ...

    def start(self) -> None: ...

    def step(self, loss: Any, *, grad_norm: Any = None, tokens: int | None = None, stage: int = 1) -> None: ...

    def close_for(self, exc: BaseException | None) -> RunEnded: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, d: dict[str, Any]) -> None: ...


class Trainer:
    """Trains one BitNet b1.58 (or full-precision control) language model; its Monitor narrates it.

    ``init_from``: a checkpoint to continue from (resume, or fork with changed knobs).
    ``on_nonfinite``: "pause" (a person can lower the LR and resume) or "stop" (nobody is there).
    """

    def __init__(self, cfg: RunConfig, *, run_name: str = "run", argv: Sequence[str] = (),
                 parent: dict[str, Any] | None = None, init_from: str | Path | None = None,
                 on_nonfinite: str = "pause") -> None:
        self.cfg = cfg
        self.run_name = run_name
        self.argv = tuple(argv)
        self.parent = parent
        self.init_from = Path(init_from) if init_from else None
        self.on_nonfinite = on_nonfinite
        self.device = resolve_device(cfg.train.device)
        self.rank, self.world_size, backend = rank_and_size()
        if backend == "nccl":
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.total_steps = cfg.train.steps
        self.monitor: LoopMonitor | None = None
        """The run's monitor; set before :meth:`run` (``monitor_for``)."""
        self.error: BaseException | None = None
        self.last_end: RunEnded | None = None
        self._ready = False
        self._loaded: dict[str, Any] | None = None

    # -- setup ---------------------------------------------------------------------------
    def setup(self) -> None:
        """Load data, build model and optimizer (seeded), and read ``init_from``. Idempotent; no log yet."""
        if self._ready:
            return
        from bitnet_model.data.dataset import load_data

        cfg, t = self.cfg, self.cfg.train
        check_memory(cfg, self.device)  # before the data: a model that cannot fit is one line, at once
        torch.manual_seed(t.seed)
        self.data = load_data(cfg.data, cfg.model.vocab_size, cfg.model.context, t.seed)
        if self.data.vocab_size > cfg.model.vocab_size:
            raise ConfigError(f"the tokenizer has {self.data.vocab_size} tokens but vocab_size is "
                              f"{cfg.model.vocab_size}; raise --vocab-size")
        self.model = BitNetLM(cfg.model).to(self.device)
        if t.compile:
            self.model.compile()  # in place: state_dict keys and the model's methods stay as they are
        self.optimizer = build_optimizer(self.model, t, lr_at(0, t), self.device)
        self.net = self.model
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        self.batches = self.data.batches(t.batch_size, t.seed, rank=self.rank, world=self.world_size)
        self.val_batches = [(x.to(self.device), y.to(self.device))
                            for x, y in self.data.val_batches(t.batch_size, cfg.diag.eval_batches)]
        self.prompts = torch.tensor(self.data.eval_prompts(cfg.diag.eval_prompts, cfg.diag.prompt_tokens),
                                    dtype=torch.long, device=self.device)
        if self.init_from is not None:
            self._loaded = load_checkpoint(self.init_from, map_location=self.device)
            self._load_weights(self._loaded)
        self._ready = True

    @property
    def loaded_step(self) -> int:
        """The step of the checkpoint this run continues from (0 for a fresh run)."""
        return int(self._loaded["step"]) if self._loaded else 0

    @property
    def loaded_monitor_state(self) -> dict[str, Any] | None:
        """The monitor's state saved with that checkpoint (None for a fresh run)."""
        if self._loaded is None:
            return None
        return self._loaded.get("monitor", {"step": self.loaded_step})

    def forked_lr(self) -> float | None:
        """The new peak LR of a fork that changed it (the parent's LR rules then no longer apply), else None."""
        if self._loaded is None or not self.parent or self.parent.get("relation") != "fork":
            return None
        try:
            before = RunConfig.from_dict(self._loaded["config"]).train.peak_lr
        except (KeyError, TypeError, ValueError, ConfigError):
            before = None
        return self.cfg.train.peak_lr if before != self.cfg.train.peak_lr else None

    def recorded(self) -> dict[str, Any]:
        """The configuration as the header records it: ``precision`` as resolved on this device."""
        conf = self.cfg.to_dict()
        conf["train"]["precision"] = resolve_precision(self.device, self.cfg.train.precision)
        return conf

    def _load_weights(self, ck: dict[str, Any]) -> None:
        saved = RunConfig.from_dict(ck["config"])
        if saved.model != self.cfg.model:
            raise CheckpointError(f"{self.init_from} holds a different model ({saved.model.hidden} hidden, "
                                  f"{saved.model.layers} layers) from this run's")
        try:
            self.model.load_state_dict(ck["model"])
            if saved.train.optimizer == self.cfg.train.optimizer and saved.train.decay_all == self.cfg.train.decay_all:
                self.optimizer.load_state_dict(ck["optimizer"])
            same_world = ck.get("world", 1) == self.world_size and self.rank == 0
            if same_world:
                self.batches.load_state_dict(ck["batches"])
                torch.set_rng_state(ck["torch_rng"])
            else:  # another world size: every rank starts a fresh, seeded order on its shard
                self.batches.reseed(int(ck["step"]))
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{self.init_from} does not fit this run ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0][:160]})") from None

    def autocast(self) -> Any:
        """The context the training step's forward runs in: bf16 autocast under ``--precision bf16`` (or ``auto``
        where bf16 is native), else none."""
        return _autocast(self.device, self.cfg.train.precision)

    def checkpoint(self, path: Path) -> Path:
        """The Monitor's ``save``: everything needed to continue bit for bit (on one process)."""
        mon = self.monitor
        return save_checkpoint(path, {
            "step": mon.step_count if mon else 0, "config": self.cfg.to_dict(), "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "batches": self.batches.state_dict(),
            "monitor": mon.state_dict() if mon else {}, "torch_rng": torch.get_rng_state(),
            "run_name": self.run_name, "world": self.world_size,
        })

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> RunEnded:
        """Train to the end or until stopped. Never raises for a training failure: it ends the run with an
        ``error`` RunEnded (and keeps the exception in ``self.error``)."""
        mon = self.monitor
        if mon is None:
            raise RuntimeError("Trainer.run needs its monitor: set trainer.monitor (monitor_for) first")
        try:
            mon.start()
            self._loop(mon)
            end = mon.close_for(None)
        except Exception as e:
            self.error = e
            end = mon.close_for(e)
        self.last_end = end
        return end

    def _loop(self, mon: LoopMonitor) -> None:
        t = self.cfg.train
        tokens = t.batch_size * self.cfg.model.context * self.world_size
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        clip = t.grad_clip if t.grad_clip > 0 else math.inf
        autocast = self.autocast()
        self.net.train()
        while mon.step_count < self.total_steps and not mon.should_stop:
            s = mon.step_count
            lr, wd = lr_at(s, t), wd_at(s, t)
            for g in self.optimizer.param_groups:
                g["lr"] = lr
            self.optimizer.param_groups[0]["weight_decay"] = wd
            x, y = next(self.batches)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            with autocast:
                _, loss = self.net(x, y, label_smoothing=t.label_smoothing)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(params, clip)
            step_if_finite(self.optimizer, loss, gnorm)  # a non-finite loss never reaches the weights
            mon.step(loss, grad_norm=gnorm, tokens=tokens, stage=stage_at(s, t))


def _autocast(device: torch.device, precision: str) -> Any:
    if resolve_precision(device, precision) != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def with_overrides(cfg: RunConfig, **train: Any) -> RunConfig:
    """A copy of ``cfg`` with some TrainConfig fields replaced (e.g. a fork at a new LR)."""
    from dataclasses import replace

    return replace(cfg, train=replace(cfg.train, **train))
