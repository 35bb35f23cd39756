"""The dashboard's panels and dialogs.

Every panel has ``update_from(feed)``: it compares the feed's version counter
for its data with the one it last drew and does nothing when they match, so a
tick that brought only step events redraws the loss and LR plots and nothing
else. Text that came from events is only ever put into ``rich.text.Text``
objects after :func:`~bitnet_tui.feed.printable`, never into markup.
"""

from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, OptionList, Static
from textual.widgets.option_list import Option
from textual_plotext import PlotextPlot

from bitnet_tui.feed import Feed, Series, fmt_duration, printable

MAX_LR = 1.0
"""Set-LR refuses values at or above this (the trainer checks the same bound)."""


def parse_lr(raw: str) -> tuple[float | None, str]:
    """(value, "") for an acceptable learning rate, else (None, one sentence saying why not)."""
    s = raw.strip()
    if not s:
        return None, "Type a learning rate, e.g. 5e-4."
    try:
        v = float(s)
    except ValueError:
        return None, f"{printable(s, 40)!s} is not a number; type e.g. 5e-4."
    if not math.isfinite(v):
        return None, "The learning rate must be a finite number."
    if v <= 0:
        return None, "The learning rate must be positive."
    if v >= MAX_LR:
        return None, f"The learning rate must be below {MAX_LR:g}."
    return v, ""


# --------------------------------------------------------------------------- plots


class FeedPlot(PlotextPlot):
    """A plot that redraws only when its feed key's version moved, and at most once per ``MIN_REDRAW_S``:
    a redraw costs CPU the training thread would otherwise have."""

    KEY = ""
    MIN_REDRAW_S = 1.0
    CPU_SHARE = 0.01
    """A plot redraws at most this share of the time: its measured render cost sets the interval."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._drawn = -1
        self._drawn_at = -math.inf
        self._render_s = 0.0

    def render(self) -> Any:
        t = time.perf_counter()
        out = super().render()
        self._render_s = 0.8 * self._render_s + 0.2 * (time.perf_counter() - t)
        return out

    def update_from(self, feed: Feed, force: bool = False) -> bool:
        v = feed.versions[self.KEY]
        if v == self._drawn and not force:
            return False
        now = time.monotonic()
        interval = max(self.MIN_REDRAW_S, self._render_s / self.CPU_SHARE)
        if not force and now - self._drawn_at < interval:
            return False  # drawn on a later tick
        self._drawn, self._drawn_at = v, now
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        self.draw(feed, plt)
        self.refresh()
        return True

    def draw(self, feed: Feed, plt: Any) -> None:  # pragma: no cover - every panel defines its own
        """Put the feed's series on ``plt`` (a cleared plotext figure). Each plot panel overrides this."""
        raise TypeError(f"{type(self).__name__} does not define draw()")


def _span(*series: Series) -> tuple[float, float] | None:
    xs = [s.x[0] for s in series if s.x] + [s.last_x for s in series if s.last_x is not None]
    if not xs:
        return None
    lo, hi = min(xs), max(xs)
    return (lo, hi if hi > lo else lo + 1)


def _no_data(plt: Any, what: str) -> None:
    plt.title(f"{what}: no data yet")


FORK_COLOR = "green"


def _mark_fork(feed: Feed, plt: Any, y: float) -> None:
    """A vertical line at the step this session was forked or resumed from, with a legend entry."""
    parent = feed.parent
    if parent is None:
        return
    relation, _, step = parent
    plt.vline(step, FORK_COLOR)
    plt.plot([step], [y], label=f"{relation} @{step}", color=FORK_COLOR, marker="|")


class LossPlot(FeedPlot):
    KEY = "loss"

    def draw(self, feed: Feed, plt: Any) -> None:
        span = _span(feed.train_loss, feed.val_loss)
        if span is None:
            _no_data(plt, "loss")
            return
        x0, x1 = span
        if feed.ln_vocab is not None:
            plt.plot([x0, x1], [feed.ln_vocab] * 2, label=f"ln V {feed.ln_vocab:.2f}", color="gray")
        if feed.unigram_entropy is not None:
            plt.plot([x0, x1], [feed.unigram_entropy] * 2, label=f"unigram {feed.unigram_entropy:.2f}", color="orange")
        if feed.train_loss.x:
            plt.plot(feed.train_loss.x, feed.train_loss.mean, label="train", color="blue")
        if feed.val_loss.x:
            plt.plot(feed.val_loss.x, feed.val_loss.mean, label="held-out", color="magenta", marker="dot")
        _mark_fork(feed, plt, feed.train_loss.mean[-1] if feed.train_loss.mean else feed.ln_vocab or 0.0)
        plt.xlabel("step")


class UniquePlot(FeedPlot):
    KEY = "unique"

    def draw(self, feed: Feed, plt: Any) -> None:
        s = feed.unique
        if not s.x:
            _no_data(plt, "unique tokens")
            return
        x0, x1 = _span(s) or (0, 1)
        th = feed.thresholds()
        for key, label, color in (
            ("recovered_unique", "recovered ≥", "green"),
            ("collapsing_unique", "collapsing ≤", "yellow"),
            ("collapse_unique", "collapsed ≤", "red"),
        ):
            plt.plot([x0, x1], [th[key]] * 2, label=f"{label}{th[key]}", color=color)
        plt.plot(s.x, s.mean, label="unique", color="cyan", marker="dot")
        top = max(max(s.hi), th["recovered_unique"]) * 1.1
        plt.ylim(0, top)
        plt.xlabel("step")


class LRPlot(FeedPlot):
    KEY = "lr"

    def draw(self, feed: Feed, plt: Any) -> None:
        s = feed.lr_series
        if not s.x:
            _no_data(plt, "learning rate")
            return
        plt.plot(s.x, s.mean, label="lr", color="blue")
        w = feed.wd_series
        if w.x:
            plt.plot(w.x, w.mean, label="wd (right)", color="orange", yside="right")
        # One marker per intervention; many close together collapse to one column anyway.
        marks = sorted({step for step, _ in feed.interventions})
        if len(marks) > 200:
            marks = marks[:: math.ceil(len(marks) / 200)]
        for step in marks:
            plt.vline(step, "red")
        if marks:
            plt.plot([marks[0]], [s.mean[-1] if s.mean else 0], label="intervention", color="red", marker="|")
        _mark_fork(feed, plt, s.mean[-1] if s.mean else 0.0)
        plt.xlabel("step")


class WeightsPlot(FeedPlot):
    KEY = "weights"

    def draw(self, feed: Feed, plt: Any) -> None:
        z = feed.zero_mean
        if not z.x:
            _no_data(plt, "ternary weights")
            return
        many = len(feed.last_weights.layers) > 1 if feed.last_weights else False
        plt.plot(z.x, z.mean, label="zero frac" + (" (mean)" if many else ""), color="blue")
        if many:
            plt.plot(feed.zero_lo.x, feed.zero_lo.mean, label="min/max", color="gray")
            plt.plot(feed.zero_hi.x, feed.zero_hi.mean, color="gray")
        f = feed.flip_mean
        if f.x:
            plt.plot(f.x, f.mean, label="flip rate (right)", color="red", yside="right")
        plt.xlabel("step")


# --------------------------------------------------------------------------- text panels


class TernaryTable(Static):
    """The -1/0/+1 split of each BitLinear layer at the latest snapshot."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._drawn = -1

    def update_from(self, feed: Feed, force: bool = False) -> bool:
        v = feed.versions["weights"]
        if v == self._drawn and not force:
            return False
        self._drawn = v
        w = feed.last_weights
        if w is None or not w.layers:
            self.update(Text("no weight snapshot yet", style="dim"))
            return True
        t = Table.grid(padding=(0, 1), expand=True)
        t.add_column("layer", no_wrap=True, overflow="ellipsis", ratio=1, min_width=8)
        for _ in range(3):
            t.add_column(justify="right", no_wrap=True, min_width=3)
        t.add_column(no_wrap=True)
        t.add_column(justify="right", no_wrap=True)
        t.add_row(*(Text(h, style="bold") for h in ("layer", "-1%", "0%", "+1%", "split", "flip")))
        layers = w.layers
        if len(layers) > 12:  # keep the table short: the first and last layers and a count
            shown = list(layers[:6]) + [None] + list(layers[-5:])
        else:
            shown = list(layers)
        for lw in shown:
            if lw is None:
                t.add_row(Text(f"… {len(layers) - 11} more", style="dim"), "", "", "", "", "")
                continue
            t.add_row(
                Text(printable(lw.name, 80)),
                _pct(lw.neg),
                _pct(lw.zero),
                _pct(lw.pos),
                _split_bar(lw.neg, lw.zero, lw.pos, 10),
                "-" if not math.isfinite(lw.flip_rate) else f"{lw.flip_rate:.3f}",
            )
        self.update(t)
        return True


def _pct(x: float) -> str:
    return f"{100 * x:.0f}" if math.isfinite(x) else "-"


def _split_bar(neg: float, zero: float, pos: float, width: int) -> Text:
    vals = [max(0.0, x) if math.isfinite(x) else 0.0 for x in (neg, zero, pos)]
    tot = sum(vals) or 1.0
    n = [int(round(width * v / tot)) for v in vals]
    n[1] = max(0, width - n[0] - n[2])
    return Text("-" * n[0], style="bold red") + Text("0" * n[1], style="dim") + Text("+" * n[2], style="bold green")


class Timeline(DataTable):
    """Alerts, interventions, checkpoints and the end of the run, newest last."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._shown = 0
        self._drawn = -1
        self._feed_id = 0

    def on_mount(self) -> None:
        self.add_columns("step", "what", "detail")

    def update_from(self, feed: Feed, force: bool = False) -> bool:
        v = feed.versions["timeline"]
        if id(feed) != self._feed_id or force:  # a rebuilt feed (replay seek backwards)
            self.clear()
            self._shown = 0
            self._feed_id = id(feed)
        elif v == self._drawn:
            return False
        self._drawn = v
        entries = feed.timeline
        for e in entries[self._shown :]:
            style = LEVEL_STYLES.get(e.level, "") if e.kind == "alert" else ""
            what = e.kind if e.kind != "alert" else f"alert {e.level}"
            self.add_row(Text(str(e.step)), Text(what, style=style), Text(e.text))
        self._shown = len(entries)
        if entries:
            self.move_cursor(row=len(entries) - 1, animate=False, scroll=True)
        return True


class SamplesPanel(Static):
    """Latest greedy continuations and the most frequent generated tokens."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._drawn = -1

    def update_from(self, feed: Feed, force: bool = False) -> bool:
        v = feed.versions["samples"]
        if v == self._drawn and not force:
            return False
        self._drawn = v
        self.update(render_samples(feed))
        return True


def render_samples(feed: Feed) -> Text:
    e = feed.last_eval
    if e is None:
        return Text("no eval yet", style="dim")
    out = Text()
    out.append(f"step {e.step}", style="bold")
    out.append(f"  unique {e.unique_tokens}/{e.generated_tokens}  distinct-2 {e.distinct2:.2f}  "
               f"top share {e.top_share:.2f}  held-out {e.val_loss:.3f}\n")
    out.append("top tokens: ", style="bold")
    for i, (tok, count) in enumerate(e.top_tokens[:8]):
        if i:
            out.append("  ")
        out.append(repr_token(tok), style="reverse")
        out.append(f" {count}")
    out.append("\n")
    for i, sample in enumerate(e.samples[:8]):
        prompt = e.prompts[i] if i < len(e.prompts) else ""
        out.append(f"{i + 1}. ", style="bold")
        if prompt:
            out.append(printable(prompt, 200), style="dim")
            out.append(" ⟩ ", style="dim")
        out.append(printable(sample, 400))
        out.append("\n")
    out.rstrip()
    return out


def repr_token(tok: str) -> str:
    """A token made visible: spaces shown as ␣, controls escaped."""
    return printable(tok, 40).replace(" ", "␣") or "∅"


class HeaderBar(Static):
    """Run name, mode, detector state, progress, speed, ETA, device, pause/end notices."""

    def __init__(self, mode: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = mode
        self._drawn: tuple[Any, ...] = ()

    def update_from(self, feed: Feed, extra: Text | None = None, force: bool = False) -> bool:
        key = (feed.versions["header"], extra.plain if extra is not None else "")
        if key == self._drawn and not force:
            return False
        self._drawn = key
        lines = render_header(feed, self.mode, extra).split("\n")
        for line in lines:
            line.no_wrap = True
            line.overflow = "ellipsis"
        self.update(Group(*lines))
        return True


STATE_STYLES = {
    "healthy": "bold green",
    "recovered": "bold green",
    "collapsing": "bold yellow",
    "collapsed": "bold white on red",
    "recovering": "bold cyan",
    "not_learning": "dim",
    "unigram": "dim",
    "": "dim",
}


def render_header(feed: Feed, mode: str, extra: Text | None = None) -> Text:
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(f" {mode.upper()} ", style="reverse bold")
    t.append(" ")
    t.append(feed.run_name, style="bold")
    parent = feed.parent
    if parent is not None:
        relation, name, step = parent
        t.append(f"  {relation} from ", style="dim")
        t.append(f"{name}@{step}", style="bold")
    t.append("  ")
    t.append(f" {feed.state_label} ", style=STATE_STYLES.get(feed.state, "bold"))
    if feed.paused:
        t.append("  ")
        t.append(" PAUSED ", style="reverse")
    if feed.ended is not None:
        t.append("  ")
        style = "bold red" if feed.ended.reason == "error" else "bold"
        t.append(f"run ended: {printable(feed.ended.reason, 40)}", style=style)
    t.append("\n")
    total = f"/{feed.total_steps}" if feed.total_steps else ""
    t.append(f" step {feed.step}{total}")
    if math.isfinite(feed.loss):
        t.append(f"  loss {feed.loss:.3f}")
    if math.isfinite(feed.lr):
        t.append(f"  lr {feed.lr:.3g}")
    if math.isfinite(feed.tokens_per_s):
        t.append(f"  {feed.tokens_per_s:,.0f} tok/s")
    if feed.ended is None:
        t.append(f"  ETA {fmt_duration(feed.eta_s())}")
    t.append(f"  {feed.device}", style="dim")
    if extra is not None and extra.plain:
        t.append("  ")
        t.append_text(extra)
    t.append("\n")
    a, i = feed.last_alert, feed.last_intervention
    if a is None and i is None:
        t.append(" no alerts or interventions yet", style="dim")
    if a is not None:
        t.append(" ⚠ ", style=LEVEL_STYLES.get(a.level, "bold"))
        t.append(f"@{a.step} ", style="dim")
        t.append(a.short or a.text, style=LEVEL_STYLES.get(a.level, ""))
    if i is not None:
        t.append("   ⚙ ", style="bold")
        t.append(f"@{i.step} ", style="dim")
        t.append(i.short or i.text)
    return t


LEVEL_STYLES = {"error": "bold red", "warning": "bold yellow", "info": "bold"}


# --------------------------------------------------------------------------- dialogs


class LRDialog(ModalScreen[float | None]):
    """Ask for a new learning rate; refuse anything the trainer would refuse."""

    AUTO_FOCUS = "Input"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: float) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            now = f"{self.current:.3g}" if math.isfinite(self.current) else "unknown"
            yield Label(f"New learning rate (now {now}); Enter to apply, Esc to cancel")
            yield Input(placeholder="e.g. 5e-4", id="lr-input")
            yield Label("", id="lr-error", classes="error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value, why = parse_lr(event.value)
        if value is None:
            self.query_one("#lr-error", Label).update(Text(why))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class RewindDialog(ModalScreen[tuple[int, float] | None]):
    """Pick a checkpoint of the current run and a new learning rate: the run is forked from there."""

    AUTO_FOCUS = "Input"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, steps: list[int], current: float) -> None:
        super().__init__()
        self.steps = list(steps)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Rewind: fork this run from a checkpoint with a new learning rate")
            yield OptionList(*(Option(Text(f"step {s}"), id=f"step-{s}") for s in self.steps),
                             id="rewind-checkpoints", markup=False)
            now = f"{self.current:.3g}" if math.isfinite(self.current) else "unknown"
            yield Label(f"New learning rate (now {now}); Enter to fork, Esc to cancel")
            yield Input(placeholder="e.g. 5e-4", id="rewind-lr")
            yield Label("", id="rewind-error", classes="error")

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = len(self.steps) - 1

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value, why = parse_lr(event.value)
        if value is None:
            self.query_one("#rewind-error", Label).update(Text(why))
            return
        index = self.query_one(OptionList).highlighted
        if index is None or not 0 <= index < len(self.steps):
            self.query_one("#rewind-error", Label).update(Text("Pick a checkpoint to fork from."))
            return
        self.dismiss((self.steps[index], value))

    def action_cancel(self) -> None:
        self.dismiss(None)


class StepDialog(ModalScreen[int | None]):
    """Ask for a step to seek to."""

    AUTO_FOCUS = "Input"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, last: int) -> None:
        super().__init__()
        self.last = last

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Go to step (0 to {self.last}); Enter to go, Esc to cancel")
            yield Input(placeholder="step", id="step-input")
            yield Label("", id="step-error", classes="error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        s = event.value.strip().replace("_", "").replace(",", "")
        try:
            v = int(s)
        except ValueError:
            self.query_one("#step-error", Label).update(Text("Type a whole number of steps."))
            return
        if v < 0:
            self.query_one("#step-error", Label).update(Text("The step must be 0 or more."))
            return
        self.dismiss(v)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question; y/Enter confirm, n/Esc cancel."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question)
            yield Button("Yes (y)", id="yes", variant="error")
            yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
