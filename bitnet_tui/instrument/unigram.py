"""The unigram entropy a run's loss is read against, from the training batches as they pass.

A unigram estimate from a small sample is biased low: a sample of a few thousand tokens over a 50,257-token
vocabulary sees only the frequent tokens (a user's 16 held-out batches gave 5.49 nats where the training text
has 6.59), and a loss judged against a figure that low reads as "stuck in the unigram phase". The Monitor
therefore counts the tokens of the training batches it is shown (``mon.step(loss, batch=x)`` or
``mon.observe_tokens(x)``): an ``index_add_`` on the model's device per call, no host sync; the counts are
read back only at an eval, which synchronises anyway. Token counts given as ``unigram=`` win over both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

HELD_OUT = "held-out sample"
TRAINING = "training batches"
GIVEN = "given"


def batch_ids(batch: Any) -> torch.Tensor | None:
    """The token ids in a training batch: a tensor of ids, ``(x, y)`` (x is counted), or a dict with
    ``input_ids``. None when there are none (floats are not token ids)."""
    if isinstance(batch, Mapping):
        batch = batch.get("input_ids")
    elif isinstance(batch, (tuple, list)) and batch:
        batch = batch[0]
    if isinstance(batch, torch.Tensor) and not batch.is_floating_point() and not batch.is_complex():
        return batch
    return None


class TokenCounts:
    """Counts of the token ids seen, kept on the device they arrive on."""

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab
        self.counts: torch.Tensor | None = None

    def add(self, batch: Any) -> None:
        """Count one batch's token ids (ids outside the vocabulary, e.g. -100 padding, are not counted)."""
        ids = batch_ids(batch)
        if ids is None:
            raise TypeError("observe_tokens/batch= needs token ids: an integer tensor, (x, y) or a dict with "
                            f"input_ids, not {type(batch).__name__}")
        ids = ids.detach().flatten()
        if self.counts is None or self.counts.device != ids.device:
            old = self.counts
            self.counts = torch.zeros(self.vocab, dtype=torch.long, device=ids.device)
            if old is not None:
                self.counts += old.to(ids.device)
        inside = ((ids >= 0) & (ids < self.vocab)).long()  # masked by weight, not by indexing: no host sync
        self.counts.index_add_(0, ids.clamp(0, self.vocab - 1).long(), inside)

    def read(self) -> torch.Tensor | None:
        """The counts on the host (a sync: call it at an eval), or None when nothing was counted."""
        if self.counts is None:
            return None
        c = self.counts.cpu()
        return c if int(c.sum()) > 0 else None


def held_out_warning(entropy: float, tokens: int, vocab: int | None) -> str:
    """The start-of-run alert when the unigram figure comes from the held-out sample."""
    over = f" over a {vocab:,}-token vocabulary" if vocab else ""
    return (f"unigram entropy {entropy:.3f} nats is estimated from the held-out sample ({tokens:,} tokens{over}): "
            "a small sample's estimate is biased low, so a learning run can read as stuck in the unigram phase; "
            "pass unigram= (token counts of the training text), or give the training batches to the Monitor "
            "(mon.step(loss, batch=x) or mon.observe_tokens(x)): their counts replace it at the first eval with "
            "more tokens than the sample")


def training_note(entropy: float, tokens: int, before: float | None, before_tokens: int) -> str:
    """The alert when the training batches' counts first replace the held-out estimate."""
    was = f" (the held-out sample's {before_tokens:,} tokens gave {before:.3f})" if before is not None else ""
    return (f"unigram entropy now {entropy:.3f} nats from {tokens:,} training tokens{was}; later evals are judged "
            "against the figure from all training tokens seen so far, recorded on each eval")
