"""bitnet-tui: a terminal instrument for watching BitNet b1.58 training go wrong."""

import os

# OpenMP threads that spin while waiting steal the CPU from the dashboard's thread and from other
# jobs on a shared box; passive waiting measured far faster under load (docs/performance.md).
# Set before torch is imported; an explicit OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bitnet_model import __version__  # noqa: E402

__all__ = ["__version__"]
