"""The dashboard's text panels: header, timeline, samples, configuration.

Text that came from events is only ever put into ``rich.text.Text`` objects after
:func:`~bitnet_tui.session.text.printable`, never into markup; numbers go through
:func:`~bitnet_tui.session.text.fmt_num` / :func:`~bitnet_tui.session.text.fmt_value`.
"""

from __future__ import annotations

import json
import math
from pathlib import PurePath
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from bitnet_tui.app.dashboard.body import BodyPanel
from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.app.dashboard.header import LEVEL_STYLES, glyph, render_header
from bitnet_tui.session.log.events import Alert, CheckpointSaved, Event, Intervention, RunEnded
from bitnet_tui.session.text import fmt_value, printable, safe_text

__all__ = ["ConfigPanel", "HeaderBar", "SamplesPanel", "Timeline", "render_header", "render_samples",
           "timeline_row", "LEVEL_STYLES"]


class HeaderBar(Static):
    """Run name, mode, detector state, progress, speed, ETA, device, pause/end notices: fitted to the width."""

    def __init__(self, mode: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mode = mode
        self._drawn: tuple[Any, ...] = ()

    def update_from(self, feed: Feed, extra: Text | None = None, force: bool = False, alarm: str = "") -> bool:
        width = self.size.width or self.app.size.width
        key = (feed.versions["header"], extra.plain if extra is not None else "", width, alarm)
        if key == self._drawn and not force:
            return False
        self._drawn = key
        self.update(Group(*render_header(feed, self.mode, extra, width, alarm).split("\n")))
        return True

    def on_resize(self) -> None:
        self._drawn = ()


def _shown(v: Any) -> str:
    if isinstance(v, float):
        return fmt_value(v)
    return "—" if v is None else printable(v, 60)


def timeline_row(item: Any, ev: Event | None) -> tuple[str, Text, Text]:
    """(step, what, detail) of one timeline entry: the new value of an LR change first, never cut off by a
    long prefix; a checkpoint by its file name."""
    step = str(item.step)
    if isinstance(ev, Intervention):
        action = printable(ev.action, 40)
        detail = Text()
        if (ev.old, ev.new) != (None, None) and not (ev.old in ("", "-") and ev.new in ("", "-")):
            detail.append(_shown(ev.new), style="bold")
            detail.append(f" (was {_shown(ev.old)})")
        detail.append(f"{'  ' if detail.plain else ''}by {printable(ev.source, 60)}", style="dim")
        return step, Text(f"⚙ {action}"), detail
    if isinstance(ev, Alert):
        return step, Text(f"{glyph(item.level)} {printable(ev.level, 20)}", style=LEVEL_STYLES.get(item.level, "")), \
            Text(item.text)
    if isinstance(ev, CheckpointSaved):
        name = printable(PurePath(str(ev.path)).name, 120)
        return step, Text("checkpoint"), Text(f"{name}{' (kept)' if ev.pinned else ''}")
    if isinstance(ev, RunEnded):
        style = "" if item.level == "info" else LEVEL_STYLES["error"]
        return step, Text("end", style=style), Text(item.text.removeprefix("run ended: "), style=style)
    return step, Text(printable(item.kind, 20)), Text(item.text)


class Timeline(VerticalScroll):
    """Alerts, interventions, checkpoints and the end of the run, newest last; details wrap, never cut.

    ``n``/``N`` in a live run or watch move the highlight (replay seeks instead)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._drawn: tuple[int, int, int] = (-1, -1, -1)
        self.row_count = 0
        self.cursor: int | None = None
        self._body = Static(Text("no alerts or interventions yet", style="dim"))

    def compose(self) -> Any:
        yield self._body

    def update_from(self, feed: Feed, force: bool = False) -> bool:
        key = (id(feed), feed.versions["timeline"], -1 if self.cursor is None else self.cursor)
        if key == self._drawn and not force:
            return False
        if key[0] != self._drawn[0]:
            self.cursor = None
        self._drawn = key
        items = feed.timeline
        self.row_count = len(items)
        if not items:
            self._body.update(Text("no alerts or interventions yet", style="dim"))
            return True
        t = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0), expand=True, header_style="bold")
        t.add_column("step", justify="right", no_wrap=True)
        t.add_column("what", no_wrap=True)
        t.add_column("detail", ratio=1, overflow="fold")
        events = feed.marked if len(feed.marked) == len(items) else [None] * len(items)
        for i, (item, ev) in enumerate(zip(items, events)):
            row = timeline_row(item, ev)
            t.add_row(*row, style="reverse" if i == self.cursor else None)
        at_end = self.scroll_y >= self.max_scroll_y - 1
        self._body.update(t)
        if self.cursor is not None:
            self.call_after_refresh(self.scroll_to, y=max(0, self.cursor - 2), animate=False)
        elif at_end:
            self.call_after_refresh(self.scroll_end, animate=False)
        return True

    def move(self, feed: Feed, delta: int) -> bool:
        """Highlight the next (``delta`` 1) or previous (-1) entry; False at the end."""
        n = len(feed.timeline)
        if not n:
            return False
        cur = (n if delta > 0 else -1) if self.cursor is None else self.cursor
        if self.cursor is None and delta > 0:
            cur = -1  # from the top
        nxt = cur + delta
        if not 0 <= nxt < n:
            return False
        self.cursor = nxt
        self.update_from(feed, force=True)
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
        append_prose(out, sample)
        out.append("\n")
    out.rstrip()
    return out


def append_prose(out: Text, sample: str, limit: int = 400) -> None:
    """Generated text as prose: spaces stay spaces, a newline is a dim ``↵`` (then the text goes on, so a
    sample keeps its one numbered paragraph) and a tab a dim ``⇥``; other controls are escaped as usual."""
    for i, part in enumerate(safe_text(sample, limit=limit).split("\n")):
        if i:
            out.append("↵ ", style="dim")
        for j, chunk in enumerate(part.split("\t")):
            if j:
                out.append("⇥ ", style="dim")
            out.append(chunk)


def repr_token(tok: str) -> str:
    """A token made visible: spaces shown as ␣, a newline as ↵, a tab as ⇥, other controls escaped."""
    return printable(tok.replace("\n", "↵").replace("\t", "⇥"), 40).replace(" ", "␣") or "∅"


def config_lines(feed: Feed) -> Text:
    """The run's full configuration and identity, one ``key  value`` line each, literally."""
    h = feed.header
    if h is None:
        return Text("no run_started yet", style="dim")
    out = Text()

    def section(title: str, items: Any) -> None:
        rows = list(_flat(items))
        if not rows:
            return
        out.append(f"{title}\n", style="bold")
        width = min(36, max(len(k) for k, _ in rows))
        for k, v in rows:
            out.append(f"  {k:<{width}}", style="dim")
            out.append(f"  {v}\n")

    section("config", feed.config)
    section("run", {"name": h.run_name, "device": h.device, "params": h.params, "vocab_size": h.vocab_size,
                    "ln_vocab": h.ln_vocab, "unigram_entropy": h.unigram_entropy, "total_steps": h.total_steps,
                    "source": h.source, "parent": h.parent, "schema": h.schema})
    for title, part in (("optimizer", h.optimizer), ("corpus", h.corpus), ("tokenizer", h.tokenizer),
                        ("world", h.world), ("versions", h.versions)):
        section(title, part if isinstance(part, dict) else {})
    if h.argv:
        out.append("command line\n", style="bold")
        out.append("  " + " ".join(printable(a, 300) for a in h.argv) + "\n")
    out.rstrip()
    return out


def _flat(d: Any, prefix: str = "") -> Any:
    if not isinstance(d, dict):
        return
    for k, v in d.items():
        key = printable(f"{prefix}{k}", 80)
        if isinstance(v, dict) and v:
            yield from _flat(v, f"{prefix}{k}.")
        elif isinstance(v, (list, tuple, dict)):
            yield key, printable(json.dumps(v, ensure_ascii=True, default=str), 400)
        elif v is None or (isinstance(v, float) and not math.isfinite(v)):
            yield key, fmt_value(v)
        else:
            yield key, printable(v if isinstance(v, str) else json.dumps(v), 400)


class ConfigPanel(BodyPanel):
    """The run's configuration as logged (``run_started``): every knob, the corpus, tokenizer and versions."""

    part = "config"

    draw = staticmethod(config_lines)
