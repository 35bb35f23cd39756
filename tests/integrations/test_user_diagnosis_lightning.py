"""Diagnosis under Lightning: a LightningModule whose configure_optimizers returns the seed report's optimizer
(``torch.optim.Adam(weight_decay=0.1)`` on every parameter) decays, and ``diagnose`` names the optimizer first in
configure_optimizers' terms; AdamW with decay on 2-D weights does not. Skipped without ``bitnet-tui[lightning]``."""

from __future__ import annotations

import warnings

import pytest

pl = pytest.importorskip("lightning.pytorch")

import torch  # noqa: E402

from bitnet_tui.app.cli.diagnose import diagnose_path  # noqa: E402
from bitnet_tui.integrations.lightning import MonitorCallback  # noqa: E402
from bitnet_tui.session.log.reader import read_session  # noqa: E402
from tests.integrations.test_lightning import LitLM, windows  # noqa: E402

pytestmark = pytest.mark.slow


class Seed(LitLM):
    def __init__(self, adam: bool) -> None:
        super().__init__(lr=1.5e-3)
        self.adam = adam

    def configure_optimizers(self):
        if self.adam:
            return torch.optim.Adam(self.parameters(), lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.1)
        decay = [p for p in self.parameters() if p.dim() >= 2]
        rest = [p for p in self.parameters() if p.dim() < 2]
        return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                                 lr=1.5e-3)


def fit(tmp_path, adam: bool):
    cb = MonitorCallback(prompts=[[1, 2, 3, 4], [5, 6, 7, 8]], decode=lambda ids: " ".join(map(str, ids)),
                         val_batches=[windows(4, 1)], sessions_dir=str(tmp_path / "sessions"), eval_every=20,
                         gen_tokens=4, context=64)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*windows(640, 0)), batch_size=4)
    trainer = pl.Trainer(max_steps=160, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[cb],
                         default_root_dir=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Seed(adam), loader)
    return cb.session_path


def test_the_seed_reports_optimizer_in_a_lightning_module_is_named_in_its_terms(tmp_path):
    log = fit(tmp_path, adam=True)
    assert any(e.kind == "alert" and e.code == "decay" for e in read_session(log).events)
    d, _ = diagnose_path(log)
    assert d.trouble and d.causes[0].code == "coupled-l2" and d.causes[0].tier == 1
    what, change = d.tries[0]
    assert what.startswith("in your LightningModule") and change.startswith("configure_optimizers(): return")
    assert all("--" not in c and "bitnet-tui run" not in c for _, c in d.tries)


def test_adamw_in_a_lightning_module_does_not_decay(tmp_path):
    log = fit(tmp_path, adam=False)
    assert not any(e.kind == "alert" and e.code == "decay" for e in read_session(log).events)
    d, _ = diagnose_path(log)
    assert all(c.code != "coupled-l2" for c in d.causes) and d.decayed is None
