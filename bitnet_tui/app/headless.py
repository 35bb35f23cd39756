"""The headless run: training in a background thread, a Rich progress display or plain lines in front.

The run never depends on its output stream: when stdout breaks (``| head -3``), fills up (``>/dev/full``, a
detached run's ``.out`` on a full disk) or goes away, printing stops, the log gets an ``output`` alert
saying so, and training continues to its normal end.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from typing import TextIO

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.text import Text

from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.app.dashboard.fitting import ESSENTIAL, Segment, fit
from bitnet_tui.app.dashboard.header import STATE_LABELS, STATE_STYLES
from bitnet_tui.app.dashboard.progress import fit_with_bar
from bitnet_tui.app.dashboard.sources import EventBuffer
from bitnet_tui.session.analysis.fold import timeline_item
from bitnet_tui.session.control.handle import RunHandle
from bitnet_tui.session.log.events import Alert, EvalDone, Event, RunEnded
from bitnet_tui.session.log.paths import short_name
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
        self.fold = Feed()
        self.fold.name_hint = str(getattr(run, "run_name", "") or "")
        self.lost: str = ""
        """Why printing stopped ("" while it works)."""
        self._last_line = 0.0

    def _drain(self, lines: list[str]) -> None:
        for ev in self.buffer.drain():
            self.fold.apply(ev)
            lines.extend(_line(ev))

    def status(self, width: int = 0, bar: bool = True) -> Text:
        """The progress line fitted to ``width`` (0: everything; :func:`status_line`)."""
        return status_line(self.fold, width, bar=bar)

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
        with Live(_Status(self), console=console, refresh_per_second=4, transient=False) as live:
            while worker.is_alive():
                worker.join(0.25)
                lines: list[str] = []
                self._drain(lines)
                self._print(lines, live.console)
            last: list[str] = []
            self._drain(last)  # the line ends on the run's end
            self._print(last, live.console)

    def _show_plain(self, worker: threading.Thread) -> None:
        while worker.is_alive():
            worker.join(0.5)
            lines: list[str] = []
            self._drain(lines)
            now = time.monotonic()
            if now - self._last_line >= self.every_s and self.fold.last_step_event is not None:
                self._last_line = now
                lines.append(self.status(bar=False).plain)
            self._print(lines)


class _Status:
    """The live progress line, fitted to the terminal's width at every refresh (a resize too)."""

    def __init__(self, view: HeadlessView) -> None:
        self.view = view

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.view.status(options.max_width)


def status_line(feed: Feed, width: int = 0, *, bar: bool = True) -> Text:
    """The headless progress line: the step of the total (a bar after it where there is room), the ETA, the
    detector state and PAUSED always; then the loss, tok/s, elapsed, the unique count, the LR, steps/s and the
    run's name, dropped in the reverse order when ``width`` (0: no limit) is short."""
    f = feed
    starting = f.starting()
    if starting is not None:
        return fit(starting, width)
    step, *pace = f.progress()
    segs: list[Segment] = [step, *(s for s in pace if s[0].plain.startswith("ETA"))]
    state = STATE_LABELS.get(f.state, printable(f.state, 40)) if f.state else ""
    if state:
        segs.append((Text(state, style=STATE_STYLES.get(f.state, "bold")), ESSENTIAL))
    if f.paused:
        segs.append((Text("PAUSED", style="reverse"), ESSENTIAL))
    if f.ended is not None:
        segs.append((Text(f"ended: {printable(f.ended.reason, 40)}", style="bold"), ESSENTIAL))
    if math.isfinite(f.loss):
        segs.append((Text(f"loss {fmt_value(f.loss)}"), 9))
    segs += [s for s in pace if not s[0].plain.startswith("ETA")]
    if f.last_eval is not None:
        segs.append((Text(f"unique {f.last_eval.unique_tokens}/{f.last_eval.generated_tokens}"), 3))
    if math.isfinite(f.lr):
        segs.append((Text(f"lr {f.lr:.3g}"), 3))
    segs.append((Text(short_name(f.run_name), style="bold"), 1))
    if bar:
        return fit_with_bar(segs, width, f.step, f.total_steps)
    return fit(segs, width)


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
