"""The version of bitnet-tui (one place; the package build reads it)."""

__version__ = "0.2.0"
