"""The instrument inside any training loop: ``Monitor`` (its class docstring shows the loop).

It writes the session log (``bitnet-tui replay/watch/summary/diagnose`` read it), serves the owner-only control
socket (``attach``/``ctl`` steer the loop), runs evals and weight snapshots, judges them with the collapse
detector, audits the optimizer, and applies a person's commands at the step boundary: LR changes act on
the optimizer's param groups over whatever schedule the loop sets (:mod:`bitnet_tui.instrument.lr`), pause
blocks in ``step()``, stop sets ``should_stop``. Diagnostics never change the model's train/eval mode, the
RNG state or the gradients the loop sees. Under ``torch.distributed`` rank 0 logs and serves, every rank
applies commands (:mod:`bitnet_tui.instrument.dist`). bitnet-tui's own trainer runs on this same object.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from bitnet_tui.instrument.audit import audit_findings, start_alerts
from bitnet_tui.instrument.autopilot import Autopilot
from bitnet_tui.instrument.calls import Guarded, check_step
from bitnet_tui.instrument.checkpoints import kept_steps, save_with_retry, store_for
from bitnet_tui.instrument.config import MonitorConfig, TrainerFacts, checked
from bitnet_tui.instrument.diagnostics import diagnostics_for
from bitnet_tui.instrument.dist import RankFailed, World
from bitnet_tui.instrument.emitter import Emitter
from bitnet_tui.instrument.ending import Ending, ending_at_exit, ending_for, unlogged_end
from bitnet_tui.instrument.lr import LRControl
from bitnet_tui.instrument.optim_control import optim_control, step_wd
from bitnet_tui.instrument.readback import Readback
from bitnet_tui.instrument.sinks import build_header, claim_files, close_all, open_session, open_sinks
from bitnet_tui.instrument.steering import Steering
from bitnet_tui.instrument.system import start_sampler
from bitnet_tui.instrument.unigram import held_out_warning
from bitnet_tui.instrument.weights import unwrap
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.log.events import Alert, Event, RunEnded, RunStarted


class Monitor:
    """Watches and steers one training loop::

        with Monitor(model, optimizer, decode=tok.decode, prompts=prompt_ids, val_batches=val,
                     sessions_dir="sessions", run_name="my-run", config={"lr": 1.5e-3}) as mon:
            for x, y in loader:
                loss = loss_of(model(x), y); loss.backward(); optimizer.step(); optimizer.zero_grad()
                mon.step(loss)
                if mon.should_stop:
                    break
    ``options``: :class:`~bitnet_tui.instrument.config.MonitorConfig`; ``facts``: :class:`TrainerFacts`.
    """

    def __init__(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None, *,
        decode: Callable[[list[int]], str] | None = None, prompts: torch.Tensor | Sequence[Sequence[int]] | None = None,
        val_batches: Sequence[Any] = (), sessions_dir: str | None = None, run_name: str | None = None,
        config: dict[str, Any] | None = None, eval_every: int = 100, options: MonitorConfig | None = None,
        facts: TrainerFacts | None = None,
    ) -> None:
        o, f = checked(eval_every, options, facts)
        self.model, self.optimizer, self.options, self.facts = model, optimizer, o, f
        self.config, self.run_name = dict(config or {}), run_name or "run"
        self.sessions_dir, self.session_path = sessions_dir, Path(o.session_path) if o.session_path else None
        self.eval_every, self.weights_every = eval_every, o.weights_every or eval_every
        self.total_steps, self.header_extra = o.total_steps, dict(f.header)
        self.argv = tuple(o.argv if o.argv is not None else sys.argv)
        self.step_count = f.start_step  # optimizer steps completed
        self.world, self.emitter, self.lr = World.detect(), Emitter(), LRControl()
        if optimizer is not None:
            self.lr.attach(getattr(optimizer, "optimizer", optimizer))
        self.optim = optim_control(model, optimizer)
        self.steering = Steering(self.lr, self.emitter.emit, self.optim, announce=f.source != "bitnet-tui run")
        self.autopilot = Autopilot(self.steering.send, self.emit) if o.autopilot else None
        self.device = device = next(iter(unwrap(model).parameters())).device
        self.readback = Readback(self.emit, self.world, applied_lr=self.lr.current,
                                 weight_decay=lambda: step_wd(self.optim, optimizer), device=device,
                                 log_every=o.log_every, flops=(f.flops_per_token, f.peak_flops),
                                 watch=lambda ev: self.diagnostics.diseases.observe(ev),
                                 on_nonfinite=lambda *a: self.steering.nonfinite(
                                     *a, stop=o.stops_on_nonfinite, skipped=f.skips_nonfinite,
                                     kept=lambda: kept_steps(self._store)))
        self._store = store_for(o.save, keep=o.keep_checkpoints, suffix=f.checkpoint_suffix)
        self._closers: list[Callable[[], Any]] = [self.optim.detach] if self.optim is not None else []
        self._started = self._closed = self._prepared = False
        self.last_end: RunEnded | None = None
        self.guard = Guarded()
        b, self.diagnostics, self._counts = diagnostics_for(model, decode, prompts, val_batches, o, f, device,
                                                            eval_every)
        self._unigram_warning = held_out_warning(b.unigram_entropy or 0.0, b.tokens, b.vocab) if b.estimated else ""
        self.vocab_size, self.ln_vocab, self.unigram_entropy = b.vocab, b.ln_vocab, b.unigram_entropy

    def subscribe(self, fn: Callable[[Event], None]) -> None:
        """Call ``fn(event)`` for every event from now on, one at a time, in the emitting thread; be fast."""
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
        """Hand ``ev`` to every consumer (the log, the dashboard, mirrors)."""
        self.emitter.emit(ev)

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
        self.session_path = claim_files(open_session(self.session_path, self.sessions_dir, self.run_name),
                                        self._store, self.header_extra, control=self.options.control)
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
            if self.autopilot is not None:
                self.subscribe(self.autopilot.observe)
        self._pid = os.getpid()
        atexit.register(self._at_exit)
        findings = audit_findings(self.optimizer, self.model, self.facts.audit)
        self.emit(self.header(findings))
        for alert in start_alerts(self.step_count, findings, self._unigram_warning, len(self.diagnostics.layers)):
            self.emit(alert)
        if self.facts.eval_at_start and self.step_count == 0:
            self._diagnose(evals=True, weights=True)
        self._boundary()  # commands queued before the first step (a pause holds the run before it starts)
        self.readback.restart_clock()

    def _open_sinks(self) -> None:
        assert self.session_path is not None
        o = self.options
        self.writer, closers = open_sinks(self.session_path, self.subscribe, self.emitter.consumer_failed,
                                          control=self if o.control else None, tensorboard=o.tensorboard,
                                          trackio=(o.trackio, self.run_name, self.config) if o.trackio else None)
        sampler = start_sampler(self.emitter, lambda: self.step_count, self.device, o.system_every)
        self._closers.extend([sampler, *closers])  # the sampler stops before the log closes

    def header(self, findings: list[dict[str, Any]] | None = None) -> RunStarted:
        """The ``run_started`` event of this run (with the optimizer audit's ``findings``)."""
        findings = audit_findings(self.optimizer, self.model, self.facts.audit) if findings is None else findings
        return build_header(
            step=self.step_count, run_name=self.run_name, config=self.config, argv=self.argv, device=self.device,
            model=self.model, optimizer=self.optimizer, audit=findings,
            baselines=(self.vocab_size, self.ln_vocab, self.unigram_entropy), total_steps=self.total_steps,
            parent=self.options.parent, world=self.world.describe(self.device), source=self.facts.source,
            extra=self.header_extra, detector=self.diagnostics.detector.header())

    def close(self, reason: str = "finished", error: str = "", *, final_checkpoint: bool = True) -> RunEnded:
        """End the run: a final checkpoint (when a ``save`` was given), ``run_ended``, every sink closed, and (under
        ``torch.distributed``) the ranks leave together."""
        if self._closed:
            return self.last_end  # type: ignore[return-value]  # None only while a close re-enters itself
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
        close_all(self._closers)
        if reason != "rank_failed":  # leave together: a gloo rank torn down while a peer still talks aborts
            with contextlib.suppress(RankFailed):
                self.world.barrier()
        return end

    def close_for(self, exc: BaseException | None) -> RunEnded:
        """End the run as ``exc`` ended the loop (None: finished, or told to stop); before start, not logged."""
        how = ending_for(exc, stop_reason=self.steering.stop_reason, distributed=self.world.active)
        if not self._started:
            self.last_end = unlogged_end(self.step_count, how, exc)
            return self.last_end
        return self._end(how)

    def _end(self, how: Ending) -> RunEnded:
        if self._closed:
            return self.last_end  # type: ignore[return-value]  # None only while a close re-enters itself
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

    def observe_tokens(self, batch: Any) -> None:
        """Count a training batch's ids (tensor, ``(x, y)``, ``{"input_ids"}``) for the unigram entropy."""
        if self._counts is not None:
            self._counts.add(batch)

    def step(self, loss: Any, *, grad_norm: Any = None, tokens: int | None = None, stage: int = 1,
             batch: Any = None, **metrics: float) -> None:
        """Record one optimizer step, run what is due (evals, snapshots, checkpoints) and apply queued commands.
        ``loss`` may be a tensor, read back every ``log_every`` steps; ``batch``: see :meth:`observe_tokens`."""
        if not self._started:
            self.start()
        self.diagnostics.budget.step_began(time.perf_counter())
        loss = check_step(loss, closed=self._closed, pid=self._pid)  # a clear error here, before anything changes
        if batch is not None:
            self.observe_tokens(batch)
        self.step_count += 1
        s = self.step_count
        self.emitter.step = self.steering.step = s
        self.readback.add(s, loss, grad_norm, tokens, stage, metrics)
        due_eval = s % self.eval_every == 0 or s == self.total_steps
        due_weights = s % self.weights_every == 0 or s == self.total_steps
        due_ckpt = bool(every := self.options.checkpoint_every) and s % every == 0 and s != self.total_steps
        if due_eval or due_weights or due_ckpt or self.readback.due():
            self.readback.flush()
            self._diagnose(evals=due_eval, weights=due_weights)
            if due_ckpt and self._store is not None and self.world.main:
                self._checkpoint(pinned=False)
            self._boundary()
        self.diagnostics.keep_step_before(self.world.main and (s + 1) % self.weights_every == 0)  # update/weight

    def _diagnose(self, *, evals: bool, weights: bool) -> None:
        if not (evals or weights):
            return
        if self.world.main:
            for ev in (self.guard("eval", self.diagnostics.eval, self.step_count) if evals else []) + \
                    (self.guard("weight snapshot", self.diagnostics.weights, self.step_count) if weights else []):
                self.emit(ev)
        self.world.barrier()

    def _boundary(self) -> None:
        """Commands, shared with every rank and applied (:meth:`Steering.exchange`); block here while paused."""
        st = self.steering
        paused_since: float | None = None
        while True:
            st.exchange(self.world, self.emitter)
            if st.eval_requested:
                st.eval_requested = False
                self._diagnose(evals=True, weights=True)
            if st.checkpoint_requested:
                st.checkpoint_requested = False
                if self.world.main:
                    self._checkpoint(pinned=True)
            paused_since = paused_since or (time.perf_counter() if st.paused else None)
            if not st.paused or st.stop_reason is not None:  # a pause is no part of the next step's time (tok/s)
                self.readback.leave_out(time.perf_counter() - paused_since if paused_since else 0.0)
                return

    def _checkpoint(self, *, pinned: bool, wait: bool = False) -> None:
        """Save through the run's ``save``; a failure (a full disk) alerts and pauses until a retry succeeds."""
        save_with_retry(self._store, self.step_count, pinned=pinned, emit=self.emit, steering=self.steering,
                        resume_after=not wait)

    def state_dict(self) -> dict[str, Any]:
        optim = {"optim": self.optim.state_dict()} if self.optim is not None else {}
        return {"step": self.step_count, "lr": self.lr.state_dict(), **optim, **self.diagnostics.state_dict()}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.step_count = int(d.get("step", self.step_count))
        self.lr.load_state_dict(d.get("lr", {}))
        if self.optim is not None:
            self.optim.load_state_dict(d.get("optim", {}))
        self.diagnostics.load_state_dict(d)
