"""bitnet-tui's own training loop: a BitNet b1.58 model on a corpus, instrumented by a Monitor like any loop.

:class:`Trainer` is the training step and nothing else: data, model, optimizer, the FAQ's schedule written
into the optimizer before each step, the backward pass and the update. Everything else (the session log,
evals, weight snapshots, the detector, commands, checkpoints, the control socket) is the
:class:`~bitnet_model.monitor.monitor.Monitor` it calls after each step, exactly as a user's loop would.
It runs in whichever thread calls :meth:`Trainer.run`. Under ``torch.distributed`` (``--nproc``), every rank
runs one Trainer on its own shard of the data, wrapped in DDP; the Monitor gives them one voice.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bitnet_model.errors import ConfigError
from bitnet_model.log.events import RunEnded
from bitnet_model.monitor.dist import RankFailed, World
from bitnet_model.monitor.monitor import Monitor
from bitnet_model.nn.device import check_memory, peak_flops, resolve_device, resolve_precision
from bitnet_model.nn.model import BitNetLM
from bitnet_model.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from bitnet_model.train.config import RunConfig
from bitnet_model.train.optim import build_optimizer
from bitnet_model.train.schedule import lr_at, stage_at, wd_at


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
        self.world = World.detect()
        if self.world.backend == "nccl":
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.total_steps = cfg.train.steps
        self.monitor: Monitor | None = None
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
        if self.world.active:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        self.batches = self.data.batches(t.batch_size, t.seed, rank=self.world.rank, world=self.world.size)
        self.val_batches = [(x.to(self.device), y.to(self.device))
                            for x, y in self.data.val_batches(t.batch_size, cfg.diag.eval_batches)]
        self.prompts = torch.tensor(self.data.eval_prompts(cfg.diag.eval_prompts, cfg.diag.prompt_tokens),
                                    dtype=torch.long, device=self.device)
        if self.init_from is not None:
            self._loaded = load_checkpoint(self.init_from, map_location=self.device)
            self._load_weights(self._loaded)
        self._ready = True

    def attach_monitor(self, session_path: str | Path | None, *, control: bool = False, checkpoint_every: int = 0,
                       keep_checkpoints: int = 3, tensorboard: str | None = None) -> Monitor:
        """Build the Monitor that will write ``session_path`` (rank 0) and serve its control socket."""
        self.setup()
        cfg, d = self.cfg, self.cfg.diag
        log_every = cfg.train.log_every or (10 if self.device.type == "cuda" else 1)
        mon = Monitor(
            self.net, self.optimizer, decode=self.data.decode, token_text=self.data.token_text, prompts=self.prompts,
            val_batches=self.val_batches, session_path=session_path, run_name=self.run_name, config=self._recorded(),
            eval_every=d.eval_every, weights_every=d.weights_every, gen_tokens=d.gen_tokens, save=self.checkpoint,
            checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints, checkpoint_suffix=".pt",
            control=control, vocab_size=cfg.model.vocab_size, unigram=self.data.unigram_counts(cfg.model.vocab_size),
            detector=d.detector, total_steps=self.total_steps, report_metric=d.report_metric,
            on_nonfinite=self.on_nonfinite, log_every=log_every, tensorboard=tensorboard, parent=self.parent,
            source="bitnet-tui run", argv=self.argv, context=cfg.model.context,
            header={"corpus": dict(self.data.corpus_info), "tokenizer": dict(self.data.tokenizer_info)},
            audit={"peak_lr": cfg.train.peak_lr, "hidden": cfg.model.hidden, "schedule": cfg.train.schedule},
            flops_per_token=self.model.flops_per_token(), peak_flops=peak_flops(self.device),
            start_step=int(self._loaded["step"]) if self._loaded else 0)
        if self._loaded is not None:
            mon.load_state_dict(self._loaded.get("monitor", {"step": int(self._loaded["step"])}))
        self.monitor = mon
        return mon

    def _recorded(self) -> dict[str, Any]:
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
            same_world = ck.get("world", 1) == self.world.size and self.world.rank == 0
            if same_world:
                self.batches.load_state_dict(ck["batches"])
                torch.set_rng_state(ck["torch_rng"])
            else:  # another world size: every rank starts a fresh, seeded order on its shard
                self.batches.reseed(int(ck["step"]))
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{self.init_from} does not fit this run ({type(e).__name__}: "
                                  f"{str(e).splitlines()[0][:160]})") from None

    def checkpoint(self, path: Path) -> Path:
        """The Monitor's ``save``: everything needed to continue bit for bit (on one process)."""
        mon = self.monitor
        return save_checkpoint(path, {
            "step": mon.step_count if mon else 0, "config": self.cfg.to_dict(), "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "batches": self.batches.state_dict(),
            "monitor": mon.state_dict() if mon else {}, "torch_rng": torch.get_rng_state(),
            "run_name": self.run_name, "world": self.world.size,
        })

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> RunEnded:
        """Train to the end or until stopped. Never raises for a training failure: it ends the run with an
        ``error`` RunEnded (and keeps the exception in ``self.error``)."""
        mon = self.monitor
        try:
            if mon is None:
                mon = self.attach_monitor(None)
            mon.start()
            self._loop(mon)
            end = mon.close_for(None)
        except Exception as e:
            self.error = e
            if mon is not None and mon._started:
                end = mon.close_for(e)
            else:  # before the log had a header
                failed = isinstance(e, RankFailed)
                end = RunEnded(step=0, time=time.time(), reason="rank_failed" if failed else "error",
                               error=str(e) if failed else f"{type(e).__name__}: {e}"[:2000])
        self.last_end = end
        return end

    def _loop(self, mon: Monitor) -> None:
        t = self.cfg.train
        tokens = t.batch_size * self.cfg.model.context * self.world.size
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        clip = t.grad_clip if t.grad_clip > 0 else math.inf
        check_each_step = mon.readback.log_every == 1
        autocast = _autocast(self.device, t.precision)
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
            if check_each_step and not (math.isfinite(loss.item()) and math.isfinite(gnorm.item())):
                mon.lr.observe(lr)  # the update is skipped: the weights stay finite
                mon.lr.applied = lr * mon.lr.factor()
            else:
                self.optimizer.step()
            mon.step(loss, grad_norm=gnorm, tokens=tokens, stage=stage_at(s, t))


def _autocast(device: torch.device, precision: str) -> Any:
    if resolve_precision(device, precision) != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def with_overrides(cfg: RunConfig, **train: Any) -> RunConfig:
    """A copy of ``cfg`` with some TrainConfig fields replaced (e.g. a fork at a new LR)."""
    from dataclasses import replace

    return replace(cfg, train=replace(cfg.train, **train))
