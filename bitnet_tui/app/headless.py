"""The headless run: training in a background thread, a Rich progress display or plain lines in front.

The run never depends on its output stream: when stdout breaks (``| head -3``), fills up (``>/dev/full``, a
detached run's ``.out`` on a full disk) or goes away, printing stops, the log gets an ``output`` alert
saying so, and training continues to its normal end.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bitnet_tui.app.dashboard.sources import EventBuffer
from bitnet_tui.session.analysis.fold import RunFold, timeline_item
from bitnet_tui.session.control.handle import RunHandle
from bitnet_tui.session.log.events import Alert, EvalDone, Event, RunEnded
from bitnet_tui.session.text import fmt_value, printable


class OutputLost(Exception):
    """stdout cannot take more lines (a closed pipe, a full disk)."""


class HeadlessView:
    """Consumes the run's events through a lock-free buffer and shows them a few times a second."""

    def __init__(self, run: RunHandle, *, tty: bool, out: TextIO, every_s: float = 10.0) -> None:
        self.run = run
        self.tty = tty
        self.out = out
        self.every_s = every_s
        self.buffer = EventBuffer()
        run.subscribe(self.buffer)
        self.fold = RunFold()
        self.lost: str = ""
        """Why printing stopped ("" while it works)."""
        self._last_line = 0.0

    def _drain(self, lines: list[str]) -> None:
        for ev in self.buffer.drain():
            self.fold.apply(ev)
            lines.extend(_line(ev))

    def _status(self) -> str:
        f = self.fold
        parts = []
        if f.last_step_event is not None:
            parts += [f"loss {fmt_value(f.loss)}", f"lr {f.lr:.3g}"]
            if f.tokens_per_s == f.tokens_per_s:
                parts.append(f"{f.tokens_per_s:,.0f} tok/s")
        if f.last_eval is not None:
            parts.append(f"unique {f.last_eval.unique_tokens}/{f.last_eval.generated_tokens}")
        if f.state:
            parts.append(f.state)
        if f.paused:
            parts.append("PAUSED")
        return "  ".join(parts)

    def watch(self) -> RunEnded:
        """Run the training in a thread and show it here until it ends; returns how it ended."""
        result: list[RunEnded] = []
        worker = threading.Thread(target=lambda: result.append(self.run.run()), name="bitnet-trainer", daemon=True)
        worker.start()
        try:
            self._show_rich(worker) if self.tty else self._show_plain(worker)
        except OutputLost as e:
            self._lose(str(e))
        while worker.is_alive():  # printing has stopped: keep the buffer empty until the run ends
            worker.join(0.5)
            self._drain([])
        lines: list[str] = []
        self._drain(lines)
        if not self.lost:
            try:
                self._print(lines)
            except OutputLost as e:
                self._lose(str(e))
        return result[0] if result else RunEnded(step=self.fold.step, time=time.time(), reason="error",
                                                 error="no result")

    def _lose(self, why: str) -> None:
        """Stop printing and point the broken stream at /dev/null (so nothing at exit trips on it either); say so
        in the log. The run goes on to its normal end."""
        self.lost = why
        with contextlib.suppress(OSError, ValueError, AttributeError):
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, self.out.fileno())
            os.close(fd)
        emit = getattr(getattr(self.run, "monitor", None), "emit", None)
        if emit is not None:
            emit(Alert(step=self.fold.step, time=time.time(), level="warning", code="output",
                       message=f"the terminal output stopped working ({why}); training goes on, and the session log "
                               "has everything"))

    def _print(self, lines: list[str], console: Console | None = None) -> None:
        try:
            for line in lines:
                if console is not None:
                    console.print(line, markup=False, highlight=False)
                else:
                    self.out.write(line + "\n")
            self.out.flush()
        except (BrokenPipeError, OSError, ValueError) as e:
            raise OutputLost(f"{type(e).__name__}: {getattr(e, 'strerror', None) or e}") from None

    def _show_rich(self, worker: threading.Thread) -> None:
        console = Console(file=self.out)
        cols = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[status]}", markup=False), TimeRemainingColumn())
        with Progress(*cols, console=console, refresh_per_second=4, transient=False) as prog:
            task = prog.add_task(printable(self.run.run_name, 60), total=getattr(self.run, "total_steps", None),
                                 status="starting")
            while worker.is_alive():
                worker.join(0.25)
                lines: list[str] = []
                self._drain(lines)
                self._print(lines, console)
                prog.update(task, completed=self.fold.step, status=self._status())

    def _show_plain(self, worker: threading.Thread) -> None:
        while worker.is_alive():
            worker.join(0.5)
            lines: list[str] = []
            self._drain(lines)
            now = time.monotonic()
            if now - self._last_line >= self.every_s and self.fold.last_step_event is not None:
                self._last_line = now
                total = f"/{self.fold.total_steps}" if self.fold.total_steps else ""
                lines.append(f"step  {self.fold.step}{total}  {self._status()}")
            self._print(lines)


def _line(ev: Event) -> list[str]:
    if isinstance(ev, EvalDone):
        return [f"eval  step {ev.step}: val loss {fmt_value(ev.val_loss)}, {ev.unique_tokens}/{ev.generated_tokens} "
                f"unique tokens, state {printable(ev.state, 40)}"]
    if isinstance(ev, Alert):
        return [f"alert step {ev.step} [{printable(ev.level, 20)}] {printable(ev.message, 300)}"]
    if ev.kind == "intervention":
        item = timeline_item(ev)
        return [f"intervention step {ev.step}: {item.text if item else ''}"]
    return []
