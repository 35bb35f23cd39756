"""Each training disease induced for real on the tiny model: the runs ``test_induced.py`` checks and
``docs/make_disease_figures.py`` draws, one place for both. A scenario takes the tiny-config factory
(``tiny(steps=..., lr=...) -> RunConfig``, the ``tiny`` fixture) and returns the run's events.

Three of them repeat one batch (:func:`memorise`): a run that has learned its data, where cross-entropy keeps
rewarding a larger logit scale (output logit divergence); where Adam without momentum moves weights
back and forth across the rounding boundary (flip-back oscillation); and a float model that has learned its
data well before it is made ternary (quantisation shock).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from bitnet_model.nn.quant import BitLinear
from bitnet_model.train.config import RunConfig
from bitnet_model.train.trainer import Trainer
from bitnet_tui.instrument.for_trainer import monitor_for
from bitnet_tui.instrument.monitor import Monitor
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.log.events import Event, StepDone

Tiny = Callable[..., RunConfig]


def run(cfg: RunConfig, *, weights_every: int | None = None, before: Callable[[Trainer], None] | None = None,
        during: Callable[[Monitor, Event], None] | None = None) -> tuple[list[Event], Monitor]:
    """Train ``cfg`` with bitnet-tui's trainer and its Monitor; every event the Monitor emitted, and the Monitor.
    ``before(trainer)`` runs once it is set up, ``during(monitor, event)`` on every event."""
    if weights_every is not None:
        cfg = dataclasses.replace(cfg, diag=dataclasses.replace(cfg.diag, weights_every=weights_every))
    tr = Trainer(cfg)
    mon = monitor_for(tr, None)
    events: list[Event] = []
    mon.subscribe(events.append)
    if before:
        before(tr)
    if during:
        mon.subscribe(lambda e: during(mon, e))
    tr.run()
    return events, mon


class OneBatch:
    """The same batch at every step: a run that memorises its data (with the state a checkpoint saves)."""

    def __init__(self, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        self.batch = batch

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.batch

    def state_dict(self) -> dict[str, Any]:
        return {}


def memorise(tr: Trainer) -> None:
    """Feed ``tr`` its first batch at every step."""
    tr.batches = OneBatch(next(tr.batches))  # type: ignore[assignment]


def frozen_layer(tiny: Tiny) -> list[Event]:
    """One projection left out of training (``requires_grad`` off)."""
    def freeze(tr: Trainer) -> None:
        v = tr.model.get_submodule("blocks.0.attn.v")
        assert isinstance(v, BitLinear)
        v.weight.requires_grad_(False)

    return run(tiny(steps=40), before=freeze)[0]


def large_lr_no_warmup(tiny: Tiny, steps: int = 20, weights_every: int | None = 1) -> list[Event]:
    """LR 0.1 from the first step, constant: the latent weights are rewritten, then attention collapses."""
    return run(tiny(steps=steps, lr=0.1, warmup_steps=0, schedule="constant"), weights_every=weights_every)[0]


def lr_jump(tiny: Tiny) -> tuple[list[Event], Monitor]:
    """A person raises the LR from 3e-3 to 0.9 at step 70."""
    def jump(mon: Monitor, e: Event) -> None:
        if isinstance(e, StepDone) and e.step == 70:
            mon.send(C.SetLR(value=0.9, source="test"))

    return run(tiny(steps=90), during=jump)


def outlier_channels(tiny: Tiny) -> list[Event]:
    """Two embedding columns 300x the rest, for every token."""
    def plant(tr: Trainer) -> None:
        with torch.no_grad():
            tr.model.embed.weight[:, :2] *= 300.0

    return run(tiny(steps=20), before=plant)[0]


def healthy(tiny: Tiny, seed: int = 0) -> list[Event]:
    """LR 3e-3, the default warmup and schedule, 120 steps."""
    return run(tiny(steps=120, seed=seed))[0]


def memorised_logits(tiny: Tiny, steps: int = 80) -> list[Event]:
    """One batch memorised at LR 0.1 without weight decay: nothing bounds the logit scale (the final norm's gain
    and the full-precision head are free to grow), so log Z follows the largest logit up."""
    return run(tiny(steps=steps, lr=0.1, warmup_steps=0, schedule="constant", weight_decay=0.0),
               before=memorise)[0]


def oscillating_weights(tiny: Tiny, steps: int = 50) -> list[Event]:
    """One batch learned by Adam without momentum (beta1 0, as RMSprop and Adafactor's default) at a constant LR
    3e-3, a snapshot every step. Each step moves a weight by about the LR along its gradient now, so a weight
    next to the rounding boundary whose gradient turns when it crosses (the quantised value overshoots what the
    loss wants) crosses back the next step (Nagel et al. 2022). Momentum (beta1 0.9) carries the crossing on
    for several steps, and one-step snapshots see few flips back (docs/diagnosis.md)."""
    return run(tiny(steps=steps, lr=3e-3, warmup_steps=0, schedule="constant", weight_decay=0.0, beta1=0.0),
               before=memorise, weights_every=1)[0]


def float_then_ternary(tiny: Tiny, switch: int = 60, after: int = 10) -> list[Event]:
    """A user's loop: the full-precision model memorises one batch of 16 sequences at LR 0.03 for ``switch``
    steps, then every BitLinear is made ternary at once and the loop reports ``stage=2``."""
    cfg = tiny(steps=switch + after, lr=0.03, batch_size=16, warmup_steps=0, schedule="constant", weight_decay=0.0)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, quant=False))
    tr = Trainer(cfg)
    mon = monitor_for(tr, None)
    events: list[Event] = []
    mon.subscribe(events.append)
    x, y = next(tr.batches)
    with mon:
        for s in range(switch + after):
            if s == switch:
                for m in tr.model.modules():
                    if isinstance(m, BitLinear):
                        m.quant = True
            _, loss = tr.model(x, y)
            loss.backward()
            tr.optimizer.step()
            tr.optimizer.zero_grad()
            mon.step(loss, stage=2 if s >= switch else 1)
    return events
