"""The dashboard's plots: loss, unique tokens, LR and weight decay, ternary weights over time.

Every plot has ``update_from(feed)``: it compares the feed's version counter for its data with the one
it last drew and does nothing when they match, and it redraws at most as often as its measured render
cost allows, so the UI takes a bounded share of the CPU from training.
"""

from __future__ import annotations

import math
import time
from typing import Any

from textual_plotext import PlotextPlot

from bitnet_tui.dashboard.feed import Feed, Series


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
        c, n = feed.detector, feed.last_eval.generated_tokens if feed.last_eval else 256
        for share, label, color in (
            (c.recovered_share, "recovered ≥", "green"),
            (c.collapsing_share, "collapsing ≤", "yellow"),
            (c.collapse_share, "collapsed ≤", "red"),
        ):
            plt.plot([x0, x1], [share * n] * 2, label=f"{label}{share:.0%}", color=color)
        plt.plot(s.x, s.mean, label="unique", color="cyan", marker="dot")
        top = max(max(s.hi), c.recovered_share * n) * 1.1
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
        marks = sorted({step for step, _ in feed.lr_changes})
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
        f = feed.flip_mean
        if f.x:
            plt.plot(f.x, f.mean, label="flip rate (right)", color="red", yside="right")
        plt.xlabel("step")

