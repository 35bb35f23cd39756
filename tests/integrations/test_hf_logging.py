"""The Monitor inside Hugging Face's Trainer leaves the Trainer's own logging as the user set it, and names its
session log before ``train()``. Skipped without ``bitnet-tui[hf]``; nothing touches the hub."""

from __future__ import annotations

import math
import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from bitnet_tui.integrations.hf import MonitorCallback  # noqa: E402
from tests.integrations.helpers import by_kind  # noqa: E402
from tests.integrations.test_hf import Tokens, tiny_llama  # noqa: E402


def trainer_for(tmp_path, cb: MonitorCallback, steps: int, **args) -> transformers.Trainer:
    targs = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=steps, per_device_train_batch_size=4, learning_rate=1e-3,
        lr_scheduler_type="constant", save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
        dataloader_num_workers=0, seed=0, **args)
    return transformers.Trainer(model=tiny_llama(), args=targs, train_dataset=Tokens(256, 0), callbacks=[cb])


def test_logging_steps_10_logs_every_10_steps_while_the_session_log_gets_every_step(tmp_path, capsys):
    cb = MonitorCallback(sessions_dir=str(tmp_path / "sessions"), run_name="hf-cadence", eval_every=100)
    trainer = trainer_for(tmp_path, cb, 30, logging_steps=10, gradient_accumulation_steps=2)
    trainer.train()
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{'loss'")]
    assert len(printed) == 3  # what the user asked for: steps 10, 20, 30 (the callback used to make it log all 30)
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["step"] for h in logged] == [10, 20, 30]

    steps = by_kind(cb.session_path)["step"]
    assert [s.step for s in steps] == list(range(1, 31))
    for h in logged:  # the Trainer's logged mean over its 10 steps is the mean of the Monitor's per-step losses
        window = [s.loss for s in steps if h["step"] - 10 < s.step <= h["step"]]
        assert sum(window) / 10 == pytest.approx(h["loss"], rel=1e-5)
    with_norm = [s.step for s in steps if s.grad_norm is not None and math.isfinite(s.grad_norm)]
    assert with_norm == [10, 20, 30]  # the steps the Trainer logged carry its gradient norm


def test_the_session_log_is_known_before_train_and_is_the_one_train_writes(tmp_path):
    cb = MonitorCallback(sessions_dir=str(tmp_path / "sessions"), run_name="hf-early", eval_every=100)
    path = cb.session_path
    assert path is not None and path.exists() and path.stat().st_size == 0 and "hf-early" in path.name
    assert cb.session_path == path  # asking again claims nothing new
    trainer_for(tmp_path, cb, 3).train()
    assert cb.session_path == path
    ev = by_kind(path)
    assert [s.step for s in ev["step"]] == [1, 2, 3] and ev["run_ended"][0].reason == "finished"
    assert sorted(p.name for p in (tmp_path / "sessions").glob("*.jsonl")) == [path.name]
