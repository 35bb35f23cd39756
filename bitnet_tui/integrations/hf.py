"""Hugging Face ``transformers.Trainer``: :class:`MonitorCallback` puts a bitnet-tui Monitor inside ``train()``.

::

    from bitnet_tui.integrations.hf import MonitorCallback

    trainer = Trainer(model=model, args=args, train_dataset=train,
                      callbacks=[MonitorCallback(prompts=prompt_ids, decode=tok.decode, val_batches=held_out,
                                                 sessions_dir="sessions", eval_every=100)])
    trainer.train()        # bitnet-tui attach latest / ctl latest set-lr 5e-4 / watch latest meanwhile

Where it sits in the Trainer's optimizer step (transformers 5): ``optimizer.step()`` (the Monitor's LR hooks
act here, on the real ``torch.optim`` optimizer inside accelerate's wrapper) -> ``lr_scheduler.step()`` ->
``on_step_end`` -> the Trainer logs (every ``logging_steps``) -> ``on_log`` -> evaluate -> save -> the stop check.
The Trainer's ``logging_steps`` is left as the user set it. The step's loss is the one the model's forward
returned (a forward hook on the model, training forwards only, kept on the device: no host sync), over the
step's micro-batches as the Trainer adds them up for its own log: summed when the Trainer passed the model
``num_items_in_batch`` (the loss is then already a share of the whole step's tokens), else averaged. The Monitor
gets each step at ``on_step_end``, or at ``on_log`` on the steps the Trainer logs, to add that step's gradient
norm: evals, weight snapshots, pauses and commands happen there, and a stop command sets
``control.should_training_stop``, which the Trainer reads right after. A loss the forward does not return (a
``compute_loss`` of the user's own, label smoothing, ``compute_loss_func``) is read from the Trainer's log
instead, which then logs every step for it (said once, as a warning). The Trainer's own logged
``learning_rate`` stays its schedule's; the LR each step really used, after any command, is the session log's.
A non-finite loss reaches the Monitor as it is (the Trainer's log, with ``logging_nan_inf_filter``, shows a
running mean in its place), and so does a non-finite gradient norm on a logged step, as a NaN loss; the Monitor
alerts and pauses as it does for any loop.

:attr:`MonitorCallback.session_path` is known before ``train()``: reading it creates the log file the next
``train()`` writes (named after ``run_name``, or ``hf-trainer`` when none is given).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

try:
    from transformers import TrainerCallback
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(f"bitnet_tui.integrations.hf needs transformers ({e}): pip install 'bitnet-tui[hf]'") from None

from bitnet_tui.instrument.config import TrainerFacts
from bitnet_tui.instrument.monitor import Monitor
from bitnet_tui.integrations._common import LogClaim, first_lr, merged, monitor_options, plain, to_device


class MonitorCallback(TrainerCallback):
    """A Monitor for the length of one ``Trainer.train()``.

    ``prompts`` (token ids, shape (n, t)) are continued greedily at each eval and decoded with ``decode``;
    ``val_batches`` (HF-style dicts with ``labels``, or ``(x, y)`` tuples) give the held-out loss; both are
    moved to the model's device. ``config`` is laid over what the callback records of the Trainer's arguments
    and the model's config. Any other keyword goes to :class:`~bitnet_tui.instrument.monitor.Monitor`
    (``weights_every``, ``gen_tokens``, ``layers``, ``save``, ``checkpoint_every``, ``tensorboard``,
    ``trackio``, ``session_path``, ``eval_budget``, ...). :attr:`session_path` is the log, known before
    ``train()``; after it, :attr:`monitor` holds the Monitor.
    """

    def __init__(self, *, prompts: Any = None, decode: Callable[[list[int]], str] | None = None,
                 token_text: Callable[[int], str] | None = None, val_batches: Sequence[Any] = (),
                 loss_fn: Callable | None = None, sessions_dir: str | None = None, run_name: str | None = None,
                 config: Mapping[str, Any] | None = None, eval_every: int = 100, **monitor_kwargs: Any) -> None:
        self.prompts, self.decode, self.token_text = prompts, decode, token_text
        self.val_batches, self.loss_fn = list(val_batches), loss_fn
        self.sessions_dir, self.run_name, self.config = sessions_dir, run_name, config
        self.eval_every, self.monitor_kwargs = eval_every, monitor_kwargs
        monitor_options(monitor_kwargs)  # a wrong keyword fails here, at the call
        self.monitor: Monitor | None = None
        self._claim = LogClaim(monitor_kwargs.get("session_path"), sessions_dir, run_name, "hf-trainer")
        self._fed = 0
        self._tokens_seen = 0
        self._losses: list[Any] = []
        """The loss of each training forward since the last optimizer step (device tensors), and whether the
        Trainer passed ``num_items_in_batch`` (the losses are then shares of the step's, to be summed)."""
        self._summed = False
        self._pending: Any = None
        self._hook: Any = None
        self._warned = False

    @property
    def session_path(self) -> Path | None:
        """The session log: the running (or last) ``train()``'s, else the one the next ``train()`` writes, created
        on this read; None on a rank other than 0."""
        if self.monitor is not None and self.monitor.session_path is not None:
            return self.monitor.session_path
        return self._claim.path()

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, optimizer: Any = None,
                       **kwargs: Any) -> None:
        if self.monitor is not None:  # a no-op when the last train() ended normally (the Trainer has no exception
            # hook: after an exception in train(), or auto_find_batch_size restarting the loop, the log is still
            # open; the Monitor ends it here, or at exit with the exception that ended the process)
            self.monitor.close("error", "the Trainer's loop ended without on_train_end", final_checkpoint=False)
            self.monitor = None
        self._unhook()
        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer holds the real one
        device = next(iter(model.parameters())).device
        cfg = getattr(model, "config", None)
        options = monitor_options(
            self.monitor_kwargs, vocab_size=_config_int(cfg, "vocab_size"), total_steps=state.max_steps or None,
            context=_config_int(cfg, "max_position_embeddings", "n_positions"), token_text=self.token_text,
            loss_fn=self.loss_fn, **({"session_path": claimed} if (claimed := self._claim.take()) else {}))
        self.monitor = Monitor(
            model, inner, decode=self.decode, prompts=self.prompts, val_batches=to_device(self.val_batches, device),
            sessions_dir=self.sessions_dir, run_name=self.run_name or _run_name(args),
            config=merged(_config(args, state, inner, cfg), self.config), eval_every=self.eval_every,
            options=options, facts=TrainerFacts(start_step=state.global_step, source="transformers.Trainer"))
        self._fed, self._losses, self._pending = state.global_step, [], None
        self._tokens_seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
        self._hook = model.register_forward_hook(self._forward_seen, with_kwargs=True)
        self.monitor.start()

    def _forward_seen(self, module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        """A forward hook: keep the loss of a training forward (not an eval's, nor the Monitor's own)."""
        if not module.training or not torch.is_grad_enabled():
            return
        loss = output.get("loss") if isinstance(output, Mapping) else getattr(output, "loss", None)
        if isinstance(loss, torch.Tensor):
            self._losses.append(loss.detach().float().mean())
            self._summed = kwargs.get("num_items_in_batch") is not None

    def _unhook(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.monitor is None:
            return
        self._feed_pending(control)
        losses, self._losses = self._losses, []
        if not losses:  # the forward returned no loss: read the Trainer's, which it then logs every step
            control.should_log = True
            if not self._warned:
                self._warned = True
                warnings.warn("MonitorCallback: the model's forward returned no loss (a compute_loss of your own, or "
                              "label smoothing), so the Trainer logs every step for the Monitor", stacklevel=2)
            return
        loss = torch.stack(losses).sum() if self._summed else torch.stack(losses).mean()
        self._pending = (state.global_step, loss, self._tokens(state))
        if not control.should_log:  # the Trainer does not log this step: feed it now, without a gradient norm
            self._feed_pending(control)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        if self.monitor is None or not logs or "loss" not in logs:
            return  # eval metrics, or the end-of-training summary
        grad_norm = logs.get("grad_norm")
        nonfinite = getattr(args, "logging_nan_inf_filter", False) and isinstance(grad_norm, float) \
            and not math.isfinite(grad_norm)  # the Trainer logs a running mean then; the Monitor must see it
        if self._pending is not None and self._pending[0] == state.global_step:
            self._feed_pending(control, grad_norm, nonfinite)
        elif state.global_step > self._fed:  # the loss read from the Trainer's log (a forward without one)
            self._pending = (state.global_step, logs["loss"], self._tokens(state))
            self._feed_pending(control, grad_norm, nonfinite)

    def _tokens(self, state: Any) -> int | None:
        seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
        tokens, self._tokens_seen = (seen - self._tokens_seen) or None, seen
        return tokens

    def _feed_pending(self, control: Any, grad_norm: Any = None, nonfinite: bool = False) -> None:
        mon, pending, self._pending = self.monitor, self._pending, None
        if mon is None or pending is None or pending[0] <= self._fed:
            return
        self._fed, (_, loss, tokens) = pending[0], pending
        mon.step(math.nan if nonfinite else loss, grad_norm=grad_norm, tokens=tokens)
        if mon.should_stop:
            control.should_training_stop = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._unhook()
        if self.monitor is not None:
            self._feed_pending(control)
            self.monitor.close(self.monitor.steering.stop_reason or "finished")


def _config_int(cfg: Any, *names: str) -> int | None:
    for n in names:
        v = getattr(cfg, n, None)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None


def _run_name(args: Any) -> str:
    name = getattr(args, "run_name", None)
    if name and name != getattr(args, "output_dir", None):
        return str(name)
    return "hf-" + Path(str(getattr(args, "output_dir", None) or "trainer")).name


def _config(args: Any, state: Any, optimizer: Any, model_cfg: Any) -> dict[str, Any]:
    """What the session header records: the knobs in bitnet-tui's names (so ``summary`` and ``compare`` show
    them), the model's shape, and every argument of the Trainer (tokens already masked by transformers)."""
    sched = getattr(args, "lr_scheduler_type", None)
    train = {
        "lr": getattr(args, "learning_rate", None) or first_lr(optimizer), "optimizer": type(optimizer).__name__,
        "schedule": getattr(sched, "value", sched), "steps": state.max_steps,
        "batch_size": getattr(args, "per_device_train_batch_size", None),
        "grad_accum": getattr(args, "gradient_accumulation_steps", None),
        "weight_decay": getattr(args, "weight_decay", None), "grad_clip": getattr(args, "max_grad_norm", None),
        "label_smoothing": getattr(args, "label_smoothing_factor", None), "seed": getattr(args, "seed", None),
    }
    out: dict[str, Any] = {"train": plain(train)}
    if model_cfg is not None:
        out["model"] = plain({"type": getattr(model_cfg, "model_type", None),
                              "hidden": _config_int(model_cfg, "hidden_size", "n_embd", "d_model"),
                              "layers": _config_int(model_cfg, "num_hidden_layers", "n_layer"),
                              "heads": _config_int(model_cfg, "num_attention_heads", "n_head"),
                              "vocab_size": _config_int(model_cfg, "vocab_size")})
    if hasattr(args, "to_dict"):
        out["trainer"] = plain(args.to_dict())
    return out
