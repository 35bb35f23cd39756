"""The diseases panel: every measured disease with its figure now, its threshold and its state, then the
attention pane (per layer, each head's normalised entropy as a shade and the largest q.k/sqrt(d)).

The rows come from :mod:`bitnet_tui.session.analysis.disease_view` over the same fold as every other screen; the
states are the alerts the rules raised (docs/diagnosis.md says what each one measures and where its threshold
comes from).
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from bitnet_tui.session.analysis.disease_view import attention_rows, disease_rows

SHADES = " ░▒▓█"


def entropy_cells(ents: list[float]) -> Text:
    """One cell per head: darker is lower entropy (closer to one-hot), with the value beside it."""
    out = Text()
    for e in ents:
        shade = SHADES[min(len(SHADES) - 1, int((1 - max(0.0, min(1.0, e))) * (len(SHADES) - 1) + 0.5))]
        out.append(shade * 2, style="red" if e < 0.2 else "")
        out.append(f"{e:.2f} ")
    return out


def disease_table(feed: Any) -> Table:
    t = Table(box=None, pad_edge=False, expand=True, show_edge=False)
    for col in ("disease", "now", "threshold", "state"):
        t.add_column(col, no_wrap=True, overflow="ellipsis")
    for name, figure, threshold, state in disease_rows(feed):
        style = "bold red" if state.startswith("ALERT") else "yellow" if state.startswith("seen") else ""
        t.add_row(name, figure, threshold, Text(state, style=style))
    rows = attention_rows(feed.last_eval.probes if feed.last_eval is not None else {})
    if rows:
        t.add_row("", "", "", "")
        t.add_row(Text("attention", style="bold"), "entropy per head", "max q.k/√d", "")
        for name, ents, top in rows:
            t.add_row(name, entropy_cells(ents), "—" if top is None else f"{top:.1f}", "")
    return t


class DiseasesPanel(VerticalScroll):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._drawn: tuple[int, ...] = ()
        self._body = Static()

    def compose(self) -> Any:
        yield self._body

    def update_from(self, feed: Any, force: bool = False) -> bool:
        v = feed.versions
        key = (id(feed), v["samples"], v["weights"], v["timeline"], feed.step // 50)
        if key == self._drawn and not force:
            return False
        self._drawn = key
        self._body.update(disease_table(feed))
        return True
