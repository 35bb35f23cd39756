"""The model-shape flags the user-style benchmarks share (``examples/plain_loop.py``'s TinyGPT)."""

from __future__ import annotations

import argparse


def model_shape(p: argparse.ArgumentParser, *, batch: int, vocab: int | None = 4096) -> None:
    """Add ``--hidden --layers --heads --context --batch`` (and ``--vocab`` unless ``vocab`` is None) to ``p``."""
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--batch", type=int, default=batch)
    if vocab is not None:
        p.add_argument("--vocab", type=int, default=vocab)
