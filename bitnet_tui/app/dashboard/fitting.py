"""A line fitted to a width: what matters most is never the part that is cut.

A line is a list of segments, each with a priority; when the line is too wide, the least important segment
goes first. The live header and the headless progress line are both built this way.
"""

from __future__ import annotations

from rich.text import Text

Segment = tuple[Text, int]
"""A piece of a line and its priority (higher stays longer)."""
ESSENTIAL = 10
"""Segments of this priority are never dropped (the mode, the detector state, PAUSED, the run's name, the step)."""


def width_of(segments: list[Segment], sep: str = "  ") -> int:
    return sum(t.cell_len for t, _ in segments) + len(sep) * max(0, len(segments) - 1)


def fit_segments(segments: list[Segment], width: int, sep: str = "  ") -> list[Segment]:
    """``segments`` less the lowest-priority ones (the later first among equals) until they fit ``width``; the
    essential ones always stay. Width 0: all of them."""
    segs = [s for s in segments if s[0].plain]
    while width > 0 and width_of(segs, sep) > width and len(segs) > 1:
        lowest = min(range(len(segs)), key=lambda i: (segs[i][1], -i))
        if segs[lowest][1] >= ESSENTIAL:
            break  # what is left is cut at the end, never dropped
        segs.pop(lowest)
    return segs


def join(segments: list[Segment], width: int, sep: str = "  ") -> Text:
    """The segments joined with ``sep``, cut at ``width`` with an ellipsis when even the essential ones do not fit."""
    out = Text(sep).join(t for t, _ in segments)
    out.no_wrap = True
    out.overflow = "ellipsis"
    if width > 0:
        out.truncate(width, overflow="ellipsis")
    return out


def fit(segments: list[Segment], width: int, sep: str = "  ") -> Text:
    """Join ``segments`` with ``sep``, dropping the lowest-priority ones until the line fits ``width`` (the
    essential ones stay; the line is then cut at the end)."""
    return join(fit_segments(segments, width, sep), width, sep)
