"""The header's three lines, fitted to the terminal: what matters most is never the part that is cut.

Each line is a list of segments with a priority; when a line is too wide, the least important segment goes
first (the device before the ETA before the step), and a long session name loses its start-time prefix.
"""

from __future__ import annotations

import math

from rich.text import Text

from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.app.dashboard.system import header_figure
from bitnet_tui.session.log.paths import short_name
from bitnet_tui.session.text import fmt_duration, fmt_num, printable

STATE_LABELS = {
    "": "no eval yet", "not_learning": "not learning yet", "partial": "partly learned", "unigram": "unigram phase",
    "repetitive": "learned, repetitive", "healthy": "healthy",
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
    "partial": "dim",
    "repetitive": "cyan",
    "": "dim",
}

LEVEL_STYLES = {"error": "bold red", "warning": "bold yellow", "info": "bold"}
LEVEL_GLYPHS = {"error": "✖", "warning": "⚠", "info": "•"}
"""An alert's mark is its own severity's: good news (info) never wears the warning sign."""


def glyph(level: str) -> str:
    return LEVEL_GLYPHS.get(level, "•")

Segment = tuple[Text, int]
"""A piece of a header line and its priority (higher stays longer)."""
ESSENTIAL = 10
"""Segments of this priority are never dropped: the mode, the detector state, PAUSED, the run's name, the step."""


def fit(segments: list[Segment], width: int, sep: str = "  ") -> Text:
    """Join ``segments`` with ``sep``, dropping the lowest-priority ones until the line fits ``width`` (the
    essential ones stay; the line is then cut at the end)."""
    segs = [s for s in segments if s[0].plain]

    def total(ss: list[Segment]) -> int:
        return sum(t.cell_len for t, _ in ss) + len(sep) * max(0, len(ss) - 1)

    while width > 0 and total(segs) > width and len(segs) > 1:
        lowest = min(range(len(segs)), key=lambda i: (segs[i][1], -i))
        if segs[lowest][1] >= ESSENTIAL:
            break  # what is left is cut at the end, never dropped
        segs.pop(lowest)
    out = Text(sep).join(t for t, _ in segs)
    out.no_wrap = True
    out.overflow = "ellipsis"
    if width > 0:
        out.truncate(width, overflow="ellipsis")
    return out


def render_header(feed: Feed, mode: str, extra: Text | None = None, width: int = 0) -> Text:
    """Three lines (``\\n``-joined): who and in what state; progress and speed; the last alert and change.
    ``width`` 0: nothing dropped (tests that read every part)."""
    w = width or 10_000
    name = feed.run_name
    one: list[Segment] = [(Text(f" {mode.upper()} ", style="reverse bold"), 10)]
    one.append((Text(f" {STATE_LABELS.get(feed.state, printable(feed.state, 40))} ",
                     style=STATE_STYLES.get(feed.state, "bold")), 10))
    if feed.paused:
        one.append((Text(" PAUSED ", style="reverse"), ESSENTIAL))
    one.append((Text(name, style="bold"), ESSENTIAL))
    parent = feed.parent
    if parent is not None:
        relation, pname, step = parent
        t = Text(f"{relation} from ", style="dim")
        t.append(f"{pname}@{step}", style="bold")
        one.append((t, 4))
    if feed.ended is not None:
        one.append((Text(f"run ended: {printable(feed.ended.reason, 40)}",
                         style="bold red" if feed.ended.reason == "error" else "bold"), 7))
    one.extend(s for s in [header_figure(feed.last_system)] if s is not None)
    line1 = fit(one, w)
    if width and line1.cell_len >= width and name != short_name(name):
        one = [(Text(short_name(name), style="bold"), ESSENTIAL) if s[0].plain == name else s for s in one]
        if parent is not None:
            one = [(Text(f"{parent[0]} from {short_name(parent[1])}@{parent[2]}", style="dim"), 4)
                   if s[1] == 4 else s for s in one]
        line1 = fit(one, w)

    two: list[Segment] = []
    total = f"/{feed.total_steps}" if feed.total_steps else ""
    two.append((Text(f"step {feed.step}{total}"), 10))
    if math.isfinite(feed.loss):
        two.append((Text(f"loss {feed.loss:.3f}"), 9))
    if math.isfinite(feed.lr):
        two.append((Text(f"lr {fmt_num(float(f'{feed.lr:.3g}'))}"), 9))
    if extra is not None and extra.plain:
        two.append((extra, 8))
    if feed.ended is None:
        two.append((Text(f"ETA {fmt_duration(feed.eta_s())}"), 6))
    if math.isfinite(feed.tokens_per_s):
        two.append((Text(f"{feed.tokens_per_s:,.0f} tok/s"), 5))
    if math.isfinite(feed.grad_norm):
        two.append((Text(f"|g| {feed.grad_norm:.3g}"), 3))
    two.append((Text(feed.device, style="dim"), 2))
    line2 = Text(" ") + fit(two, w - 1)

    three: list[Segment] = []
    a, i = feed.last_alert, feed.last_intervention
    if a is None and i is None:
        three.append((Text("no alerts or interventions yet", style="dim"), 1))
    newer_intervention = i is not None and (a is None or (i.step, i.time) >= (a.step, a.time))
    if a is not None:
        t = Text(f"{glyph(a.level)} ", style=LEVEL_STYLES.get(a.level, "bold"))
        t.append(f"@{a.step} ", style="dim")
        t.append(a.short or a.text, style=LEVEL_STYLES.get(a.level, ""))
        three.append((t, 8 if newer_intervention else 9))  # the newer of the two stays when both do not fit
    if i is not None:
        t = Text("⚙ ", style="bold")
        t.append(f"@{i.step} ", style="dim")
        t.append(i.short or i.text)
        three.append((t, 9 if newer_intervention else 8))
    line3 = Text(" ") + fit(three, w - 1, sep="   ")
    return Text("\n").join([line1, line2, line3])
