"""How far a run is and how fast it goes: elapsed, ETA, steps/s, tok/s and a progress bar.

One definition for the live header, replay, watch and the headless line. Every figure comes from the logged
events (their times), never the wall clock, so a replay shows what the run showed:

* **ETA** and **steps/s**: the mean wall time per step over the last :data:`PACE_STEPS` logged steps, time
  spent paused left out (evals, snapshots and checkpoints stay in: they are part of what the rest will take).
* **tok/s**: the median of the last :data:`TOKENS_STEPS` steps' training throughput as the Monitor timed each
  step (a pause is not part of a step's time), so the step after an eval or a resume does not swing it.
* **elapsed**: from ``run_started`` to the latest event, pauses included.
"""

from __future__ import annotations

import io
import math
import statistics
from collections import deque
from typing import Any

from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.text import Text

from bitnet_tui.app.dashboard.fitting import Segment, fit_segments, join, width_of
from bitnet_tui.session.text import fmt_duration, printable

PACE_STEPS = 100
"""Steps whose mean time sets the ETA and steps/s (said in the help screen, README and ``run --help``)."""
TOKENS_STEPS = 15
"""Steps whose median throughput is the tok/s shown."""
BAR_MIN, BAR_MAX = 8, 40
"""A progress bar gets the room a line has left, within these widths (cells); below the minimum, none."""

BAR_PRIORITY = 6
"""The bar stays longer than tok/s, elapsed and steps/s, and goes before the ETA and the loss."""


class Pace:
    """The pace of a run from its step events and its pause and resume interventions."""

    def __init__(self) -> None:
        self._times: deque[tuple[int, float]] = deque(maxlen=PACE_STEPS + 1)
        """(step, logged time minus the time paused before it) of the latest steps."""
        self._tokens: deque[float] = deque(maxlen=TOKENS_STEPS)
        self._paused_at: float | None = None
        self._paused_total = 0.0

    def step(self, step: int, time: float, tokens_per_s: float | None) -> None:
        if self._times and step <= self._times[-1][0]:
            self._times.clear()  # a rewind or a seek back: the old steps say nothing of the new pace
        self._times.append((step, time - self._paused_total))
        if tokens_per_s is not None and math.isfinite(tokens_per_s) and tokens_per_s > 0:
            self._tokens.append(tokens_per_s)

    def pause(self, time: float) -> None:
        if self._paused_at is None:
            self._paused_at = time

    def resume(self, time: float) -> None:
        if self._paused_at is not None:  # later steps are timed as if the pause never happened
            self._paused_total += max(0.0, time - self._paused_at)
            self._paused_at = None

    def steps_per_s(self) -> float | None:
        if len(self._times) < 2:
            return None
        (s0, t0), (s1, t1) = self._times[0], self._times[-1]
        if t1 <= t0 or s1 <= s0:
            return None
        return (s1 - s0) / (t1 - t0)

    def tokens_per_s(self) -> float | None:
        return statistics.median(self._tokens) if self._tokens else None

    def eta_s(self, remaining: int) -> float | None:
        rate = self.steps_per_s()
        return None if rate is None else max(0, remaining) / rate


def _num(v: object) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def starting_words(*, started: bool, step: int, evals: int, config: dict[str, Any], params: int | None,
                   device: str) -> list[Segment]:
    """What a run that has not made its first step is doing, and what it is: before ``run_started``, starting;
    then waiting for the first step (after the step-0 eval, for a fresh run), with the run's size and settings."""
    if not started:
        return [(Text("starting: waiting for the run's header…", style="bold"), 10)]
    if step == 0 and not evals:
        what = "the step-0 eval, then the first step…"
    else:
        what = f"waiting for the first step{f' after step {step}' if step else ''}…"
    segs: list[Segment] = [(Text(what, style="bold"), 10)]
    model, train = (sec if isinstance(sec := config.get(k), dict) else {} for k in ("model", "train"))
    facts = [f"{k} {_num(model[k])}" for k in ("hidden", "layers") if k in model]
    facts += [f"{k} {_num(train[k])}" for k in ("optimizer", "lr") if k in train]
    if params:
        facts.append(f"{params / 1e6:.3g}M params" if params >= 1e5 else f"{params:,} params")
    segs += [(Text(printable(f, 60), style="dim"), 5) for f in facts]  # the later go first
    if device:
        segs.append((Text(printable(device, 40), style="dim"), 1))
    return segs


def progress_bar(done: int, total: int, width: int) -> Text:
    """Rich's progress bar, ``width`` cells wide, as a Text (styled as Rich styles its bars)."""
    console = Console(file=io.StringIO(), width=max(width, 1), color_system="truecolor", force_terminal=True,
                      legacy_windows=False)
    bar = ProgressBar(total=max(total, 1), completed=min(max(done, 0), total), width=width)
    out = Text()
    for seg in console.render(bar, console.options.update(width=width)):
        if seg.text and not seg.control:
            out.append(seg.text, seg.style)
    return out


def progress_segments(step: int, total: int, pace: Pace, *, elapsed: float | None, running: bool) -> list[Segment]:
    """The progress part of a line, most useful first: the step (of the total), the ETA, tok/s, elapsed,
    steps/s. The bar is not among them: :func:`with_bar` gives it whatever room the fitted line leaves."""
    segs: list[Segment] = [(Text(f"step {step}/{total}" if total else f"step {step}"), 10)]
    if running and total:
        segs.append((Text(f"ETA {fmt_duration(pace.eta_s(total - step))}"), 8))
    tps = pace.tokens_per_s()
    if tps is not None:
        segs.append((Text(f"{tps:,.0f} tok/s"), 5))
    if elapsed is not None and math.isfinite(elapsed):
        segs.append((Text(f"elapsed {fmt_duration(max(0.0, elapsed))}", style="dim"), 4))
    rate = pace.steps_per_s()
    if rate is not None:
        segs.append((Text(f"{rate:.3g} steps/s" if rate < 100 else f"{rate:,.0f} steps/s", style="dim"), 2))
    return segs


def fit_with_bar(segments: list[Segment], width: int, done: int, total: int, sep: str = "  ") -> Text:
    """Fit ``segments`` (the first one the step) to ``width`` with a progress bar after the step: the bar
    competes for room at :data:`BAR_PRIORITY` at its smallest, then takes what the fitted line leaves (up to
    :data:`BAR_MAX`). No bar without a total or a width."""
    if not total or not segments or width <= 0:
        return join(fit_segments(segments, width, sep), width, sep)
    slot = Text(" " * BAR_MIN)
    kept = fit_segments([segments[0], (slot, BAR_PRIORITY), *segments[1:]], width, sep)
    at = next((i for i, (t, _) in enumerate(kept) if t is slot), None)
    if at is not None:
        room = min(BAR_MIN + width - width_of(kept, sep), BAR_MAX)
        kept[at] = (progress_bar(done, total, room), BAR_PRIORITY)
    return join(kept, width, sep)
