"""Each example in examples/ runs as a user would run it (its own process, tiny settings) and leaves a complete
session log: steps, evals, weight snapshots of its ternary layers, and a clean end."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.integrations.helpers import by_kind

TINY = ["--steps", "6", "--eval-every", "3", "--hidden", "32", "--vocab", "300", "--context", "16",
        "--batch-size", "4"]


@pytest.mark.slow
@pytest.mark.parametrize(("script", "needs", "source", "ternary"), [
    ("plain_loop.py", None, "monitor", 8),
    ("hf_trainer.py", "transformers", "transformers.Trainer", 14),
    ("lightning_module.py", "lightning", "lightning.Trainer", 8),
])
def test_example_runs_and_writes_a_complete_session(tmp_path, script, needs, source, ternary):
    if needs:
        pytest.importorskip(needs)
    sessions = tmp_path / "sessions"
    res = subprocess.run([sys.executable, str(ROOT / "examples" / script), *TINY, "--sessions-dir", str(sessions)],
                         capture_output=True, text=True, timeout=170, cwd=tmp_path,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    (log,) = sessions.glob("*.jsonl")
    assert res.stdout.strip().endswith(f"bitnet-tui summary {log}")
    ev = by_kind(log)
    assert ev["run_started"][0].source == source
    assert [s.step for s in ev["step"]] == [1, 2, 3, 4, 5, 6]
    assert [e.step for e in ev["eval"]] == [0, 3, 6] and all(e.val_loss and e.samples for e in ev["eval"])
    assert [len(w.layers) for w in ev["weights"]] == [ternary] * 3
    assert (ev["run_ended"][0].reason, ev["run_ended"][0].step) == ("finished", 6)
