"""The header's three lines, fitted to the terminal: what matters most is never the part that is cut.

Each line is a list of segments with a priority (:mod:`.fitting`); when a line is too wide, the least important
segment goes first (the device before the ETA before the step), and a long session name loses its start-time
prefix. The second line is the run's progress (:func:`progress_line`).
"""

from __future__ import annotations

import math

from rich.text import Text

from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.app.dashboard.fitting import ESSENTIAL, Segment, fit
from bitnet_tui.app.dashboard.progress import fit_with_bar
from bitnet_tui.app.dashboard.system import header_figure
from bitnet_tui.session.log.paths import short_name
from bitnet_tui.session.text import fmt_num, printable

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


def render_header(feed: Feed, mode: str, extra: Text | None = None, width: int = 0, alarm: str = "") -> Text:
    """Three lines (``\\n``-joined): who and in what state; progress and speed; the last alert and change.
    ``alarm``: a condition that makes the figures stale (the run not answering, its log silent): shown on the
    first line, never dropped, and the speed and ETA are left out. ``width`` 0: nothing dropped (tests that read
    every part)."""
    w = width or 10_000
    name = feed.run_name
    one: list[Segment] = [(Text(f" {mode.upper()} ", style="reverse bold"), 10)]
    label = STATE_LABELS.get(feed.state, printable(feed.state, 40)) if feed.header else "starting"
    one.append((Text(f" {label} ", style=STATE_STYLES.get(feed.state, "bold")), 10))
    if feed.paused:
        one.append((Text(" PAUSED ", style="reverse"), ESSENTIAL))
    if alarm:
        one.append((Text(f" {printable(alarm, 80)} ", style="bold white on red"), ESSENTIAL))
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

    line2 = progress_line(feed, extra, w, stale=bool(alarm))

    three: list[Segment] = []
    a, i = feed.last_alert, feed.last_intervention
    if feed.pending.items:
        three.append((pending_mark(feed.pending.labels()), ESSENTIAL))
    if a is None and i is None and not feed.pending.items:
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


def progress_line(feed: Feed, extra: Text | None, width: int, stale: bool = False) -> Text:
    """The header's second line: the step of the total and a progress bar, the loss and LR, the view's notice
    (``extra``), the ETA, tok/s, elapsed, steps/s, |g| and the device, fitted to ``width`` in that order of
    importance (the device goes first). ``stale``: the run is not answering or its log is silent, so the pace
    figures (ETA, tok/s, steps/s) would be old news and are left out."""
    starting = feed.starting()
    if starting is not None:  # the first paint: what the run is doing and what it is, never a placeholder
        return Text(" ") + fit(starting + ([(extra, 8)] if extra is not None and extra.plain else []), width - 1)
    step, *pace = feed.progress()
    segs: list[Segment] = [step]
    if math.isfinite(feed.loss):
        segs.append((Text(f"loss {feed.loss:.3f}"), 9))
    if math.isfinite(feed.lr):
        segs.append((Text(f"lr {fmt_num(float(f'{feed.lr:.3g}'))}"), 9))
    if extra is not None and extra.plain:
        segs.append((extra, 8))
    if not stale:
        segs += pace
    if math.isfinite(feed.grad_norm):
        segs.append((Text(f"|g| {feed.grad_norm:.3g}"), 3))
    segs.append((Text(feed.device, style="dim"), 1))
    return Text(" ") + fit_with_bar(segs, width - 1, feed.step, feed.total_steps)


def pending_mark(labels: list[str]) -> Text:
    """Commands sent and not yet applied: the run applies them at its next step boundary."""
    t = Text("⧗ pending until the next step: ", style="bold cyan")
    t.append(", ".join(labels), style="bold")
    return t
