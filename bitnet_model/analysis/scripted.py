"""Scripted event streams with a chosen eval trajectory, for demos, tests and benchmarks."""

from __future__ import annotations

import math
from collections.abc import Sequence

from bitnet_model.log.events import (
    SCHEMA_VERSION,
    Alert,
    EvalDone,
    Event,
    LayerWeights,
    RunEnded,
    RunStarted,
    StepDone,
    WeightsSnapshot,
)
from bitnet_model.train.config import RunConfig


def scripted_run(
    unique: Sequence[int],
    *,
    states: Sequence[str] | None = None,
    val_losses: Sequence[float] | None = None,
    config: RunConfig | None = None,
    eval_every: int = 100,
    steps_per_eval: int | None = None,
    layers: int = 4,
    ln_vocab: float = math.log(4096),
    unigram_entropy: float = 6.5,
    end: str | None = "finished",
    start_time: float = 1_790_000_000.0,
) -> list[Event]:
    """A realistic event stream with the given eval trajectory, for demos, tests and benchmarks.

    One ``step`` event per step, an ``eval`` and a ``weights`` snapshot (``layers``
    x 7 BitLinears) every ``eval_every`` steps, a detector alert at each state
    change, and a ``run_ended`` with reason ``end`` (None: the run crashed).
    """
    cfg = config or RunConfig()
    n = len(unique)
    every = steps_per_eval or eval_every
    total = n * every
    states = list(states) if states is not None else [""] * n
    vals = list(val_losses) if val_losses is not None else [
        unigram_entropy - 1.5 * (i + 1) / n for i in range(n)
    ]
    t = start_time
    events: list[Event] = [
        RunStarted(
            step=0, time=t, schema=SCHEMA_VERSION, run_name="scripted", config=cfg.to_dict(),
            corpus={"name": "scripted", "sha256": "0" * 64}, tokenizer={"kind": "bpe", "vocab_size": 4096},
            versions={"bitnet-tui": "0"}, argv=("bitnet-tui", "run"), device="cpu", params=1_000_000,
            ln_vocab=ln_vocab, unigram_entropy=unigram_entropy, total_steps=total,
        )
    ]
    names = ("q", "k", "v", "o", "gate", "up", "down")
    prev_state = ""
    for i in range(n):
        for s in range(i * every + 1, (i + 1) * every + 1):
            t += 0.05
            loss = ln_vocab - (ln_vocab - vals[i]) * s / total
            events.append(StepDone(step=s, time=t, loss=loss, lr=5e-4, weight_decay=0.1, grad_norm=0.8,
                                   tokens_per_s=40_000.0, stage=1))
        step = (i + 1) * every
        u = unique[i]
        events.append(EvalDone(
            step=step, time=t, val_loss=vals[i], unique_tokens=u, generated_tokens=256, distinct2=u / 256,
            top_share=1 / max(u, 1), top_tokens=(("the", 40), (" of", 20)), entropy=3.2,
            samples=("the the the", "of the of"), prompts=("Once", "It was"), state=states[i],
        ))
        events.append(WeightsSnapshot(step=step, time=t, layers=tuple(
            LayerWeights(name=f"blocks.{b}.{nm}", neg=0.3, zero=0.4, pos=0.3, scale=0.02,
                         flip_rate=math.nan if i == 0 else 0.01, near_boundary=0.05)
            for b in range(layers) for nm in names
        )))
        if states[i] and states[i] != prev_state:
            events.append(Alert(step=step, time=t, level="warning", code="detector",
                                message=f"{u} unique tokens", state_from=prev_state, state_to=states[i],
                                unique_tokens=u, val_loss=vals[i]))
            prev_state = states[i]
    if end is not None:
        events.append(RunEnded(step=total, time=t + 0.1, reason=end))
    return events
