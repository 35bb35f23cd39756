"""What the dashboard knows about a run: the one fold of its events, plus bounded series to plot.

Nothing here imports textual: the live app, replay, watch, the ``plot`` command, the benches and the tests
push the same events through :meth:`Feed.apply` and read the same series back. A version counter per panel
lets a panel redraw only when its data changed.
"""

from __future__ import annotations

import math
from typing import Any

from bitnet_tui.app.dashboard.pending import Pending
from bitnet_tui.app.dashboard.progress import Pace, Segment, progress_segments, starting_words
from bitnet_tui.app.dashboard.series import CAPACITY, HISTORY, LayerHistory, Series, ema, short_layer_name
from bitnet_tui.session.analysis.fold import RunFold
from bitnet_tui.session.control.commands import LR_ACTIONS
from bitnet_tui.session.log.events import (
    EvalDone,
    Event,
    Intervention,
    RunStarted,
    StepDone,
    SystemSample,
    WeightsSnapshot,
)
from bitnet_tui.session.text import printable

__all__ = ["CAPACITY", "HISTORY", "Feed", "LayerHistory", "Series", "ema", "short_layer_name"]

PANELS = ("header", "loss", "unique", "weights", "lr", "grad", "timeline", "samples", "metrics", "config", "system")
SYSTEM_SERIES = ("cpu_percent", "rss_mb", "threads", "load1", "gpu_util", "gpu_mem_mb", "gpu_temp_c")
"""The ``system`` figures kept as series (over the samples' logged times), for the System panel."""


class Feed(RunFold):
    """The run as the panels see it: the fold, bounded series, per-layer history and a version per panel."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        super().__init__()
        self.capacity = capacity
        c = capacity
        self.train_loss, self.val_loss = Series(c), Series(c)
        self.lr_series, self.wd_series, self.grad_norm_series = Series(c), Series(c), Series(c)
        self.flip_mean = Series(c)
        """Per snapshot: the flip rate averaged over the ternary layers (the overlay's flip panel)."""
        self.norm_gain, self.embed_norm = Series(c), Series(c)
        """Per snapshot: mean |gain| of the norm layers, RMS of the token embedding."""
        self.system: dict[str, Series] = {k: Series(c) for k in SYSTEM_SERIES}
        """Per ``system`` sample, by figure (x: seconds since the run's first event)."""
        self.metrics: dict[str, Series] = {}
        """User metrics (``Monitor.step(**metrics)`` and eval extras), by name."""
        self.layers = LayerHistory()
        self.marked: list[Event] = []
        """The events behind :attr:`timeline`, one for one (the panels format their values themselves)."""
        self.versions: dict[str, int] = dict.fromkeys(PANELS, 0)
        self.pace = Pace()
        """Elapsed, ETA, steps/s and tok/s (:mod:`.progress`: how each is smoothed)."""
        self.pending = Pending()
        """Commands this dashboard sent that the run has not applied yet (shown until its answer comes)."""
        self.name_hint = ""
        """The run's name before its header arrives (the source knows it: a live run's, a watched file's)."""
        self.history: Feed | None | bool = None
        """The parent run up to the fork (drawn dimmed); False once looked for and absent."""

    def _touch(self, *panels: str) -> None:
        for p in panels:
            self.versions[p] += 1

    def apply(self, e: Event) -> None:
        shown = len(self.timeline)
        super().apply(e)
        if self.pending.items and self.pending.apply(e):
            self.versions["header"] += 1
        if isinstance(e, StepDone):
            s = e.step
            self.train_loss.append(s, e.loss)
            self.lr_series.append(s, e.lr)
            self.wd_series.append(s, e.weight_decay)
            self.grad_norm_series.append(s, e.grad_norm)
            for k, x in e.extra.items():
                self._metric(k).append(s, x)
            self.pace.step(s, e.time, e.tokens_per_s)
            v = self.versions
            v["header"] += 1
            v["loss"] += 1
            v["lr"] += 1
            v["grad"] += 1
            if e.extra:
                v["metrics"] += 1
        elif isinstance(e, EvalDone):
            self.val_loss.append(e.step, e.val_loss)
            for k, val in e.extra.items():
                self._metric(k).append(e.step, val)
            self._touch("header", "loss", "unique", "samples", *(("metrics",) if e.extra else ()))
        elif isinstance(e, WeightsSnapshot):
            self._weights(e)
        elif isinstance(e, SystemSample):
            x = e.time - (self.first_time or e.time)
            for k, series in self.system.items():
                series.append(x, getattr(e, k))
            self._touch("header", "system")
        elif isinstance(e, RunStarted):
            self._touch(*PANELS)
        else:
            if len(self.timeline) > shown:
                self.marked.append(e)
            self._touch("header", "timeline")
            if isinstance(e, Intervention):
                self._intervention(e)

    def _weights(self, e: WeightsSnapshot) -> None:
        layers = e.layers
        if layers:
            ok = [x for x in (lw.flip_rate for lw in layers) if math.isfinite(x)]
            if ok:
                self.flip_mean.append(e.step, sum(ok) / len(ok))
            self.layers.add(e)
        self.norm_gain.append(e.step, e.norm_gain)
        self.embed_norm.append(e.step, e.embed_norm)
        self._touch("weights")

    def _intervention(self, e: Intervention) -> None:
        if e.action in LR_ACTIONS:
            self._touch("lr")
        elif e.action == "pause":
            self.pace.pause(e.time)
        elif e.action == "resume":
            self.pace.resume(e.time)

    def _metric(self, name: str) -> Series:
        key = printable(name, 60)
        s = self.metrics.get(key)
        if s is None:
            s = self.metrics[key] = Series(self.capacity)
        return s

    # -- reading -------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        return printable(self.header.device, 100) if self.header else "?"

    @property
    def parent_feed(self) -> Feed | None:
        """The parent run's history (up to the fork), when it could be read."""
        return self.history if isinstance(self.history, Feed) else None

    def steps_per_s(self) -> float | None:
        return self.pace.steps_per_s()

    def eta_s(self) -> float | None:
        if self.ended is not None or not self.total_steps:
            return None
        return self.pace.eta_s(self.total_steps - self.step)

    def elapsed_s(self) -> float | None:
        """From run_started to the latest event (logged times, pauses included)."""
        if self.header is None or self.last_time is None:
            return None
        return self.last_time - self.header.time

    def starting(self) -> list[Segment] | None:
        """Before the first step (and before the end), what the run is doing and what it is; else None."""
        if self.last_step_event is not None or self.ended is not None:
            return None
        h = self.header
        return starting_words(started=h is not None, step=self.step, evals=len(self.evals), config=self.config,
                              params=h.params if h is not None else None, device=self.device if h else "")

    @property
    def run_name(self) -> str:
        """The header's run name; before it, the name the source was given (a live run's, a watched log's)."""
        if self.header is None and self.name_hint:
            return printable(self.name_hint, 200)
        return super().run_name

    def progress(self) -> list[Segment]:
        """The progress part of a header or headless line (:func:`~.progress.progress_segments`)."""
        return progress_segments(self.step, self.total_steps, self.pace, elapsed=self.elapsed_s(),
                                 running=self.ended is None)

    def learning_from(self) -> int:
        """Index into :attr:`evals` of the first eval after the model started learning (its state is past
        ``not_learning``); 1 when no eval says so yet (the first eval is the random initialisation)."""
        for i, e in enumerate(self.evals):
            if e.state and e.state != "not_learning":
                return i
        return 1 if len(self.evals) > 1 else 0

    def detail(self) -> dict[str, Any]:
        """Figures of the latest eval for a header line: share, repetition, thresholds."""
        e = self.last_eval
        if e is None:
            return {}
        c = self.thresholds
        return {"unique": e.unique_tokens, "generated": e.generated_tokens,
                "share": e.unique_tokens / e.generated_tokens if e.generated_tokens else 0.0,
                "repetition": e.repetition, "collapse": c.collapse_share, "collapsing": c.collapsing_share,
                "recovered": c.recovered_share}
