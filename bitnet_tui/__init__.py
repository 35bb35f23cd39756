"""bitnet-tui: a terminal instrument for watching BitNet b1.58 training go wrong."""

from bitnet_model import __version__

__all__ = ["__version__"]
