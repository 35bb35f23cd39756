"""The held-out batches are read as the training step runs (every intra-op thread, the trainer's autocast), and
decoding on one thread: the eval's share of wall time at the defaults rests on it (docs/performance.md)."""

from __future__ import annotations

import pytest
import torch

from bitnet_model.train.trainer import Trainer
from bitnet_tui.instrument.for_trainer import monitor_for


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_held_out_batches_run_in_the_steps_precision_and_threads_and_decoding_on_one(tiny, two_threads):
    tr = Trainer(tiny(steps=4, precision="bf16"))
    mon = monitor_for(tr, None)
    seen: list[tuple[bool, int, bool, tuple[int, ...]]] = []

    def record(module, args):
        seen.append((module.training, torch.get_num_threads(), torch.is_autocast_enabled("cpu"),
                     tuple(args[0].shape)))

    tr.model.register_forward_pre_hook(record)
    mon.diagnostics.eval(0)
    batch, context = tr.cfg.train.batch_size, tr.cfg.model.context
    held_out = [s for s in seen if not s[0] and s[3] == (batch, context)]
    decoding = [s for s in seen if not s[0] and s[3][0] == tr.cfg.diag.eval_prompts]
    assert held_out and all(threads == 2 and autocast for _, threads, autocast, _ in held_out), held_out
    assert decoding and all(threads == 1 and not autocast for _, threads, autocast, _ in decoding), decoding
    assert torch.get_num_threads() == 2  # restored after the eval
