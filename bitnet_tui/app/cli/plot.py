"""``bitnet-tui plot SESSION... -o FILE``: the dashboard's panels as a picture to share (PNG, SVG or PDF), and
the runs-side-by-side view behind ``compare --plot``.

One session: loss, unique tokens, LR and weight decay, grad norm, and the per-layer flip-rate and zero-fraction
heatmaps (plus a row of your own metrics, if the run logged any). Several: loss, unique tokens, flip rate and
LR overlaid, one colour a run, forks drawn from their parent. Both draw what the terminal panels draw
(:mod:`bitnet_tui.app.dashboard.figures`, :mod:`bitnet_tui.app.dashboard.runs`). matplotlib is an optional extra
(``pip install 'bitnet-tui[plot]'``), imported only when this command runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from bitnet_tui.app.cli.app import command
from bitnet_tui.app.cli.errors import warn
from bitnet_tui.app.cli.options import SessionsDirOption, resolve_sessions
from bitnet_tui.session.errors import UserError
from bitnet_tui.session.text import printable

FORMATS = (".png", ".svg", ".pdf")
MPL_COLORS = {"blue": "tab:blue", "red": "tab:red", "green": "tab:green", "magenta": "tab:purple",
              "cyan": "tab:cyan", "yellow": "goldenrod", "orange": "tab:orange", "gray": "0.6", "white": "black"}
"""plotext colour names as matplotlib colours (a white line would vanish on paper)."""


def _runs(sessions: Sequence[str], sessions_dir_opt: str | None) -> list[Any]:
    from bitnet_tui.app.dashboard.runs import load_runs

    runs, warnings = load_runs(resolve_sessions(sessions, sessions_dir_opt))
    for w in warnings:
        warn(w)
    if not runs:
        raise UserError("none of the sessions could be read")
    return runs


def _matplotlib() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("the plot command needs matplotlib: pip install 'bitnet-tui[plot]'") from None
    return plt


def draw_axes(mpl: Any, ax: Any) -> None:
    """Put one :class:`~bitnet_tui.app.dashboard.axes.Axes` (lines, thresholds, markers, legend) on matplotlib axes."""
    from matplotlib.lines import Line2D

    from bitnet_tui.app.dashboard.axes import DIM

    right = None
    for ln in ax.lines:
        target = mpl
        if ln.yside == "right":
            right = right or mpl.twinx()
            target = right
        color = MPL_COLORS.get(ln.color, ln.color)
        if not ln.xs:
            target.axhline(ln.ys[0], color=color, lw=0.9, ls="--")
        else:
            marker = "o" if ln.marker in ("dot", "●") or len(ln.xs) == 1 else ("^" if ln.marker == "↑" else None)
            target.plot(ln.xs, ln.ys, color=color, lw=1.0 if ln.color != DIM else 0.8, marker=marker, ms=3,
                        alpha=0.55 if ln.color == DIM else 1.0)
    for x, c in ax.vlines:
        mpl.axvline(x, color=MPL_COLORS.get(c, c), lw=0.8, alpha=0.7)
    if ax.log_y:
        mpl.set_yscale("log")
        if right is not None:
            right.set_yscale("log")
    lo, hi = ax.ylim
    if lo is not None or hi is not None:
        mpl.set_ylim(bottom=lo if not ax.log_y else None, top=hi)
    handles = [Line2D([], [], color=MPL_COLORS.get(c, c), label=label) for label, c in ax.legend]
    handles += [Line2D([], [], color="none", label=text) for text, _ in ax.notes]
    if handles:
        mpl.legend(handles=handles, fontsize=7, loc="best", framealpha=0.8)
    mpl.set_xlabel("step", fontsize=8)
    mpl.tick_params(labelsize=7)
    _number_ticks(mpl, right)


def _number_ticks(*axes: Any) -> None:
    """Tick labels in the project's one number format (``5e-4``, not ``0.0005``)."""
    from matplotlib.ticker import FuncFormatter

    from bitnet_tui.session.text import fmt_num

    fmt = FuncFormatter(lambda v, _pos: fmt_num(float(f"{v:.6g}")))
    for a in axes:
        if a is not None and a.get_yscale() == "linear":
            a.yaxis.set_major_formatter(fmt)


def _heatmap(mpl: Any, feed: Any, stat: str, title: str) -> None:
    hist = feed.layers
    cols, _ = hist.columns(stat, len(hist.steps))
    if not cols:
        mpl.set_axis_off()
        mpl.set_title(f"{title}: no weight snapshot", fontsize=9)
        return
    rows = [[c[i] for c in cols] for i in range(len(hist.names))]
    lo, hi = hist.steps[0], hist.steps[-1]
    im = mpl.imshow(rows, aspect="auto", interpolation="nearest", cmap="viridis",
                    extent=(lo, hi if hi > lo else lo + 1, len(rows) - 0.5, -0.5))
    mpl.set_yticks(range(len(hist.names)))
    mpl.set_yticklabels(hist.names, fontsize=max(4, min(7, 200 // max(1, len(hist.names)))))
    mpl.set_title(title, fontsize=9)
    mpl.set_xlabel("step", fontsize=8)
    mpl.tick_params(axis="x", labelsize=7)
    mpl.figure.colorbar(im, ax=mpl, fraction=0.04, pad=0.02)


def figure(runs: Sequence[Any], *, log_y: bool = False) -> Any:
    """The matplotlib figure for ``runs`` (one run: its panels; several: the overlay)."""
    plt = _matplotlib()
    from bitnet_tui.app.dashboard.axes import Axes, View
    from bitnet_tui.app.dashboard.figures import DRAWERS, metric_drawer
    from bitnet_tui.app.dashboard.runs import KINDS, lineage, overlay

    view = View(log_y=log_y)
    if len(runs) > 1:
        fig, grid = plt.subplots(2, 2, figsize=(12, 7.5), constrained_layout=True)
        for (kind, title), mpl in zip(KINDS, grid.flat):
            draw_axes(mpl, overlay(runs, kind, view))
            mpl.set_title(title, fontsize=9)
        names = "; ".join(printable(r.label, 60) + (f" ({lineage(r, runs)})" if r.parent else "") for r in runs)
        fig.suptitle(names, fontsize=9)
        return fig
    feed = runs[0].feed
    if feed.history is None and feed.header is not None:
        from bitnet_tui.app.dashboard.sources import parent_history

        feed.history = parent_history(feed.header) or False  # the parent's history, dimmed, up to the fork
    metrics = list(feed.metrics)[:3]
    nrows = 3 + (1 if metrics else 0)
    fig, grid = plt.subplots(nrows, 2, figsize=(12, 3.2 * nrows), constrained_layout=True)
    titles = {"loss": "Loss", "unique": "Unique tokens", "lr": "LR & weight decay", "grad": "Grad norm"}
    for (key, draw), mpl in zip(DRAWERS.items(), grid.flat):
        ax = Axes(log_y=log_y)
        why = draw(feed, ax, view)
        if why:
            mpl.set_axis_off()
        else:
            draw_axes(mpl, ax)
        mpl.set_title(why or titles[key], fontsize=9)
    _heatmap(grid[2][0], feed, "flip", "Flip rate by layer")
    _heatmap(grid[2][1], feed, "zero", "Zero fraction by layer")
    if metrics:
        for i, mpl in enumerate(grid[3]):
            if i < len(metrics):
                ax = Axes(log_y=log_y)
                metric_drawer(metrics[i])(feed, ax, view)
                draw_axes(mpl, ax)
                mpl.set_title(metrics[i], fontsize=9)
            else:
                mpl.set_axis_off()
    state = f" · {feed.state}" if feed.state else ""
    fig.suptitle(f"{printable(runs[0].name, 120)} · step {feed.step}{state}", fontsize=10)
    return fig


@command("plot")
def plot_cmd(
    session: Annotated[list[str], typer.Argument(help="One session (its panels) or several (overlaid).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The image to write: .png, .svg or .pdf.")],
    sessions_dir_opt: SessionsDirOption = None,
    log: Annotated[bool, typer.Option("--log", help="Log scale on every plot's y axis.")] = False,
) -> None:
    """Write the dashboard's panels as an image (needs matplotlib: pip install 'bitnet-tui\\[plot]')."""
    if output.suffix.lower() not in FORMATS:
        raise UserError(f"{printable(output.name, 200)}: the image must end in .png, .svg or .pdf")
    runs = _runs(session, sessions_dir_opt)
    fig = figure(runs, log_y=log)
    try:
        fig.savefig(output, dpi=130)
    except OSError as e:
        raise UserError(f"cannot write {printable(output, 300)}: {e.strerror or e}") from None
    typer.echo(f"wrote {printable(output, 300)}")


def show_overlay(paths: Sequence[Path], *, width: int = 80, height: int = 18) -> None:
    """``compare --plot``: the overlay app on a terminal; its panels as text on a pipe or in a file."""
    from bitnet_tui.app.dashboard.runs import load_runs

    runs, warnings = load_runs(paths)
    for w in warnings:
        warn(w)
    if not runs:
        raise UserError("none of the sessions could be read")
    if sys.stdout.isatty():
        from bitnet_tui.app.dashboard.overlay import OverlayApp

        OverlayApp(runs).run()
        return
    from textual_plotext.plot import Plot

    from bitnet_tui.app.dashboard.axes import View, render_text
    from bitnet_tui.app.dashboard.overlay import runs_legend
    from bitnet_tui.app.dashboard.runs import KINDS, overlay

    view = View()
    typer.echo(runs_legend(runs).plain)
    for kind, title in KINDS:
        typer.echo(f"\n{title}")
        typer.echo(render_text(overlay(runs, kind, view), Plot(), width, height))
