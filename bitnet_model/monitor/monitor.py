"""The instrument inside any training loop: ``Monitor``.

::

    with Monitor(model, optimizer, decode=tok.decode, prompts=prompt_ids, sessions_dir="sessions",
                 run_name="my-run", config={"lr": 1.5e-3}, eval_every=100) as mon:
        for batch in loader:
            loss = model(**batch).loss
            loss.backward(); optimizer.step(); optimizer.zero_grad()
            mon.step(loss)
            if mon.should_stop:
                break

It writes the session log (``bitnet-tui replay/watch/summary/diagnose`` read it), serves the owner-only control
socket (``attach``/``ctl`` steer the loop), runs evals and weight snapshots, judges them with the collapse
detector, audits the optimizer, and applies a person's commands at the step boundary: LR changes act on
the optimizer's param groups over whatever schedule the loop sets (:mod:`bitnet_model.monitor.lr`), pause
blocks in ``step()``, stop sets ``should_stop``. Diagnostics never change the model's train/eval mode, the
RNG state or the gradients the loop sees. Under ``torch.distributed`` rank 0 logs and serves, every rank
applies commands (:mod:`bitnet_model.monitor.dist`). bitnet-tui's own trainer runs on this same object.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from bitnet_model.analysis.detector import DetectorConfig
from bitnet_model.control import commands as C
from bitnet_model.log.events import Alert, Event, RunEnded, RunStarted
from bitnet_model.monitor.audit import audit as audit_optimizer
from bitnet_model.monitor.checkpoints import CheckpointStore, save_with_retry
from bitnet_model.monitor.diagnostics import Diagnostics, baselines
from bitnet_model.monitor.dist import RankFailed, World
from bitnet_model.monitor.emitter import Emitter
from bitnet_model.monitor.ending import Ending, ending_at_exit, ending_for
from bitnet_model.monitor.evals import report_prompt_ids
from bitnet_model.monitor.lr import LRControl
from bitnet_model.monitor.readback import Readback
from bitnet_model.monitor.sinks import build_header, open_session, open_sinks
from bitnet_model.monitor.steering import Steering
from bitnet_model.monitor.weights import unwrap


class Monitor:
    """Watches and steers one training loop. See the module docstring; every argument but ``model`` is optional."""

    def __init__(
        self, model: Any, optimizer: Any = None, *, decode: Callable[[list[int]], str] | None = None,
        prompts: Any = None, val_batches: Sequence[Any] = (), loss_fn: Callable | None = None,
        token_text: Callable[[int], str] | None = None, sessions_dir: str | None = None, run_name: str | None = None,
        session_path: str | Path | None = None, config: dict[str, Any] | None = None, eval_every: int = 100,
        weights_every: int | None = None, gen_tokens: int = 32, layers: Any = None, quantize: Callable | None = None,
        save: Callable[[Path], Any] | None = None, checkpoint_every: int = 0, keep_checkpoints: int = 3,
        checkpoint_suffix: str = "", control: bool = True, vocab_size: int | None = None,
        unigram: torch.Tensor | None = None, unigram_entropy: float | None = None,
        detector: DetectorConfig | None = None, total_steps: int | None = None, header: dict[str, Any] | None = None,
        report_metric: bool = False, on_nonfinite: str = "pause", log_every: int = 1,
        tensorboard: str | None = None, trackio: str | None = None, start_step: int = 0,
        parent: dict[str, Any] | None = None, source: str = "monitor", argv: Sequence[str] | None = None,
        audit: dict[str, Any] | bool = True, context: int | None = None, eval_at_start: bool = True,
        flops_per_token: float | None = None, peak_flops: float | None = None,
    ) -> None:
        self.model, self.optimizer = model, optimizer
        self.config = dict(config or {})
        self.run_name = run_name or "run"
        self.sessions_dir, self.session_path = sessions_dir, Path(session_path) if session_path else None
        self.eval_every, self.weights_every = eval_every, weights_every or eval_every
        self.checkpoint_every, self.control = checkpoint_every, control
        self.total_steps, self.header_extra, self.parent = total_steps, dict(header or {}), parent
        self.on_nonfinite, self.source, self.argv = on_nonfinite, source, tuple(argv if argv is not None else sys.argv)
        self.audit_args, self.eval_at_start = audit, eval_at_start
        self.flops_per_token, self.peak_flops = flops_per_token, peak_flops
        self.step_count = start_step
        """Optimizer steps completed."""
        self.world = World.detect()
        self.emitter = Emitter()
        self.lr = LRControl()
        if optimizer is not None:
            self.lr.attach(getattr(optimizer, "optimizer", optimizer))
        self.steering = Steering(self.lr, self.emitter.emit)
        self.readback = Readback(self, log_every)
        self.tensorboard, self.trackio = tensorboard, trackio
        self._store = CheckpointStore(Path("."), save, keep=keep_checkpoints, suffix=checkpoint_suffix) \
            if save is not None else None
        self._closers: list[Callable[[], Any]] = []
        self._started = self._closed = self._prepared = False
        self.last_end: RunEnded | None = None
        self.device = device = next(iter(unwrap(model).parameters())).device
        if prompts is not None and not isinstance(prompts, torch.Tensor):
            prompts = torch.tensor(prompts, dtype=torch.long)
        prompts = prompts.to(device) if prompts is not None else None
        b = baselines(model, prompts, val_batches, vocab_size=vocab_size, unigram=unigram,
                      unigram_entropy=unigram_entropy)
        if b.estimated:
            self.header_extra.setdefault("unigram_source", "held-out sample")
        self.vocab_size, self.ln_vocab, self.unigram_entropy = b.vocab, b.ln_vocab, b.unigram_entropy
        self.diagnostics = Diagnostics(
            model, prompts=prompts, gen_tokens=gen_tokens, decode=decode, token_text=token_text,
            val_batches=val_batches, loss_fn=loss_fn, layers=layers, quantize=quantize,
            detector=detector or DetectorConfig(), ln_vocab=b.ln_vocab, unigram_entropy=b.unigram_entropy,
            unigram_log=b.unigram_log, context=context,
            report_prompts=report_prompt_ids(b.vocab, device) if report_metric and b.vocab else None)

    # -- the outside world -------------------------------------------------------------------
    def subscribe(self, fn: Callable[[Event], None]) -> None:
        """Call ``fn(event)`` for every event from now on, in the training thread; ``fn`` must be fast."""
        self.emitter.subscribe(fn)

    def send(self, cmd: C.Command) -> None:
        """Queue a command (thread-safe, non-blocking); applied at the next step boundary."""
        self.steering.send(cmd)

    @property
    def should_stop(self) -> bool:
        return self.steering.stop_reason is not None

    @property
    def paused(self) -> bool:
        return self.steering.paused

    def emit(self, ev: Event) -> None:
        self.emitter.emit(ev)

    # -- start and end -----------------------------------------------------------------------
    def __enter__(self) -> Monitor:
        self.start()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.close_for(exc)

    def prepare(self) -> Path | None:
        """Claim the run's files on rank 0 before anything starts: the log, the checkpoint directory (0700, refused
        when it is not safely ours), the socket's place. Raises a UserError with one sentence. Idempotent."""
        if self._prepared or not self.world.main:
            return self.session_path
        from bitnet_model.control.peer import check_socket_path, control_path
        from bitnet_model.log.paths import checkpoint_dir

        self.session_path = open_session(self.session_path, self.sessions_dir, self.run_name)
        if self._store is not None:
            self._store.directory = checkpoint_dir(self.session_path)
            removed = self._store.prepare()
            if removed:
                self.header_extra.setdefault("cleaned", [str(p) for p in removed])
        if self.control:
            check_socket_path(control_path(self.session_path))
        self._prepared = True
        return self.session_path

    def start(self) -> None:
        """Open the log and the control socket (rank 0), write the header and the audit, eval at step 0."""
        if self._started:
            return
        self._started = True
        if self.world.main:
            self.prepare()
            self._open_sinks()
        self._pid = os.getpid()
        atexit.register(self._at_exit)
        findings = self._audit()
        self.emit(build_header(self, findings))
        for f in findings:
            self.emit(Alert(step=self.step_count, time=time.time(), level=f["level"], code="audit",
                            message=f"{f['message']}; fix: {f['fix']}", data=dict(f)))
        if self.eval_at_start and self.step_count == 0:
            self._diagnose(evals=True, weights=True)
        self._boundary()  # commands queued before the first step (a pause holds the run before it starts)
        self.readback.restart_clock()

    def _open_sinks(self) -> None:
        self.writer, closers = open_sinks(self)
        self._closers.extend(closers)

    def _audit(self) -> list[dict[str, Any]]:
        if self.optimizer is None or self.audit_args is False:
            return []
        kw = self.audit_args if isinstance(self.audit_args, dict) else {}
        return audit_optimizer(self.optimizer, self.model, **kw)

    def header(self) -> RunStarted:
        return build_header(self, self._audit())

    def close(self, reason: str = "finished", error: str = "", *, final_checkpoint: bool = True) -> RunEnded:
        """End the run: a final checkpoint (when a ``save`` was given), ``run_ended``, every sink closed, and (under
        ``torch.distributed``) the ranks leave together."""
        if self._closed:
            return self.last_end  # type: ignore[return-value]
        self._closed = True
        atexit.unregister(self._at_exit)
        try:
            self.readback.flush()
        except RankFailed as e:
            reason, error, final_checkpoint = "rank_failed", str(e), False
        if final_checkpoint and self._store is not None and self.world.main:
            self._checkpoint(pinned=True, wait=True)
        end = RunEnded(step=self.step_count, time=time.time(), reason=reason, error=error)
        self.last_end = end
        self.emit(end)
        self.lr.detach()
        for close in self._closers:
            try:
                close()
            except Exception as e:  # a log that cannot be completed: say so on stderr, never raise here
                print(f"warning: {e}", file=sys.stderr)
        if reason != "rank_failed":  # leave together: a gloo rank torn down while a peer still talks aborts
            try:
                self.world.barrier()
            except RankFailed:
                pass
        return end

    def close_for(self, exc: BaseException | None) -> RunEnded:
        """End the run as ``exc`` ended the loop (None: it finished, or stopped when told to)."""
        return self._end(ending_for(exc, stop_reason=self.steering.stop_reason, distributed=self.world.active))

    def _end(self, how: Ending) -> RunEnded:
        if self._closed:
            return self.last_end  # type: ignore[return-value]
        if how.crash:
            try:
                self.readback.flush()  # the steps before the crash, then the crash
            except RankFailed as e:
                return self.close("rank_failed", str(e), final_checkpoint=False)
            self.emit(Alert(step=self.step_count, time=time.time(), level="error", code="crash", message=how.crash))
        return self.close(how.reason, how.error, final_checkpoint=how.final_checkpoint)

    def _at_exit(self) -> None:
        """A process that exits with the Monitor open (an exception in a loop with no hook for one, as in
        transformers' Trainer) still ends its log; alone, as the other ranks may be gone."""
        if os.getpid() == self._pid:  # a forked child inherits the hook: only this process ends the log
            self.world = World(self.world.rank, 1, self.world.backend)
            self._end(ending_at_exit())

    # -- the step boundary ---------------------------------------------------------------------
    def step(self, loss: Any, *, grad_norm: Any = None, tokens: int | None = None, stage: int = 1,
             **metrics: float) -> None:
        """Record one optimizer step, run what is due (evals, snapshots, checkpoints) and apply queued commands.
        ``loss`` may be a tensor: it is read back every ``log_every`` steps (no host sync in between)."""
        if not self._started:
            self.start()
        self.step_count += 1
        s = self.step_count
        self.emitter.step = self.steering.step = s
        self.readback.add(s, loss, grad_norm, tokens, stage, metrics)
        due_eval = s % self.eval_every == 0 or s == self.total_steps
        due_weights = s % self.weights_every == 0 or s == self.total_steps
        due_ckpt = bool(self.checkpoint_every) and s % self.checkpoint_every == 0 and s != self.total_steps
        if due_eval or due_weights or due_ckpt or self.readback.due():
            self.readback.flush()
            self._diagnose(evals=due_eval, weights=due_weights)
            if due_ckpt and self._store is not None and self.world.main:
                self._checkpoint(pinned=False)
            self._boundary()

    def _diagnose(self, *, evals: bool, weights: bool) -> None:
        if not (evals or weights):
            return
        if self.world.main:
            for ev in (self.diagnostics.eval(self.step_count) if evals else []) + \
                    (self.diagnostics.weights(self.step_count) if weights else []):
                self.emit(ev)
        self.world.barrier()

    def _boundary(self) -> None:
        """Commands, shared with every rank and applied (:meth:`Steering.exchange`); block here while paused."""
        st = self.steering
        while True:
            st.exchange(self.world, self.emitter)
            if st.eval_requested:
                st.eval_requested = False
                self._diagnose(evals=True, weights=True)
            if st.checkpoint_requested:
                st.checkpoint_requested = False
                if self.world.main:
                    self._checkpoint(pinned=True)
            if not st.paused or st.stop_reason is not None:
                return

    def _checkpoint(self, *, pinned: bool, wait: bool = False) -> None:
        """Save through the run's ``save``; a failure (a full disk) alerts and pauses until a retry succeeds."""
        save_with_retry(self._store, self.step_count, pinned=pinned, emit=self.emit, steering=self.steering,
                        resume_after=not wait)

    # -- resume --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step_count, "lr": self.lr.state_dict(), **self.diagnostics.state_dict()}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.step_count = int(d.get("step", self.step_count))
        self.lr.load_state_dict(d.get("lr", {}))
        self.diagnostics.load_state_dict(d)
