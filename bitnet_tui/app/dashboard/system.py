"""What the run costs the machine: the header's compact figure and the System panel, from the log's ``system`` events.

The figures are the run's own (rank 0's process, sampled off its training thread; docs/design.md): CPU share
(100% is one core), resident memory, threads, the machine's load average against its CPUs, and on CUDA the
device's utilisation, memory and temperature. Live, replay and watch show the same, from the same events.
"""

from __future__ import annotations

import math
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from bitnet_tui.app.dashboard.body import BodyPanel
from bitnet_tui.session.log.events import SystemSample

BARS = "▁▂▃▄▅▆▇█"
RECENT = 24
"""Samples drawn in the panel's sparkline column."""


def fmt_mb(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def header_figure(last: SystemSample | None) -> tuple[Text, int] | None:
    """The header's compact figure (``cpu 187% 1.2 GB`` and, on CUDA, ``gpu 97% 41.0 GB 71°C``) and its priority:
    the lowest, so it is the first thing a narrow header drops."""
    if last is None:
        return None
    parts = []
    if last.cpu_percent is not None:
        parts.append(f"cpu {last.cpu_percent:.0f}%")
    if last.rss_mb is not None:
        parts.append(fmt_mb(last.rss_mb))
    if last.gpu_util is not None:
        parts.append(f"gpu {last.gpu_util:.0f}%")
    if last.gpu_mem_mb is not None:
        parts.append(("" if last.gpu_util is not None else "gpu ") + fmt_mb(last.gpu_mem_mb))
    if last.gpu_temp_c is not None:
        parts.append(f"{last.gpu_temp_c:.0f}°C")
    return (Text(" ".join(parts), style="dim"), 1) if parts else None


def sparkline(values: list[float], lo: float | None = None) -> str:
    if not values:
        return ""
    low = min(values) if lo is None else lo
    span = max(values) - low
    if span <= 0 or not math.isfinite(span):
        return BARS[0] * len(values)
    return "".join(BARS[min(len(BARS) - 1, int((v - low) / span * (len(BARS) - 1) + 0.5))] for v in values)


ROWS = (
    # (series, label, how a value reads, sparkline from 0; else from the lowest value drawn, so a change shows)
    ("cpu_percent", "CPU (process)", lambda v: f"{v:.0f}%", True),
    ("rss_mb", "memory (RSS)", fmt_mb, False),
    ("threads", "threads", lambda v: f"{v:.0f}", False),
    ("load1", "load (1 min)", lambda v: f"{v:.2f}", False),
    ("gpu_util", "GPU utilisation", lambda v: f"{v:.0f}%", True),
    ("gpu_mem_mb", "GPU memory", fmt_mb, False),
    ("gpu_temp_c", "GPU temperature", lambda v: f"{v:.0f}°C", False),
)


def system_table(feed: Any) -> Group | Text:
    last: SystemSample | None = feed.last_system
    if last is None:
        return Text("no system samples in this log yet (a run samples every 2 s; a log from before they were logged, "
                    "or a run with system_every=0, has none)", style="dim")
    t = Table(box=None, pad_edge=False, expand=True, show_edge=False, header_style="bold")
    for col, justify in (("figure", "left"), ("now", "right"), ("peak", "right"), ("mean", "right"),
                         ("recent", "left")):
        t.add_column(col, justify=justify, no_wrap=True, overflow="ellipsis")  # type: ignore[arg-type]
    for key, label, shown, from_zero in ROWS:
        s = feed.system[key]
        if not s.count:
            continue
        now = getattr(last, key)
        mean = sum(m * n for m, n in zip(s.mean, s.counts)) / max(1, sum(s.counts))
        peak = max(s.hi)
        if key == "gpu_mem_mb" and last.gpu_mem_total_mb:
            label = f"GPU memory (of {fmt_mb(last.gpu_mem_total_mb)})"
        t.add_row(label, "—" if now is None else shown(now), shown(peak), shown(mean),
                  Text(sparkline(s.mean[-RECENT:], 0.0 if from_zero else None), style="cyan"))
    note = f"rank 0's process, sampled at step {last.step}"
    if last.cpus:
        note += f"; {last.cpus} CPUs (100% is one core busy)"
    return Group(t, Text(""), Text(note, style="dim"))


class SystemPanel(BodyPanel):
    """The run's process as the system sampler saw it: now, peak, mean and a sparkline per figure."""

    part = "system"

    draw = staticmethod(system_table)
