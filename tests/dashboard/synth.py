"""Small, fixed session logs for the dashboard's tests and snapshots, written the way a run writes them.

:func:`write_run` makes a 4-block model's log (28 ternary layers named ``blocks.N.attn.q`` ...): a random-init
eval with 120 unique tokens of 256, then the values that matter (2-20) against thresholds at 5/10/15; an LR
cut from the dashboard during stage 1, a checkpoint asked for, per-layer scale and latent RMS, norm gains and
the embedding RMS, user metrics. Everything is a function of the step (no randomness, fixed times), so
pictures of it are the same on every machine. ``parent=`` makes a fork that continues another log.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from bitnet_tui.session.analysis.detector import CollapseDetector, DetectorConfig, EvalFigures
from bitnet_tui.session.log.events import (
    SCHEMA_VERSION,
    CheckpointSaved,
    EvalDone,
    Event,
    Intervention,
    LayerWeights,
    RunEnded,
    RunStarted,
    StepDone,
    WeightsSnapshot,
)

T0 = 1_790_000_000.0
VOCAB = 512
PROJ = ("attn.q", "attn.k", "attn.v", "attn.o", "ffn.gate", "ffn.up", "ffn.down")
# step -> unique tokens of 256; the states and alerts are the detector's own
EVALS = {0: 120, 20: 14, 40: 9, 60: 12, 80: 18, 100: 16, 120: 9, 140: 6, 160: 4, 180: 3, 200: 2, 220: 5, 240: 8,
         260: 11, 280: 14, 300: 17}
DETECTOR = {"collapse_share": 0.02, "collapsing_share": 0.04, "recovered_share": 0.06}
H_UNIGRAM = 4.9


def t(step: int, extra: float = 0.0) -> float:
    return round(T0 + step * 0.05 + extra, 3)


def schedule(step: int, peak: float, steps: int) -> float:
    warm = 20
    if step < warm:
        return peak * (step + 1) / warm
    return peak * (1 - 0.95 * (step - warm) / max(1, steps - warm))


def layers(step: int, lr: float, blocks: int = 4) -> tuple[LayerWeights, ...]:
    out = []
    for b in range(blocks):
        for j, proj in enumerate(PROJ):
            k = b * len(PROJ) + j
            zero = 0.30 + 0.002 * k + 0.15 * (1 - math.exp(-step / 150)) * (1 + 0.1 * math.sin(k))
            flip = math.nan if step == 0 else (0.02 + 0.04 * math.exp(-step / 80)) * (1 + 0.5 * math.sin(k + step / 40))
            flip *= lr / 3e-3
            scale = 0.02 * (1 + 0.05 * j) * math.exp(-step / (400 + 20 * k))
            side = (1 - zero) / 2
            out.append(LayerWeights(name=f"blocks.{b}.{proj}", neg=side - 0.01, zero=zero, pos=side + 0.01,
                                    scale=scale, flip_rate=flip, near_boundary=0.04, rms=scale * 1.25))
    return tuple(out)


def val_loss(s: int, shift: float) -> float:
    ln_v = math.log(VOCAB)
    return 4.1 + (ln_v - 4.1) * math.exp(-s / 40) + shift


def figures(s: int, shift: float) -> EvalFigures:
    return EvalFigures(step=s, unique=EVALS[s], generated=256, val_loss=val_loss(s, shift), distinct2=0.3,
                       top_tokens=(("the", 40), (" ", 30)), sample="the the the")


def judge_until(step: int) -> CollapseDetector:
    """The detector of the default run (the parent of :func:`write_three`'s fork) after its evals up to ``step``."""
    d = CollapseDetector(DetectorConfig(**DETECTOR), math.log(VOCAB), H_UNIGRAM)
    for s in sorted(EVALS):
        if s <= step:
            d.observe(figures(s, 0.0))
            d.observe_scale(s, sum(lw.scale for lw in layers(s, 3e-3)) / len(layers(s, 3e-3)))
    return d


def events(name: str, *, steps: int = 300, lr: float = 3e-3, parent: dict[str, Any] | None = None,
           cut_at: int | None = 150, metrics: bool = True, loss_shift: float = 0.0) -> list[Event]:
    start = parent["step"] if parent else 0
    ln_v = math.log(VOCAB)
    judge = judge_until(start) if parent else CollapseDetector(DetectorConfig(**DETECTOR), ln_v, H_UNIGRAM)
    evs: list[Event] = [RunStarted(
        step=start, time=t(start), schema=SCHEMA_VERSION, run_name=name,
        config={"model": {"hidden": 64, "layers": 4, "vocab_size": VOCAB},
                "train": {"lr": lr, "steps": steps, "warmup_steps": 20, "schedule": "two-stage", "grad_clip": 1.0},
                "diag": {"eval_every": 20, "weights_every": 20, "detector": DETECTOR},
                "note": "[bold]literal[/bold] \x1b[31mred"},
        versions={"bitnet-tui": "test"}, argv=("bitnet-tui", "run", "--lr", str(lr)), device="cpu",
        corpus={"name": "synthetic"}, tokenizer={"kind": "bpe", "vocab_size": VOCAB}, params=123_456,
        vocab_size=VOCAB, ln_vocab=ln_v, unigram_entropy=H_UNIGRAM, total_steps=steps, parent=parent, source="test",
        detector=judge.header())]
    mult = 1.0
    for s in range(start, steps + 1):
        if s > start:
            loss = 4.0 + (ln_v - 4.0) * math.exp(-s / 40) + 0.08 * math.sin(s / 3) + loss_shift
            cur = schedule(s - 1, lr, steps) * mult
            extra = {"accuracy": 0.1 + 0.5 * (1 - math.exp(-s / 100)), "ppl_gap": 0.5 * math.cos(s / 30)} \
                if metrics else {}
            evs.append(StepDone(step=s, time=t(s), loss=loss, lr=cur, weight_decay=0.1 if s < steps // 2 else 0.0,
                                grad_norm=0.8 + 0.6 * math.exp(-s / 50) + 0.1 * math.sin(s), tokens_per_s=20_000.0,
                                stage=1 if s < steps // 2 else 2, extra=extra))
        if cut_at is not None and s == cut_at and not parent:
            old = schedule(s, lr, steps)
            mult = 4.91e-4 / old
            evs.append(Intervention(step=s, time=t(s, 0.01), action="set_lr", old=old, new=4.91e-4,
                                    source="dashboard"))
            evs.append(Intervention(step=s, time=t(s, 0.02), action="checkpoint", old=None, new=None,
                                    source="dashboard"))
        if s % 20 == 0 and s in EVALS and (s > start or not parent):
            f = figures(s, loss_shift)
            alerts = judge.observe(f)
            evs.append(EvalDone(step=s, time=t(s, 0.04), unique_tokens=f.unique, generated_tokens=256,
                                val_loss=f.val_loss, distinct2=0.3, top_share=0.2, top_tokens=f.top_tokens,
                                samples=("the the the",), prompts=("Once",), state=judge.state,
                                extra={"eval_acc": 0.2 + s / 1000}))
            evs += [dataclasses.replace(a, time=t(s, 0.03 + 0.001 * i)) for i, a in enumerate(alerts)]
        if s % 20 == 0 and (s > start or not parent):
            snap = layers(s, lr * mult)
            evs.append(WeightsSnapshot(step=s, time=t(s, 0.05), layers=snap,
                                       norm_gain=1.0 - s / 1000, embed_norm=0.9 + s / 2000))
            evs += [dataclasses.replace(a, time=t(s, 0.055)) for a in
                    judge.observe_scale(s, sum(lw.scale for lw in snap) / len(snap))]
        if s in (160, 200) and not parent:
            evs.append(CheckpointSaved(step=s, time=t(s, 0.06), path=f"/runs/{name}.ckpt/step{s:08d}.pt",
                                       pinned=s == 160))
    evs.append(RunEnded(step=steps, time=t(steps, 0.1), reason="finished"))
    return evs


def write(path: Path, evs: list[Event]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e.to_dict(), allow_nan=False) + "\n" for e in evs))
    return path


def write_run(directory: Path, name: str, **kw: Any) -> Path:
    return write(directory / f"{name}.jsonl", events(name, **kw))


def write_three(directory: Path) -> list[Path]:
    """A parent, its fork at step 200 with a lower LR, and a run at a higher LR: a small sweep."""
    a = write_run(directory, "2026-01-01T10-00-00_h64_lr3e-3")
    b = write_run(directory, "2026-01-01T10-05-00_h64_lr1e-3", lr=1e-3,
                  parent={"session": str(a), "name": a.stem, "step": 200, "relation": "fork"}, loss_shift=0.05)
    c = write_run(directory, "2026-01-01T10-10-00_h64_lr1e-2", lr=1e-2, cut_at=None, loss_shift=-0.1)
    return [a, b, c]
