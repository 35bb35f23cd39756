"""Lightning: :class:`MonitorCallback` puts a bitnet-tui Monitor inside ``lightning.pytorch.Trainer.fit()``.

::

    from bitnet_tui.integrations.lightning import MonitorCallback

    trainer = L.Trainer(max_steps=2000, callbacks=[MonitorCallback(prompts=prompt_ids, decode=tok.decode,
                                                                   val_batches=held_out, sessions_dir="sessions")])
    trainer.fit(lit_module, train_loader)   # bitnet-tui attach latest / ctl latest set-lr 5e-4 meanwhile

``on_train_batch_end`` comes after the optimizer step (``trainer.global_step`` already counts it), with the
step's loss in ``outputs["loss"]``; with ``accumulate_grad_batches=n`` it fires on every micro-batch with the
loss divided by ``n``, so the callback adds those up and feeds the Monitor once per optimizer step. The
Monitor's LR hooks sit on ``trainer.optimizers[0]``, a plain ``torch.optim`` optimizer. A stop command sets
``trainer.should_stop``; an exception in ``fit`` ends the log with the error (``on_exception``).

Evals run the model's ``forward`` on token ids (it must return logits, a tuple starting with them, or an
object with ``.logits``); pass ``model=`` when the LightningModule wraps the network instead of being it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

try:
    import lightning.pytorch as pl
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(f"bitnet_tui.integrations.lightning needs lightning ({e}): "
                      "pip install 'bitnet-tui[lightning]'") from None

from bitnet_tui.instrument.config import TrainerFacts
from bitnet_tui.instrument.monitor import Monitor
from bitnet_tui.integrations._common import LogClaim, first_lr, merged, monitor_options, plain, to_device


class MonitorCallback(pl.Callback):
    """A Monitor for the length of one ``Trainer.fit()``.

    ``model``: the network to evaluate and whose ternary layers to watch (default: the LightningModule).
    ``prompts``, ``decode``, ``val_batches`` and the rest as for :class:`~bitnet_tui.instrument.monitor.Monitor`;
    batches are moved to the model's device. ``config`` is laid over what the callback records of the Trainer
    and the module's ``hparams``. Other keywords go to the Monitor. :attr:`session_path` is the log, known before
    ``fit()`` (reading it creates the file the next ``fit()`` writes, named after ``run_name``, or ``lightning``
    when none is given); after it, :attr:`monitor` holds the Monitor.
    """

    def __init__(self, *, model: torch.nn.Module | None = None, prompts: Any = None,
                 decode: Callable[[list[int]], str] | None = None, token_text: Callable[[int], str] | None = None,
                 val_batches: Sequence[Any] = (), loss_fn: Callable | None = None, sessions_dir: str | None = None,
                 run_name: str | None = None, config: Mapping[str, Any] | None = None, eval_every: int = 100,
                 **monitor_kwargs: Any) -> None:
        self.model = model
        self.prompts, self.decode, self.token_text = prompts, decode, token_text
        self.val_batches, self.loss_fn = list(val_batches), loss_fn
        self.sessions_dir, self.run_name, self.config = sessions_dir, run_name, config
        self.eval_every, self.monitor_kwargs = eval_every, monitor_kwargs
        monitor_options(monitor_kwargs)  # a wrong keyword fails here, at the call
        self.monitor: Monitor | None = None
        self._claim = LogClaim(monitor_kwargs.get("session_path"), sessions_dir, run_name, "lightning")
        self._step = 0
        self._loss: torch.Tensor | None = None
        self._warned = False

    @property
    def session_path(self) -> Path | None:
        """The session log: the running (or last) ``fit()``'s, else the one the next ``fit()`` writes, created on
        this read; None on a rank other than 0."""
        if self.monitor is not None and self.monitor.session_path is not None:
            return self.monitor.session_path
        return self._claim.path()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        net = self.model if self.model is not None else pl_module
        opt = trainer.optimizers[0] if trainer.optimizers else None
        device = next(iter(net.parameters())).device
        total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else _estimated(trainer)
        claimed = self._claim.take()
        options = monitor_options(self.monitor_kwargs, total_steps=total, token_text=self.token_text,
                                  loss_fn=self.loss_fn, **({"session_path": claimed} if claimed else {}))
        self.monitor = Monitor(
            net, opt, decode=self.decode, prompts=self.prompts, val_batches=to_device(self.val_batches, device),
            sessions_dir=self.sessions_dir, run_name=self.run_name or type(pl_module).__name__,
            config=merged(_config(trainer, pl_module, opt, options.total_steps), self.config),
            eval_every=self.eval_every, options=options,
            facts=TrainerFacts(start_step=trainer.global_step, source="lightning.Trainer"))
        self._step, self._loss = trainer.global_step, None
        self.monitor.start()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        mon = self.monitor
        if mon is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor):
            loss = loss.detach()
            self._loss = loss if self._loss is None else self._loss + loss
        if trainer.global_step == self._step:
            return  # a micro-batch of an accumulation: no optimizer step yet
        self._step = trainer.global_step
        step_loss, self._loss = self._loss, None
        if step_loss is None:
            if not self._warned:
                self._warned = True
                warnings.warn("MonitorCallback: training_step returned no loss, so the Monitor skips those steps",
                              stacklevel=2)
            return
        mon.step(step_loss)
        if mon.should_stop:
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.monitor is not None:
            self.monitor.close(self.monitor.steering.stop_reason or "finished")

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if self.monitor is not None:
            self.monitor.close_for(exception)


def _estimated(trainer: pl.Trainer) -> int | None:
    try:
        n = trainer.estimated_stepping_batches
    except Exception:  # no dataloader length (an iterable dataset) and no max_steps
        return None
    return int(n) if isinstance(n, (int, float)) and math.isfinite(n) and n > 0 else None


def _config(trainer: pl.Trainer, pl_module: pl.LightningModule, opt: Any, total: int | None) -> dict[str, Any]:
    """What the session header records: the knobs in bitnet-tui's names, the Trainer's settings and the
    module's ``hparams``."""
    train = {"lr": first_lr(opt), "optimizer": type(opt).__name__ if opt is not None else None, "steps": total,
             "grad_clip": trainer.gradient_clip_val, "grad_accum": trainer.accumulate_grad_batches,
             "precision": str(trainer.precision), "max_epochs": trainer.max_epochs}
    out: dict[str, Any] = {"train": plain(train)}
    hp = getattr(pl_module, "hparams", None)
    if hp:
        out["hparams"] = plain(dict(hp))
    return out
