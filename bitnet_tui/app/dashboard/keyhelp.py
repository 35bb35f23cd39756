"""The dashboard's own help screen (``?``, and the palette's "Keys"): every key of the current mode, one line each.

The lines come from the one table of keys and palette commands (:mod:`.keys`): a key is listed where it does
something in this mode (live, replay, watch, attach), the way the footer decides it, and a key that works in
this mode but not at this moment (the run has ended) says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from bitnet_tui.app.dashboard.keys import BINDINGS, PALETTE
from bitnet_tui.app.dashboard.progress import PACE_STEPS, TOKENS_STEPS

KEY_NAMES = {"left_square_bracket": "[", "right_square_bracket": "]", "space": "space", "home": "Home", "end": "End",
             "ctrl+c": "Ctrl+C", "question_mark": "?"}
MODES = {"live": "a live run", "attach": "a run attached from another process", "replay": "a replay",
         "watch": "watch (read-only)"}

BY_MODE = {
    ("quit_run", "live"): "stop the run (a checkpoint, run_ended) and quit; asks once",
    ("quit_run", "attach"): "detach: close the dashboard; the run keeps training",
    ("interrupt", "live"): "end the run now (a checkpoint, run_ended interrupted, exit 130)",
    ("interrupt", "attach"): "detach: close the dashboard; the run keeps training",
    ("quit_run", "replay"): "quit", ("interrupt", "replay"): "quit",
    ("quit_run", "watch"): "quit (the run goes on)", ("interrupt", "watch"): "quit (the run goes on)",
    ("toggle_pause", "live"): "pause / resume training", ("toggle_pause", "attach"): "pause / resume training",
    ("toggle_pause", "replay"): "pause / resume playback",
    **{("next_mark", m): "highlight the next alert or intervention" for m in ("live", "attach", "watch")},
    **{("prev_mark", m): "highlight the previous alert or intervention" for m in ("live", "attach", "watch")},
    ("next_mark", "replay"): "seek to the next alert or intervention",
    ("prev_mark", "replay"): "seek to the previous alert or intervention",
}
"""Where a key's line depends on the mode."""


def _keys(binding: Binding) -> str:
    return ", ".join(KEY_NAMES.get(k.strip(), k.strip()) for k in binding.key.split(","))


def _palette_lines() -> dict[str, str]:
    """Action (with its arguments, as a binding writes it) -> the palette's one line, its key prefix dropped."""
    out: dict[str, str] = {}
    for name, args, _title, text in PALETTE:
        call = f"{name}({', '.join(repr(a) for a in args)})" if args else name
        words = text.split(": ", 1)[1] if ": " in text else text
        out.setdefault(call, words)
        out.setdefault(name, words)
    return out


def key_lines(mode: str, why_not: Callable[[str], str | None]) -> list[tuple[str, str]]:
    """(keys, what they do) of every key that works in ``mode``. ``why_not(action)``: "" where it works now, a
    reason where it works in this mode but not now (said after the line), None where this mode has no use for it
    (left out)."""
    helps = _palette_lines()
    lines: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for b in BINDINGS:
        name = b.action.split("(", 1)[0]
        reason = why_not(name)
        if reason is None or (b.key, name) in seen:
            continue
        seen.add((b.key, name))
        text = helps.get(b.action.replace('"', "'"), helps.get(name, b.description))
        text = BY_MODE.get((name, mode), text)
        if reason:
            text += f" (not now: {reason})"
        lines.append((_keys(b), text))
    return lines


class KeysScreen(ModalScreen[None]):
    """Every key of the current mode, one line each; Esc or q closes it."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("q", "close", "Close", show=False),
                Binding("question_mark", "close", "Close", show=False)]

    def __init__(self, mode: str, lines: list[tuple[str, str]], **kw: Any) -> None:
        super().__init__(**kw)
        self.mode = mode
        self.lines = lines

    def compose(self) -> ComposeResult:
        t = Table(box=None, pad_edge=False, show_header=False, padding=(0, 2, 0, 0), expand=True)
        t.add_column("key", no_wrap=True, style="bold")
        t.add_column("what", ratio=1, overflow="fold")
        for keys, text in self.lines:
            t.add_row(Text(keys), Text(text))
        note = Text(f"\nETA and steps/s: mean step time over the last {PACE_STEPS} steps, pauses left out; "
                    f"tok/s: median of the last {TOKENS_STEPS} steps.", style="dim")
        with VerticalScroll(classes="dialog", id="keys-help") as box:
            box.border_title = f"Keys: {MODES.get(self.mode, self.mode)}"
            box.border_subtitle = "Esc or q closes"
            yield Static(t)
            yield Static(note)

    def action_close(self) -> None:
        self.dismiss(None)
