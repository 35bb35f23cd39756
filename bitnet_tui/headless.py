"""The headless run: training in a background thread, a Rich progress display or plain lines in front.

Ctrl+C (SIGINT), SIGTERM and SIGHUP become a Stop command: the trainer finishes
its step, saves a checkpoint, writes ``run_ended`` with the reason, and the
process exits 0.
"""

from __future__ import annotations

import collections
import math
import signal
import sys
import threading
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bitnet_model.control import commands as C
from bitnet_model.log.events import Alert, EvalDone, Event, Intervention, RunEnded, StepDone
from bitnet_model.log.text import safe_text
from bitnet_model.train.trainer import Trainer

_SIGNALS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}
if hasattr(signal, "SIGHUP"):
    _SIGNALS[signal.SIGHUP] = "hangup"


def _f(v: float, spec: str = ".4f") -> str:
    return format(v, spec) if isinstance(v, float) and math.isfinite(v) else str(v)


class HeadlessView:
    """Consumes the trainer's events through a lock-free deque and shows them at most a few times a second."""

    def __init__(self, trainer: Trainer, *, tty: bool, out: TextIO | None = None, every_s: float = 10.0) -> None:
        self.trainer = trainer
        self.tty = tty
        self.out = out or sys.stdout
        self.every_s = every_s
        self.buf: collections.deque[Event] = collections.deque()
        trainer.subscribe(self.buf.append)
        self.last_step: StepDone | None = None
        self.last_eval: EvalDone | None = None
        self.state = ""
        self.end: RunEnded | None = None
        self._last_line = 0.0

    def _drain(self, lines: list[str]) -> None:
        while self.buf:
            ev = self.buf.popleft()
            if isinstance(ev, StepDone):
                self.last_step = ev
            elif isinstance(ev, EvalDone):
                self.last_eval = ev
                self.state = ev.state
                lines.append(f"eval  step {ev.step}: val loss {_f(ev.val_loss)}, {ev.unique_tokens}/"
                             f"{ev.generated_tokens} unique tokens, state {ev.state}")
            elif isinstance(ev, Alert):
                lines.append(f"alert step {ev.step} [{ev.level}] {safe_text(ev.message, newlines=False, limit=300)}")
            elif isinstance(ev, Intervention):
                lines.append(f"intervention step {ev.step}: {ev.action} {ev.old} -> {ev.new} ({ev.source})")
            elif isinstance(ev, RunEnded):
                self.end = ev

    def _status(self) -> str:
        s, e = self.last_step, self.last_eval
        parts = []
        if s is not None:
            parts += [f"loss {_f(s.loss)}", f"lr {s.lr:.3g}", f"{s.tokens_per_s:,.0f} tok/s"]
        if e is not None:
            parts.append(f"unique {e.unique_tokens}/{e.generated_tokens}")
        if self.state:
            parts.append(self.state)
        if self.trainer.paused:
            parts.append("PAUSED")
        return "  ".join(parts)

    def run(self) -> RunEnded:
        tr = self.trainer
        result: list[RunEnded] = []
        worker = threading.Thread(target=lambda: result.append(tr.run()), name="bitnet-trainer", daemon=True)
        old = {}

        def on_signal(signum, frame):  # noqa: ARG001
            tr.send(C.Stop(reason=_SIGNALS.get(signum, "stopped"), source="signal"))

        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                old[sig] = signal.signal(sig, on_signal)
        try:
            worker.start()
            if self.tty:
                self._run_rich(worker)
            else:
                self._run_plain(worker)
            worker.join()
        finally:
            for sig, h in old.items():
                signal.signal(sig, h)
        lines: list[str] = []
        self._drain(lines)
        self._print(lines)
        return result[0] if result else RunEnded(step=tr.step, time=time.time(), reason="error", error="no result")

    def _print(self, lines: list[str], console: Console | None = None) -> None:
        for line in lines:
            if console is not None:
                console.print(line, markup=False, highlight=False)
            else:
                print(line, file=self.out, flush=True)

    def _run_rich(self, worker: threading.Thread) -> None:
        console = Console(file=self.out)
        cols = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[status]}", markup=False), TimeRemainingColumn())
        with Progress(*cols, console=console, refresh_per_second=4, transient=False) as prog:
            task = prog.add_task(safe_text(self.trainer.run_name, newlines=False, limit=60),
                                 total=self.trainer.total_steps, status="starting")
            while worker.is_alive():
                worker.join(0.25)
                lines: list[str] = []
                self._drain(lines)
                self._print(lines, console)
                prog.update(task, completed=self.trainer.step, status=self._status())

    def _run_plain(self, worker: threading.Thread) -> None:
        while worker.is_alive():
            worker.join(0.5)
            lines: list[str] = []
            self._drain(lines)
            now = time.monotonic()
            if now - self._last_line >= self.every_s and self.last_step is not None:
                self._last_line = now
                lines.append(f"step  {self.trainer.step}/{self.trainer.total_steps}  {self._status()}")
            self._print(lines)
