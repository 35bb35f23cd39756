"""The training loop as an object: it runs in whichever thread calls :meth:`Trainer.run`.

The world talks to it through a thread-safe command inbox (:meth:`send`), applied
at step boundaries, and it talks back only through immutable events delivered to
subscribers, in order, in the training thread. Subscribers must be fast: a
dashboard appends to a buffer and drains it on its own clock.
"""

from __future__ import annotations

import math
import platform
import queue
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from bitnet_model import __version__
from bitnet_model.analysis.detector import CollapseDetector
from bitnet_model.control import commands as C
from bitnet_model.control.commands import check_lr
from bitnet_model.data.dataset import load_data
from bitnet_model.errors import ConfigError
from bitnet_model.log.events import (
    SCHEMA_VERSION,
    Alert,
    CheckpointSaved,
    EvalDone,
    Event,
    Intervention,
    RunEnded,
    RunStarted,
    StepDone,
    WeightsSnapshot,
)
from bitnet_model.monitor.evals import evaluate
from bitnet_model.monitor.weights import WeightWatcher
from bitnet_model.nn.device import one_thread_on_cpu, resolve_device
from bitnet_model.nn.model import BitNetLM
from bitnet_model.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from bitnet_model.train.config import RunConfig
from bitnet_model.train.schedule import lr_at, stage_at, wd_at

Subscriber = Callable[[Event], None]

def versions() -> dict[str, str]:
    import numpy
    import tokenizers

    return {
        "bitnet-tui": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "tokenizers": tokenizers.__version__,
        "platform": platform.platform(terse=True),
    }


class Trainer:
    """Trains one BitNet b1.58 (or full-precision control) language model and narrates it as events.

    ``checkpoint_dir``: where :class:`~bitnet_model.commands.CheckpointNow`, the periodic
    checkpoints and the checkpoint at a clean stop go (None: no checkpoints).
    ``init_from``: a checkpoint to continue from (resume, or fork with changed knobs).
    ``on_nonfinite``: "pause" (a person can lower the LR and resume) or "stop" (nobody is there).
    """

    def __init__(
        self,
        cfg: RunConfig,
        *,
        run_name: str = "run",
        argv: Sequence[str] = (),
        parent: dict[str, Any] | None = None,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int = 0,
        init_from: str | Path | None = None,
        on_nonfinite: str = "pause",
    ) -> None:
        self.cfg = cfg
        self.run_name = run_name
        self.argv = tuple(argv)
        self.parent = parent
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.checkpoint_every = checkpoint_every
        self.init_from = Path(init_from) if init_from else None
        self.on_nonfinite = on_nonfinite
        self.device = resolve_device(cfg.train.device)
        self.total_steps = cfg.train.steps
        self.step = 0
        """Optimizer steps completed."""
        self.lr_mult = 1.0
        """User multiplier on the base schedule (set LR rescales the rest of the schedule)."""
        self.lr_undo: list[float] = []
        self.paused = False
        self.error: BaseException | None = None
        self._subs: list[Subscriber] = []
        self._inbox: queue.SimpleQueue[C.Command] = queue.SimpleQueue()
        self._stop_reason: str | None = None
        self._eval_requested = False
        self._ckpt_requested = False
        self._failed_subs: list[Subscriber] = []
        self._ready = False
        self.last_end: RunEnded | None = None

    # -- the outside world ---------------------------------------------------------------
    def subscribe(self, fn: Subscriber) -> None:
        """Call ``fn(event)`` for every event from now on, in the training thread."""
        self._subs.append(fn)

    def send(self, cmd: C.Command) -> None:
        """Queue a command; thread-safe and non-blocking. Applied at the next step boundary."""
        self._inbox.put(cmd)

    def lr_now(self) -> float:
        return lr_at(min(self.step, self.total_steps - 1), self.cfg.train) * self.lr_mult

    # -- setup ---------------------------------------------------------------------------
    def setup(self) -> None:
        """Load data, build model and optimizer (seeded), and load ``init_from``. Idempotent."""
        if self._ready:
            return
        cfg = self.cfg
        torch.manual_seed(cfg.train.seed)
        self.data = load_data(cfg.data, cfg.model.vocab_size, cfg.model.context, cfg.train.seed)
        if self.data.vocab_size > cfg.model.vocab_size:
            raise ConfigError(f"tokenizer has {self.data.vocab_size} tokens but vocab_size is {cfg.model.vocab_size}")
        self.model = BitNetLM(cfg.model).to(self.device)
        if cfg.train.compile:
            self.model.compile()  # in place: state_dict keys and the model's methods stay as they are
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        t = cfg.train
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=lr_at(0, t), betas=(t.beta1, t.beta2), eps=1e-8,
        )
        self.batches = self.data.batches(t.batch_size, t.seed)
        self.val_batches = [(x.to(self.device), y.to(self.device))
                            for x, y in self.data.val_batches(t.batch_size, cfg.diag.eval_batches)]
        self.prompts = torch.tensor(
            self.data.eval_prompts(cfg.diag.eval_prompts, cfg.diag.prompt_tokens), dtype=torch.long, device=self.device
        )
        self.ln_vocab = math.log(cfg.model.vocab_size)
        self.detector = CollapseDetector(cfg.diag, self.ln_vocab, self.data.unigram_entropy)
        self.watcher = WeightWatcher()
        if self.init_from is not None:
            self._load(self.init_from)
        self._ready = True

    def _load(self, path: Path) -> None:
        ck = load_checkpoint(path, map_location=self.device)
        saved = RunConfig.from_dict(ck["config"])
        if saved.model != self.cfg.model:
            raise CheckpointError(f"{path} holds a different model ({saved.model.hidden} hidden, "
                                  f"{saved.model.layers} layers) from this run's")
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.step = int(ck["step"])
        same_schedule = saved.train == self.cfg.train
        self.lr_mult = float(ck["lr_mult"]) if same_schedule else 1.0
        self.lr_undo = [float(x) for x in ck["lr_undo"]] if same_schedule else []
        self.batches.load_state_dict(ck["batches"])
        self.detector.load_state_dict(ck["detector"])
        self.watcher.load_state_dict(ck.get("watcher", {}))
        torch.set_rng_state(ck["torch_rng"])

    def checkpoint(self, path: Path) -> Path:
        return save_checkpoint(path, {
            "step": self.step,
            "config": self.cfg.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_mult": self.lr_mult,
            "lr_undo": list(self.lr_undo),
            "batches": self.batches.state_dict(),
            "detector": self.detector.state_dict(),
            "watcher": self.watcher.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "run_name": self.run_name,
        })

    # -- events --------------------------------------------------------------------------
    def _emit(self, ev: Event) -> None:
        for fn in self._subs:
            try:
                fn(ev)
            except Exception as e:  # a consumer failing (disk full) must not kill the run
                self.consumer_failed(fn, e)

    def consumer_failed(self, fn: Subscriber, e: BaseException) -> None:
        """A subscriber could not take an event (e.g. the session log hit a full disk): alert and pause.

        Called from the training thread (a subscriber's own error callback may call it too). Training
        resumes by itself once every failed subscriber's ``retry()`` returns True, or on a Resume command.
        """
        if fn in self._failed_subs:
            return
        self._failed_subs.append(fn)
        alert = Alert(step=self.step, time=time.time(), level="error", code="io",
                      message=f"an event consumer failed ({type(e).__name__}: {str(e)[:200]}); "
                              "training is paused until it works again")
        for other in self._subs:  # the failed one too: a writer keeps it in its backlog
            try:
                other(alert)
            except Exception:
                pass
        self.paused = True

    def _retry_failed(self) -> None:
        """Give failed consumers a chance to catch up (``retry() -> bool``); resume when all do."""
        still = []
        for fn in self._failed_subs:
            retry = getattr(fn, "retry", None)
            ok = False
            if retry is not None:
                try:
                    ok = bool(retry())
                except Exception:
                    ok = False
            if not ok:
                still.append(fn)
        if self._failed_subs and not still:
            self._failed_subs = []
            self.paused = False
            self._emit(Intervention(step=self.step, time=time.time(), action="resume", old="paused",
                                    new="running", source="auto: event consumer recovered"))
        else:
            self._failed_subs = still

    def _intervene(self, action: str, old: Any, new: Any, source: str) -> None:
        self._emit(Intervention(step=self.step, time=time.time(), action=action, old=old, new=new, source=source))

    # -- commands ------------------------------------------------------------------------
    def _apply(self, cmd: C.Command) -> None:
        src = cmd.source
        if isinstance(cmd, (C.SetLR, C.ScaleLR)):
            old = self.lr_now()
            try:
                new = check_lr(cmd.value if isinstance(cmd, C.SetLR) else old * cmd.factor)
            except ConfigError as e:
                self._emit(Alert(step=self.step, time=time.time(), level="warning", code="command",
                                 message=f"refused {type(cmd).__name__}: {e}"))
                return
            base = lr_at(min(self.step, self.total_steps - 1), self.cfg.train)
            self.lr_undo.append(self.lr_mult)
            self.lr_mult = new / base
            self._intervene("set_lr" if isinstance(cmd, C.SetLR) else "scale_lr", old, self.lr_now(), src)
        elif isinstance(cmd, C.UndoLR):
            if not self.lr_undo:
                self._emit(Alert(step=self.step, time=time.time(), level="info", code="command",
                                 message="no LR change to undo"))
                return
            old = self.lr_now()
            self.lr_mult = self.lr_undo.pop()
            self._intervene("undo_lr", old, self.lr_now(), src)
        elif isinstance(cmd, C.Pause):
            if not self.paused:
                self.paused = True
                self._intervene("pause", "running", "paused", src)
        elif isinstance(cmd, C.Resume):
            if self.paused:
                self.paused = False
                self._failed_subs = []
                self._intervene("resume", "paused", "running", src)
        elif isinstance(cmd, C.Stop):
            self._stop_reason = cmd.reason
            self._intervene("stop", "running", cmd.reason, src)
        elif isinstance(cmd, C.CheckpointNow):
            self._ckpt_requested = True
            self._intervene("checkpoint", None, None, src)
        elif isinstance(cmd, C.EvalNow):
            self._eval_requested = True
            self._intervene("eval", None, None, src)

    def _drain(self) -> None:
        while True:
            try:
                self._apply(self._inbox.get_nowait())
            except queue.Empty:
                break
        while self.paused and self._stop_reason is None:
            try:
                self._apply(self._inbox.get(timeout=0.5))
            except queue.Empty:
                if self._failed_subs:
                    self._retry_failed()

    # -- the loop ------------------------------------------------------------------------
    def header(self) -> RunStarted:
        return RunStarted(
            step=self.step, time=time.time(), schema=SCHEMA_VERSION, run_name=self.run_name,
            config=self.cfg.to_dict(), corpus=dict(self.data.corpus_info), tokenizer=dict(self.data.tokenizer_info),
            versions=versions(), argv=self.argv, device=str(self.device), params=self.model.num_params(),
            ln_vocab=self.ln_vocab, unigram_entropy=self.data.unigram_entropy, total_steps=self.total_steps,
            parent=self.parent,
        )

    def run(self) -> RunEnded:
        """Train to the end or until stopped. Never raises for a training failure: it ends the run with an
        ``error`` RunEnded (and keeps the exception in ``self.error``)."""
        try:
            self.setup()
            self._emit(self.header())
            end = self._loop()
        except Exception as e:
            self.error = e
            msg = f"{type(e).__name__}: {e}"
            if self._ready:
                self._emit(Alert(step=self.step, time=time.time(), level="error", code="crash",
                                 message="training crashed: " + msg[:500] + "\n" + traceback.format_exc()[-2000:]))
            end = RunEnded(step=self.step, time=time.time(), reason="error", error=msg[:2000])
        self.last_end = end
        self._emit(end)
        return end

    def _loop(self) -> RunEnded:
        t, d = self.cfg.train, self.cfg.diag
        tokens = t.batch_size * self.cfg.model.context
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        clip = t.grad_clip if t.grad_clip > 0 else math.inf
        if self.step == 0:
            self._eval()
            self._weights()
        self.model.train()
        while self.step < self.total_steps:
            self._drain()
            if self._stop_reason is not None:
                break
            if self._ckpt_requested:
                self._save_checkpoint()
            if self._eval_requested:
                self._eval_requested = False
                self._eval()
                self._weights()
                self.model.train()
            s = self.step
            lr, wd = lr_at(s, t) * self.lr_mult, wd_at(s, t)
            g_decay = self.optimizer.param_groups[0]
            for g in self.optimizer.param_groups:
                g["lr"] = lr
            g_decay["weight_decay"] = wd
            t0 = time.perf_counter()
            x, y = next(self.batches)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            _, loss = self.model(x, y, label_smoothing=t.label_smoothing)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(params, clip).item()
            loss_v = loss.item()
            finite = math.isfinite(loss_v) and math.isfinite(gnorm)
            if finite:
                self.optimizer.step()
            dt = time.perf_counter() - t0
            self.step = s + 1
            self._emit(StepDone(step=self.step, time=time.time(), loss=loss_v, lr=lr, weight_decay=wd,
                                grad_norm=gnorm, tokens_per_s=tokens / dt if dt > 0 else 0.0, stage=stage_at(s, t)))
            if not finite:
                self._nonfinite(loss_v, gnorm, lr)
                continue
            if self.step % d.eval_every == 0 or self.step == self.total_steps:
                self._eval()
                self.model.train()
            if self.step % d.weights_every == 0 or self.step == self.total_steps:
                self._weights()
            if self.checkpoint_every and self.step % self.checkpoint_every == 0 and self.step < self.total_steps:
                self._save_checkpoint()
        self._drain_nowait()
        if self._stop_reason is not None:
            if self.checkpoint_dir is not None:
                self._save_checkpoint()
            return RunEnded(step=self.step, time=time.time(), reason=self._stop_reason)
        if self.checkpoint_dir is not None:
            self._save_checkpoint()
        return RunEnded(step=self.step, time=time.time(), reason="finished")

    def _drain_nowait(self) -> None:
        while True:
            try:
                cmd = self._inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(cmd, C.Stop):
                self._apply(cmd)

    def _nonfinite(self, loss_v: float, gnorm: float, lr: float) -> None:
        what = "stopping" if self.on_nonfinite == "stop" else "paused; lower the LR and resume"
        self._emit(Alert(step=self.step, time=time.time(), level="error", code="nonfinite",
                         message=f"non-finite loss {loss_v} (grad norm {gnorm}) at LR {lr:.3g}: the update was "
                                 f"skipped and training is {what}"))
        if self.on_nonfinite == "stop":
            self._stop_reason = "nonfinite"
        elif not self.paused:
            self.paused = True
            self._intervene("pause", "running", "paused", "auto: non-finite loss")

    def _eval(self) -> None:
        d = self.cfg.diag
        with one_thread_on_cpu(self.device):  # many small ops: one thread is as fast, and never spins
            r = evaluate(self.model, self.val_batches, self.prompts, d.gen_tokens, self.data.decode,
                         self.data.token_text)
        alert = self.detector.observe(self.step, r.unique_tokens, r.val_loss, r.top_tokens,
                                      r.samples[0] if r.samples else "")
        self._emit(EvalDone(
            step=self.step, time=time.time(), val_loss=r.val_loss, unique_tokens=r.unique_tokens,
            generated_tokens=r.generated_tokens, distinct2=r.distinct2, top_share=r.top_share,
            top_tokens=r.top_tokens, entropy=r.entropy, samples=r.samples, prompts=r.prompts,
            state=self.detector.state,
        ))
        if alert is not None:
            self._emit(alert)

    def _weights(self) -> None:
        with one_thread_on_cpu(self.device):
            layers = self.watcher.snapshot(self.model.bitlinear_layers())
        self._emit(WeightsSnapshot(step=self.step, time=time.time(), layers=layers))

    def _save_checkpoint(self) -> None:
        self._ckpt_requested = False
        if self.checkpoint_dir is None:
            self._emit(Alert(step=self.step, time=time.time(), level="warning", code="checkpoint",
                             message="this run has no checkpoint directory; nothing was saved"))
            return
        try:
            path = self.checkpoint(self.checkpoint_dir / f"step{self.step:08d}.pt")
        except OSError as e:
            self._emit(Alert(step=self.step, time=time.time(), level="error", code="io",
                             message=f"checkpoint failed: {e}"))
            return
        self._emit(CheckpointSaved(step=self.step, time=time.time(), path=str(path)))


def with_overrides(cfg: RunConfig, **train: Any) -> RunConfig:
    """A copy of ``cfg`` with some TrainConfig fields replaced (e.g. a fork at a new LR)."""
    return replace(cfg, train=replace(cfg.train, **train))


__all__ = ["Trainer", "versions", "with_overrides"]
