"""Hugging Face ``transformers.Trainer``: :class:`MonitorCallback` puts a bitnet-tui Monitor inside ``train()``.

::

    from bitnet_tui.integrations.hf import MonitorCallback

    trainer = Trainer(model=model, args=args, train_dataset=train,
                      callbacks=[MonitorCallback(prompts=prompt_ids, decode=tok.decode, val_batches=held_out,
                                                 sessions_dir="sessions", eval_every=100)])
    trainer.train()        # bitnet-tui attach latest / ctl latest set-lr 5e-4 / watch latest meanwhile

Where it sits in the Trainer's optimizer step (transformers 5): ``optimizer.step()`` (the Monitor's LR hooks
act here, on the real ``torch.optim`` optimizer inside accelerate's wrapper) -> ``lr_scheduler.step()`` ->
``on_step_end`` -> the Trainer logs -> ``on_log`` -> evaluate -> save -> the stop check. The step's loss is
the one the Trainer itself logs, so the callback asks the Trainer to log every optimizer step
(``control.should_log``, as ``logging_steps=1`` would) and feeds the Monitor from ``on_log``: evals, weight
snapshots, pauses and commands happen there, and a stop command sets ``control.should_training_stop``, which
the Trainer reads right after. The Trainer's own logged ``learning_rate`` stays its schedule's; the LR each
step really used, after any command, is the session log's. With ``logging_nan_inf_filter`` (the default) the
Trainer logs a running mean in place of a non-finite loss; a non-finite gradient norm then makes the step's loss
NaN for the Monitor, which alerts and pauses as it does for any loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

try:
    from transformers import TrainerCallback
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(f"bitnet_tui.integrations.hf needs transformers ({e}): pip install 'bitnet-tui[hf]'") from None

from bitnet_tui.instrument.config import TrainerFacts
from bitnet_tui.instrument.monitor import Monitor
from bitnet_tui.integrations._common import first_lr, merged, monitor_options, plain, to_device


class MonitorCallback(TrainerCallback):
    """A Monitor for the length of one ``Trainer.train()``.

    ``prompts`` (token ids, shape (n, t)) are continued greedily at each eval and decoded with ``decode``;
    ``val_batches`` (HF-style dicts with ``labels``, or ``(x, y)`` tuples) give the held-out loss; both are
    moved to the model's device. ``config`` is laid over what the callback records of the Trainer's arguments
    and the model's config. Any other keyword goes to :class:`~bitnet_tui.instrument.monitor.Monitor`
    (``weights_every``, ``gen_tokens``, ``layers``, ``save``, ``checkpoint_every``, ``tensorboard``,
    ``trackio``, ``session_path``, ...). After ``train()``, :attr:`monitor` holds the Monitor and
    :attr:`session_path` the log.
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
        self._fed = 0
        self._tokens_seen = 0

    @property
    def session_path(self) -> Path | None:
        return self.monitor.session_path if self.monitor is not None else None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, optimizer: Any = None,
                       **kwargs: Any) -> None:
        if self.monitor is not None:  # a no-op when the last train() ended normally (the Trainer has no exception
            # hook: after an exception in train(), or auto_find_batch_size restarting the loop, the log is still
            # open; the Monitor ends it here, or at exit with the exception that ended the process)
            self.monitor.close("error", "the Trainer's loop ended without on_train_end", final_checkpoint=False)
        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer holds the real one
        device = next(iter(model.parameters())).device
        cfg = getattr(model, "config", None)
        options = monitor_options(
            self.monitor_kwargs, vocab_size=_config_int(cfg, "vocab_size"), total_steps=state.max_steps or None,
            context=_config_int(cfg, "max_position_embeddings", "n_positions"), token_text=self.token_text,
            loss_fn=self.loss_fn)
        self.monitor = Monitor(
            model, inner, decode=self.decode, prompts=self.prompts, val_batches=to_device(self.val_batches, device),
            sessions_dir=self.sessions_dir, run_name=self.run_name or _run_name(args),
            config=merged(_config(args, state, inner, cfg), self.config), eval_every=self.eval_every,
            options=options, facts=TrainerFacts(start_step=state.global_step, source="transformers.Trainer"))
        self._fed = state.global_step
        self._tokens_seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
        self.monitor.start()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.monitor is not None:
            control.should_log = True  # the Trainer logs this step's loss; on_log hands it to the Monitor

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        mon = self.monitor
        if mon is None or not logs or "loss" not in logs or state.global_step <= self._fed:
            return  # eval metrics, the end-of-training summary, or a step already fed
        self._fed = state.global_step
        seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
        tokens, self._tokens_seen = (seen - self._tokens_seen) or None, seen
        loss, grad_norm = logs["loss"], logs.get("grad_norm")
        if getattr(args, "logging_nan_inf_filter", False) and isinstance(grad_norm, float) \
                and not math.isfinite(grad_norm):
            loss = math.nan  # the Trainer logs the running mean in place of a non-finite loss; the Monitor must see it
        mon.step(loss, grad_norm=grad_norm, tokens=tokens)
        if mon.should_stop:
            control.should_training_stop = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.monitor is not None:
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
