"""Diagnosis under Hugging Face's Trainer: a tiny Llama with ternary projections given the seed report's optimizer
(``Trainer(optimizers=(torch.optim.Adam(weight_decay=0.1), None))``) decays, and ``diagnose`` names the optimizer
first in the Trainer's terms; the Trainer's own AdamW does not decay. Skipped without ``bitnet-tui[hf]``."""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

import torch  # noqa: E402

from bitnet_tui.app.cli.diagnose import diagnose_path  # noqa: E402
from bitnet_tui.integrations.hf import MonitorCallback  # noqa: E402
from bitnet_tui.session.log.reader import read_session  # noqa: E402
from tests.integrations.test_hf import Tokens, tiny_llama  # noqa: E402

pytestmark = pytest.mark.slow


def train(tmp_path, adam: bool):
    model = tiny_llama()
    cb = MonitorCallback(prompts=[[1, 2, 3, 4], [5, 6, 7, 8]], decode=lambda ids: " ".join(map(str, ids)),
                         val_batches=[{"input_ids": Tokens(4, 1).ids, "labels": Tokens(4, 1).ids}],
                         sessions_dir=str(tmp_path / "sessions"), run_name="hf-user", eval_every=20, gen_tokens=4)
    targs = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=160, per_device_train_batch_size=4, learning_rate=1.5e-3,
        weight_decay=0.1, lr_scheduler_type="constant", save_strategy="no", report_to="none", use_cpu=True,
        disable_tqdm=True, dataloader_num_workers=0, seed=0)
    opt = (torch.optim.Adam(model.parameters(), lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.1), None) if adam \
        else (None, None)
    transformers.Trainer(model=model, args=targs, train_dataset=Tokens(256, 0), callbacks=[cb],
                         optimizers=opt).train()
    return cb.session_path


def test_the_seed_reports_optimizer_under_the_hf_trainer_is_named_in_the_trainers_terms(tmp_path):
    log = train(tmp_path, adam=True)
    assert any(e.kind == "alert" and e.code == "decay" for e in read_session(log).events)
    d, _ = diagnose_path(log)
    assert d.trouble and d.causes[0].code == "coupled-l2" and d.causes[0].tier == 1
    what, change = d.tries[0]
    assert what.startswith("in your Trainer setup") and "optimizers=(torch.optim.AdamW(" in change
    assert all("--" not in c and "bitnet-tui run" not in c for _, c in d.tries)


def test_the_trainers_own_adamw_does_not_decay(tmp_path):
    log = train(tmp_path, adam=False)
    assert not any(e.kind == "alert" and e.code == "decay" for e in read_session(log).events)
    d, _ = diagnose_path(log)
    assert all(c.code != "coupled-l2" for c in d.causes) and d.decayed is None
