"""What each plot draws, as plain functions of a feed: the terminal panels (:mod:`.plots`) and the ``plot``
command's image draw the very same lines, thresholds and markers. Nothing here imports textual.

A resumed or forked run shows its parent's history up to the fork, dimmed; the fork is a green line.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from bitnet_tui.app.dashboard.axes import DIM, Axes, View, draw_history
from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.app.dashboard.series import Series, ema
from bitnet_tui.session.text import fmt_num, fmt_value

FORK_COLOR = "green"


def num(v: float) -> str:
    """Three significant digits in the project's number format (``2.5e-4``, ``0.0163``)."""
    return fmt_num(float(f"{v:.3g}"))


def mark_fork(feed: Feed, ax: Axes) -> None:
    """A vertical line at the step this session was forked or resumed from, named in the legend."""
    parent = feed.parent
    if parent is None:
        return
    relation, _, step = parent
    ax.vline(step, FORK_COLOR)
    ax.legend.append((f"{relation} @{step}", FORK_COLOR))


def smoothed(ax: Axes, s: Series, weight: float, color: str, label: str) -> None:
    """A noisy series: raw dimmed under its EMA when smoothing is on, else the raw series in ``color``."""
    if weight > 0 and len(s) > 1:
        ax.line(s.x, s.mean, DIM, legend=False)
        ax.line(s.x, ema(s, weight), color, f"{label} (EMA {fmt_num(weight)})")
    else:
        ax.line(s.x, s.mean, color, label)


def parent_of(feed: Feed) -> tuple[Feed, int] | None:
    """The parent's history and the fork step, when the parent's log could be read."""
    hist, parent = feed.parent_feed, feed.parent
    return (hist, parent[2]) if hist is not None and parent is not None else None


def parent_line(feed: Feed, ax: Axes, pick: Callable[[Feed], Series], smooth: float = 0.0) -> None:
    """The parent run's ``pick`` series up to the fork, dimmed (``smooth``: its EMA weight, 0 for raw)."""
    par = parent_of(feed)
    if par is not None:
        hist, step = par
        series = pick(hist)
        draw_history(ax, series.x, ema(series, smooth), step, f"parent ≤{step}")


def draw_loss(feed: Feed, ax: Axes, view: View) -> str | None:
    if not feed.train_loss.x and not feed.val_loss.x:
        return "loss: no steps yet"
    ax.hline(feed.ln_vocab, "gray", f"ln V {fmt_value(feed.ln_vocab)}" if feed.ln_vocab else "")
    ent = feed.unigram_entropy
    ax.hline(ent, "orange", f"unigram {fmt_value(ent)}" if ent else "")
    parent_line(feed, ax, lambda f: f.train_loss, view.ema)
    smoothed(ax, feed.train_loss, view.ema, "blue", "train")
    if feed.val_loss.x:
        ax.line(feed.val_loss.x, feed.val_loss.mean, "magenta", "held-out", marker="dot")
    mark_fork(feed, ax)
    return None


def draw_unique(feed: Feed, ax: Axes, view: View) -> str | None:
    """Unique tokens of the greedy samples against the detector's thresholds.

    The first eval of a run is the random initialisation (near every token unique): on a linear axis it would
    squash the values that matter (2-20) and the thresholds into the bottom rows. So the axis spans the evals
    since the model started learning; an init value above it is marked, not drawn to scale. Log scale
    (``y``) shows everything instead."""
    evals = feed.evals
    if not evals:
        return "unique tokens: no eval yet"
    c = feed.thresholds
    n = evals[-1].generated_tokens or 256
    par = parent_of(feed)
    if par is not None:
        hist, step = par
        pts = [(e.step, e.unique_tokens) for e in hist.evals if e.step <= step]
        if pts:
            ax.line([p[0] for p in pts], [p[1] for p in pts], DIM, f"parent ≤{step}")
    for share, label, color in ((c.recovered_share, "recovered ≥", "green"),
                                (c.collapsing_share, "collapsing ≤", "yellow"),
                                (c.collapse_share, "collapsed ≤", "red")):
        ax.hline(share * n, color, f"{label}{num(share * n)}")
    xs = [e.step for e in evals]
    ys = [float(e.unique_tokens) for e in evals]
    ax.line(xs, ys, "cyan", f"unique (of {n})", marker="dot")
    if not ax.log_y:
        start = feed.learning_from()
        recent = ys[start:] or ys
        top = max(max(recent), c.recovered_share * n) * 1.15
        ax.ylim = (0.0, top)
        off = [(x, y) for x, y in zip(xs[:start], ys[:start]) if y > top]
        if off:
            x0, y0 = off[0]
            ax.line([x0], [top], "yellow", marker="↑", legend=False)
            ax.note(f"↑ init {num(y0)} off scale (y: log)", "yellow")
    mark_fork(feed, ax)
    return None


def draw_lr(feed: Feed, ax: Axes, view: View) -> str | None:
    s = feed.lr_series
    if not s.x:
        return "learning rate: no steps yet"
    parent_line(feed, ax, lambda f: f.lr_series)
    ax.line(s.x, s.mean, "blue", f"lr {num(s.last_y)}" if s.last_y is not None else "lr")
    w = feed.wd_series
    if w.x and max(w.hi) > 0:
        ax.line(w.x, w.mean, "orange", "wd (right)", yside="right")
    marks = sorted({step for step, _ in feed.lr_changes})
    if len(marks) > 200:  # many close together collapse to one column anyway
        marks = marks[:: math.ceil(len(marks) / 200)]
    for step in marks:
        ax.vline(step, "red")
    if marks:
        ax.legend.append(("LR change", "red"))
    mark_fork(feed, ax)
    return None


def draw_grad(feed: Feed, ax: Axes, view: View) -> str | None:
    """The global gradient norm before clipping (logged every step), with the clip threshold when set."""
    s = feed.grad_norm_series
    if not s.x:
        return "grad norm: not logged yet"
    parent_line(feed, ax, lambda f: f.grad_norm_series, view.ema)
    smoothed(ax, s, view.ema, "blue", "grad norm")
    train = feed.config.get("train")
    clip = train.get("grad_clip") if isinstance(train, dict) else None
    if isinstance(clip, (int, float)) and not isinstance(clip, bool) and clip > 0:
        ax.hline(float(clip), "red", f"clip {fmt_num(clip)}")
    mark_fork(feed, ax)
    return None


def metric_drawer(name: str) -> Callable[[Feed, Axes, View], str | None]:
    """A drawer for one user metric (``Monitor.step(**metrics)`` or an eval's extras)."""

    def draw(feed: Feed, ax: Axes, view: View) -> str | None:
        s = feed.metrics.get(name)
        if s is None or not s.x:
            return f"{name}: no values yet"
        ax.line(s.x, s.mean, "cyan", f"{name} {fmt_value(s.last_y)}", marker="dot" if len(s) < 40 else None)
        mark_fork(feed, ax)
        return None

    return draw


DRAWERS: dict[str, Callable[[Feed, Axes, View], str | None]] = {
    "loss": draw_loss, "unique": draw_unique, "lr": draw_lr, "grad": draw_grad,
}
"""The single-run panels by key, in the order the ``plot`` command lays them out."""
