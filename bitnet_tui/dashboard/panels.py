"""The dashboard's text panels: header, ternary split per layer, timeline, samples.

Text that came from events is only ever put into ``rich.text.Text`` objects after
:func:`~bitnet_model.log.text.printable`, never into markup.
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import DataTable, Static

from bitnet_model.log.text import fmt_duration, fmt_value, printable
from bitnet_tui.dashboard.feed import Feed


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
               f"top share {e.top_share:.2f}  held-out {fmt_value(e.val_loss)}\n")
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


STATE_LABELS = {
    "": "no eval yet", "not_learning": "not learning yet", "unigram": "unigram phase", "healthy": "healthy",
    "collapsing": "collapsing", "collapsed": "collapsed", "recovering": "recovering", "recovered": "recovered",
    "unlearning": "unlearning",
}

STATE_STYLES = {
    "unlearning": "bold white on red",
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
    t.append(f" {STATE_LABELS.get(feed.state, printable(feed.state, 40))} ", style=STATE_STYLES.get(feed.state, "bold"))
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

