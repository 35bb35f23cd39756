"""The Monitor's mirrors in other tools, and ``bitnet-tui export``: TensorBoard (read back with its own
EventAccumulator) and trackio (read back from its local store in a fresh process). Each is skipped when its
package is absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, cli
from tests.integrations.helpers import by_kind, model_and_monitor, train_step


@pytest.fixture
def tensorboard():
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def read(d) -> dict[str, list[tuple[int, float]]]:
        ea = EventAccumulator(str(d))
        ea.Reload()
        return {tag: [(e.step, e.value) for e in ea.Scalars(tag)] for tag in ea.Tags()["scalars"]}

    return read


def test_tensorboard_mirror_and_export_to_csv_and_tensorboard(tmp_path, tensorboard):
    model, opt, mon = model_and_monitor(tmp_path, 1e-3, eval_every=3, tensorboard=str(tmp_path / "tb"))
    with mon:
        for step in range(1, 7):
            mon.step(train_step(model, opt, step), my_metric=step / 10)
            opt.zero_grad()
    log = mon.session_path
    ev = by_kind(log)
    losses = [(s.step, s.loss) for s in ev["step"]]
    val = [(e.step, e.val_loss) for e in ev["eval"]]
    live = tensorboard(tmp_path / "tb")
    for tag, want in (("train/loss", losses), ("eval/val_loss", val), ("user/my_metric", [(s, s / 10) for s in
                                                                                          range(1, 7)])):
        assert [s for s, _ in live[tag]] == [s for s, _ in want], tag
        assert [v for _, v in live[tag]] == pytest.approx([v for _, v in want], rel=1e-6), tag  # float32 there
    assert [s for s, _ in val] == [0, 3, 6] and [s for s, _ in live["weights/zero_mean"]] == [0, 3, 6]

    res = cli("export", str(log), "--to", "tensorboard", str(tmp_path / "tb-export"))
    assert res.returncode == 0, res.stderr
    assert tensorboard(tmp_path / "tb-export") == live  # the export writes what the run mirrored

    res = cli("export", str(log), "--to", "csv", str(tmp_path / "csv"))
    assert res.returncode == 0, res.stderr
    rows = (tmp_path / "csv" / "steps.csv").read_text().splitlines()
    head = rows[0].split(",")
    assert head[:3] == ["step", "time", "loss"] and head[-1] == "my_metric"
    assert [(int(r.split(",")[0]), float(r.split(",")[2])) for r in rows[1:]] == losses
    layers = (tmp_path / "csv" / "weights.csv").read_text().splitlines()
    assert len(layers) == 1 + 3 * 8  # three snapshots of eight ternary layers


TRACKIO_RUN = """
import json, sys
sys.path.insert(0, sys.argv[1])
from tests.integrations.helpers import model_and_monitor, train_step
import pathlib
model, opt, mon = model_and_monitor(pathlib.Path(sys.argv[2]), 1e-3, eval_every=3, trackio="bitnet-tui-test",
                                    run_name="mirrored")
with mon:
    for step in range(1, 5):
        mon.step(train_step(model, opt, step))
        opt.zero_grad()
from trackio.sqlite_storage import SQLiteStorage
logs = SQLiteStorage.get_logs("bitnet-tui-test", "mirrored")
print(json.dumps({"log": str(mon.session_path), "rows": [{k: v for k, v in r.items() if k != "timestamp"}
                                                          for r in logs]}))
"""


def test_trackio_mirror_logs_the_runs_figures_locally(tmp_path):
    pytest.importorskip("trackio")
    env = {**os.environ, "TRACKIO_DIR": str(tmp_path / "trackio"), "HF_HUB_OFFLINE": "1"}  # read at import
    res = subprocess.run([sys.executable, "-c", TRACKIO_RUN, str(ROOT), str(tmp_path)], capture_output=True,
                         text=True, timeout=120, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    ev = by_kind(out["log"])
    mirrored: dict[int, dict] = {}
    for row in out["rows"]:  # one trackio.log per event: a step's loss, eval and snapshot are separate rows
        mirrored.setdefault(row["step"], {}).update(row)
    for s in ev["step"]:
        assert mirrored[s.step]["train/loss"] == pytest.approx(s.loss) and mirrored[s.step]["train/lr"] == 1e-3
    for e in ev["eval"]:
        assert mirrored[e.step]["eval/val_loss"] == pytest.approx(e.val_loss)
    assert [e.step for e in ev["eval"]] == [0, 3] and "weights/zero_mean" in mirrored[3]
    assert (tmp_path / "trackio" / "bitnet-tui-test.db").exists()
