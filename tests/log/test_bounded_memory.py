"""diagnose, export and replay hold a bounded amount of a log, not every event: memory grows far slower than
the log (an event object costs about 380 bytes; docs/performance.md has the figures for 1 and 2 million events)."""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from bitnet_tui.app.cli.diagnose import diagnose_path
from bitnet_tui.app.cli.export import CsvExport
from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.app.dashboard.player import Checkpoints, Player
from bitnet_tui.app.dashboard.sources import replay_log
from bitnet_tui.session.log.events import (
    SCHEMA_VERSION,
    Alert,
    EvalDone,
    LayerWeights,
    RunEnded,
    RunStarted,
    StepDone,
    WeightsSnapshot,
)
from bitnet_tui.session.log.index import LogIndex
from bitnet_tui.session.log.reader import metric_names, read_session
from bitnet_tui.session.log.writer import SessionWriter

PER_EVENT = 100
"""Bytes each further event may add at most: the replay index keeps 24, an event object would be ~380."""


def write_log(path: Path, steps: int) -> Path:
    w = SessionWriter(path)
    w(RunStarted(step=0, time=1e9, schema=SCHEMA_VERSION, run_name="long", config={}, corpus={}, tokenizer={},
                 versions={}, argv=(), device="cpu", params=1000, ln_vocab=math.log(4096), unigram_entropy=6.0,
                 total_steps=steps))
    for s in range(1, steps + 1):
        w(StepDone(step=s, time=1e9 + s, loss=3 + math.sin(s), lr=1e-3, weight_decay=0.1, grad_norm=1.0,
                   tokens_per_s=1e4, stage=1, extra={"acc": 0.5} if s == steps else {}))
        if s % 100 == 0:
            w(EvalDone(step=s, time=1e9 + s, val_loss=3.0, unique_tokens=30, generated_tokens=256, distinct2=0.4,
                       top_share=0.2, top_tokens=(("a", 3),), entropy=3.0, samples=("a b",), prompts=("a",),
                       state="healthy"))
            w(WeightsSnapshot(step=s, time=1e9 + s, layers=tuple(
                LayerWeights(name=f"blocks.{i}.mlp", neg=0.3, zero=0.4, pos=0.3, scale=0.02, flip_rate=0.01,
                             near_boundary=0.05) for i in range(4))))
        if s % 1000 == 0:
            w(Alert(step=s, time=1e9 + s, level="info", code="note", message=f"step {s}"))
    w(RunEnded(step=steps, time=1e9 + steps, reason="finished"))
    w.close()
    return path


def export(path: Path) -> None:
    out = path.with_suffix(".csv.d")
    out.mkdir()
    writer = CsvExport(out, *metric_names(path))
    try:
        read_session(path, sink=writer)
    finally:
        writer.close()
    with open(out / "steps.csv", encoding="utf-8") as f:
        assert f.readline().rstrip().endswith(",acc")  # the metric column, found before the rows


def replay(path: Path) -> None:
    source, _ = replay_log(path, start_at="end")
    p = source.player
    p.seek_step(p.feed.step // 2)  # back: rebuilt from a checkpoint, events read back from the file
    p.to_end()
    assert p.feed.ended is not None
    source.leave()


def peak(run: Callable[[Path], object], path: Path) -> int:
    tracemalloc.start()
    try:
        run(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("run", [diagnose_path, export, replay], ids=["diagnose", "export", "replay"])
def test_memory_grows_far_slower_than_the_log(tmp_path, run):
    small, big = write_log(tmp_path / "small.jsonl", 2000), write_log(tmp_path / "big.jsonl", 6000)
    added = peak(run, big) - peak(run, small)
    events = 4000 * 1.03
    assert added < PER_EVENT * events, f"{added / events:.0f} bytes per further event"


def test_a_seek_from_a_checkpoint_is_the_same_fold_as_from_the_start(tmp_path):
    path = write_log(tmp_path / "log.jsonl", 1200)
    index = LogIndex(path)
    p = Player(index, checkpoints=Checkpoints(every=100, most=4))
    p.to_end()
    assert 2 <= len(p.checkpoints.at) <= 4 and p.checkpoints.every > 100  # thinned as the log went on
    for step in (950, 333, 1100, 1):
        p.seek_step(step)
        fresh = Feed()
        fresh.apply_all(read_session(path).stream()[: p.cursor])
        assert (p.feed.step, p.feed.loss, p.feed.evals, p.feed.timeline, p.feed.scales) == \
            (fresh.step, fresh.loss, fresh.evals, fresh.timeline, fresh.scales)
        assert (p.feed.train_loss.mean, p.feed.layers.steps) == (fresh.train_loss.mean, fresh.layers.steps)
    index.close()
