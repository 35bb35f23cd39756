"""Several runs side by side: loaded once, one colour a run, aligned by step, a fork drawn from its parent.

:func:`load_runs` folds each session log into a :class:`~bitnet_tui.app.dashboard.feed.Feed`; :func:`overlay`
describes one panel (loss, unique tokens, flip rate, LR) of every run on an
:class:`~bitnet_tui.app.dashboard.axes.Axes`. The overlay app, ``compare --plot`` and the ``plot`` command all
draw from here. Nothing here imports textual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bitnet_tui.app.dashboard.axes import Axes, View
from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.app.dashboard.series import Series, ema
from bitnet_tui.session.log.errors import SessionError
from bitnet_tui.session.log.paths import short_name
from bitnet_tui.session.log.reader import read_session
from bitnet_tui.session.text import fmt_num, printable

COLORS = ("blue", "red", "green", "magenta", "cyan", "yellow", "orange", "white")
"""One colour a run, in the order given (plotext names; :data:`~.axes.RICH_COLORS` for text)."""
KINDS = (("loss", "Loss"), ("unique", "Unique tokens"), ("flip", "Flip rate (mean over layers)"), ("lr", "LR"))
"""The overlay's panels: (key, title)."""


@dataclass
class Run:
    name: str
    """The session's name, printable."""
    label: str
    """A short name for legends (the start time dropped when that leaves the runs distinct)."""
    feed: Feed
    color: str
    parent: str | None = None
    """The name of the session this one was forked or resumed from."""
    fork_step: int | None = None
    path: Path | None = None


def load_runs(paths: Sequence[str | Path]) -> tuple[list[Run], list[str]]:
    """The readable sessions among ``paths`` as runs, and a warning for each one that is not."""
    runs: list[Run] = []
    warnings: list[str] = []
    for p in paths:
        try:
            feed = Feed()
            data = read_session(p, sink=feed.apply)
        except SessionError as e:
            warnings.append(str(e))
            continue
        warnings += list(data.warnings)
        parent = feed.parent
        runs.append(Run(feed.run_name, feed.run_name, feed, COLORS[len(runs) % len(COLORS)],
                        parent[1] if parent else None, parent[2] if parent else None, Path(p)))
    short = [short_name(r.name) for r in runs]
    if len(set(short)) == len(short):
        for r, s in zip(runs, short):
            r.label = s
    return runs, warnings


def _by_name(runs: Sequence[Run]) -> dict[str, Run]:
    return {r.name: r for r in runs}


def label_of(name: str, runs: Sequence[Run]) -> str:
    r = _by_name(runs).get(name)
    return r.label if r is not None else printable(short_name(name), 80)


def lineage(run: Run, runs: Sequence[Run]) -> str:
    """``fork of h32_lr3e-3 @200`` (or empty)."""
    if run.parent is None:
        return ""
    relation = run.feed.parent[0] if run.feed.parent else "forked"
    word = "resumed from" if relation == "resumed" else "fork of"
    return f"{word} {label_of(run.parent, runs)} @{run.fork_step}"


def points(run: Run, kind: str, view: View) -> tuple[list[float], list[float]]:
    """The run's values for one overlay panel, by step."""
    f = run.feed
    if kind == "unique":
        return [float(e.step) for e in f.evals], [float(e.unique_tokens) for e in f.evals]
    s: Series = {"loss": f.train_loss, "flip": f.flip_mean, "lr": f.lr_series}[kind]
    ys = ema(s, view.ema) if kind == "loss" else s.mean
    return list(s.x), list(ys)


def _value_at(xs: list[float], ys: list[float], step: float) -> float | None:
    best = None
    for x, y in zip(xs, ys):
        if x <= step:
            best = y
        else:
            break
    return best


def overlay(runs: Sequence[Run], kind: str, view: View) -> Axes:
    """One panel of every run: a fork's line starts at its parent's value at the fork step, so a sweep of
    forks reads as branches of one tree."""
    ax = Axes(log_y=view.log_y)
    names = _by_name(runs)
    pts = {r.name: points(r, kind, view) for r in runs}
    for r in runs:
        xs, ys = pts[r.name]
        parent = names.get(r.parent) if r.parent else None
        if parent is not None and r.fork_step is not None:
            y0 = _value_at(*pts[parent.name], r.fork_step)
            if y0 is not None and (not xs or xs[0] > r.fork_step):
                xs, ys = [float(r.fork_step)] + xs, [y0] + ys
            ax.vline(r.fork_step, r.color)
        marker = "dot" if kind == "unique" else None
        last = f" {fmt_num(float(f'{ys[-1]:.3g}'))}" if ys else ""
        ax.line(xs, ys, r.color, f"{r.label}{last}", marker=marker)
    if kind == "loss":
        first = runs[0].feed if runs else None
        if first is not None and all(r.feed.ln_vocab == first.ln_vocab for r in runs):
            ax.hline(first.ln_vocab, "gray", "")
            ax.hline(first.unigram_entropy, "gray", "")
            if first.ln_vocab is not None and first.unigram_entropy is not None:
                ax.note(f"gray: ln V {fmt_num(float(f'{first.ln_vocab:.3g}'))}, unigram "
                        f"{fmt_num(float(f'{first.unigram_entropy:.3g}'))}")
    if kind == "unique" and runs and not view.log_y:
        # The axis follows what the runs did after they started learning (init values are near-all unique).
        recent = [float(e.unique_tokens) for r in runs for e in r.feed.evals[r.feed.learning_from():]]
        c, n = runs[0].feed.thresholds, runs[0].feed.evals[-1].generated_tokens if runs[0].feed.evals else 256
        if recent:
            ax.ylim = (0.0, max(max(recent), c.recovered_share * n) * 1.15)
        ax.hline(c.collapse_share * n, "gray", "")
        ax.note(f"gray: collapsed ≤{fmt_num(float(f'{c.collapse_share * n:.3g}'))}; log scale shows the init evals")
    return ax
