"""bitnet-tui: a terminal instrument for watching BitNet b1.58 training go wrong."""

import os

# OpenMP threads that spin while waiting steal the CPU from the dashboard's thread and from other
# jobs on a shared box; passive waiting measured far faster under load (docs/performance.md).
# Set before torch is imported; an explicit OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bitnet_model import __version__  # noqa: E402

__all__ = ["Monitor", "__version__"]


def __getattr__(name: str):
    """``from bitnet_tui import Monitor`` imports torch only when asked for (the viewer commands never are)."""
    if name == "Monitor":
        from bitnet_model.monitor.monitor import Monitor

        return Monitor
    raise AttributeError(f"module 'bitnet_tui' has no attribute {name!r}")
