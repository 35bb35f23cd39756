"""The dashboard's dialogs: set the LR, rewind to a checkpoint, go to a step, confirm."""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList
from textual.widgets.option_list import Option

from bitnet_model.train.config import ConfigError, RunConfig
from bitnet_model.train.schedule import next_peak
from bitnet_tui.session.control.commands import check_lr, check_wd
from bitnet_tui.session.text import fmt_value, printable


def parse_lr(raw: str) -> tuple[float | None, str]:
    """(value, "") for an acceptable learning rate, else (None, one sentence saying why not)."""
    s = raw.strip()
    if not s:
        return None, "Type a learning rate, e.g. 5e-4."
    try:
        return check_lr(s), ""
    except ConfigError as e:
        return None, printable(str(e)[:1].upper() + str(e)[1:] + ".", 200)


def _train(feed: Any) -> Any:
    try:
        return RunConfig.from_dict(feed.config).train if feed.config.get("train") else None
    except (ConfigError, TypeError, ValueError):
        return None


def lr_outlook(feed: Any) -> str:
    """What a typed LR will do, in words: the LR now and, during warmup, the schedule's coming peak."""
    now = fmt_value(float(feed.lr)) if math.isfinite(feed.lr) else "unknown"
    text = f"The LR is {now} now."
    train = _train(feed)
    peak = next_peak(feed.step, train) if train is not None else None
    if peak is not None:
        text += (f" The schedule is warming up toward {fmt_value(peak[1])} at step {peak[0]}: a typed LR holds from "
                 "now until then, and the decay after it stays below the typed value.")
    else:
        text += " A typed LR is the LR from now on; the rest of the schedule's decay keeps its shape below it."
    return text + " ×2, ×½ (] [) and undo (u) follow the same rule."


def lr_preview(feed: Any, value: float) -> str:
    """One line on what ``value`` does from the next step: the change against now, and how long it holds."""
    text = f"→ {fmt_value(value)} from step {feed.step + 1}"
    if math.isfinite(feed.lr) and feed.lr > 0:
        text += f" (×{fmt_value(float(f'{value / feed.lr:.3g}'))} the LR now)"
    train = _train(feed)
    peak = next_peak(feed.step, train) if train is not None else None
    if peak is not None:
        return text + f", held through warmup to step {peak[0]}, then decaying below it"
    return text + ", never exceeded later unless you raise it"


class LRDialog(ModalScreen[float | None]):
    """Ask for a new learning rate; refuse anything the trainer would refuse; say what it will do."""

    AUTO_FOCUS = "Input"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, feed: Any) -> None:
        super().__init__()
        self.feed = feed

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(lr_outlook(self.feed)), id="lr-outlook")
            yield Label("New learning rate; Enter to apply, Esc to cancel")
            yield Input(placeholder="e.g. 5e-4", id="lr-input")
            yield Label("", id="lr-preview")
            yield Label("", id="lr-error", classes="error")

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "lr-input":
            return
        value, _ = parse_lr(event.value)
        self.query_one("#lr-preview", Label).update(Text(lr_preview(self.feed, value) if value is not None else ""))
        self.query_one("#lr-error", Label).update(Text(""))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value, why = parse_lr(event.value)
        if value is None:
            self.query_one("#lr-error", Label).update(Text(why))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class WDDialog(ModalScreen[float | None]):
    """Ask for the weight decay of the decayed parameter groups from the next step on (0 stops decay)."""

    AUTO_FOCUS = "Input"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, now: float) -> None:
        super().__init__()
        self.now = now

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(f"weight decay now {fmt_value(self.now)} (the decayed parameter groups)"))
            yield Label("New weight decay; Enter to apply at the next step, Esc to cancel (U undoes it)")
            yield Input(placeholder="e.g. 0.01, or 0", id="wd-input")
            yield Label("", id="wd-error", classes="error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            self.dismiss(check_wd(event.value.strip()))
        except ConfigError as e:
            self.query_one("#wd-error", Label).update(Text(printable(str(e), 200)))

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
            now = fmt_value(float(self.current)) if math.isfinite(self.current) else "unknown"
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
