"""The Monitor inside Lightning's Trainer: a tiny causal LM whose projections are ternary, steered mid-run over
the control socket. Needs ``pip install 'bitnet-tui[lightning]'``; skipped without it."""

from __future__ import annotations

import math
import warnings

import pytest

pl = pytest.importorskip("lightning.pytorch")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bitnet_tui.integrations.lightning import MonitorCallback  # noqa: E402
from tests.integrations.helpers import TinyLM, by_kind, lr_recorder, send_at  # noqa: E402

VOCAB, SEQ = 300, 16


class LitLM(pl.LightningModule):
    def __init__(self, lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        torch.manual_seed(0)
        self.net = TinyLM(VOCAB)
        self.losses: list[float] = []
        """Every micro-batch's loss, as training_step computed it."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.net(ids)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x).flatten(0, 1), y.flatten())
        self.losses.append(float(loss))
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)


class Steer(pl.Callback):
    """The test's view from inside fit(): the LR each optimizer step used, and a command over the socket when
    step ``at`` is logged."""

    def __init__(self, monitor_cb: MonitorCallback, at: int, req: dict) -> None:
        self.cb, self.at, self.req = monitor_cb, at, req
        self.replies: list[dict] = []
        self.lrs: list[float] = []

    def on_train_start(self, trainer, pl_module):
        self.lrs = lr_recorder(trainer.optimizers[0])  # after the Monitor's hooks: sees what step() uses
        self.cb.monitor.subscribe(send_at(self.at, lambda: self.cb.session_path, self.req, self.replies))


def windows(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(0, VOCAB, (n, SEQ + 1), generator=torch.Generator().manual_seed(seed))
    return ids[:, :-1], ids[:, 1:]


def fit(tmp_path, steps: int, req: dict, at: int, **trainer_kw):
    cb = MonitorCallback(prompts=[[1, 2, 3, 4], [5, 6, 7, 8]], decode=lambda ids: " ".join(map(str, ids)),
                         val_batches=[windows(4, 1)], sessions_dir=str(tmp_path / "sessions"), eval_every=3,
                         gen_tokens=4, context=64)
    steer = Steer(cb, at, req)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*windows(256, 0)), batch_size=4)
    trainer = pl.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[cb, steer],
                         default_root_dir=str(tmp_path), **trainer_kw)
    module = LitLM()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lightning's notes about workers and pytree specs on this torch
        trainer.fit(module, loader)
    return trainer, module, cb, steer


def test_set_lr_over_the_socket_changes_the_trainers_optimizer_and_is_logged(tmp_path):
    trainer, module, cb, steer = fit(tmp_path, 7, {"cmd": "set_lr", "value": 4e-4}, at=3)
    assert steer.replies == [{"ok": True}]
    assert trainer.global_step == 7
    assert steer.lrs == pytest.approx([1e-3] * 3 + [4e-4] * 4)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-3)  # what the loop set stays

    ev = by_kind(cb.session_path)
    head = ev["run_started"][0]
    assert head.run_name == "LitLM" and head.source == "lightning.Trainer" and head.total_steps == 7
    assert head.config["train"]["optimizer"] == "AdamW" and head.config["hparams"] == {"lr": 1e-3}
    (iv,) = ev["intervention"]
    assert (iv.action, iv.step, iv.source) == ("set_lr", 3, "remote") and iv.new == pytest.approx(4e-4)
    steps = ev["step"]
    assert [s.step for s in steps] == list(range(1, 8))
    assert [s.lr for s in steps] == pytest.approx(steer.lrs)
    assert [s.loss for s in steps] == pytest.approx(module.losses)

    evals = ev["eval"]
    assert [e.step for e in evals] == [0, 3, 6, 7]
    assert all(math.isfinite(e.val_loss) and e.generated_tokens == 8 for e in evals)
    snaps = ev["weights"]
    assert [s.step for s in snaps] == [0, 3, 6, 7]
    names = [lw.name for lw in snaps[-1].layers]
    assert names == [f"net.blocks.{i}.{p}" for i in range(2) for p in ("qkv", "o", "up", "down")]
    assert any(lw.flip_rate > 0 for lw in snaps[1].layers)
    (end,) = ev["run_ended"]
    assert (end.reason, end.step) == ("finished", 7)


def test_a_stop_command_ends_fit_cleanly_and_accumulated_steps_log_their_mean_loss(tmp_path):
    trainer, module, cb, steer = fit(tmp_path, 20, {"cmd": "stop", "reason": "enough"}, at=2,
                                     accumulate_grad_batches=2)
    assert steer.replies == [{"ok": True}]
    assert trainer.global_step == 2 and len(module.losses) == 4
    ev = by_kind(cb.session_path)
    mb = module.losses  # micro-batch losses
    assert [s.loss for s in ev["step"]] == pytest.approx([(mb[0] + mb[1]) / 2, (mb[2] + mb[3]) / 2], rel=1e-5)
    assert [(i.action, i.new) for i in ev["intervention"]] == [("stop", "enough")]
    (end,) = ev["run_ended"]
    assert (end.reason, end.step) == ("enough", 2)


def test_an_exception_in_fit_ends_the_log_with_the_error(tmp_path):
    class Boom(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == 2:
                raise RuntimeError("the data loader broke")

    cb = MonitorCallback(sessions_dir=str(tmp_path / "sessions"), eval_every=100)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*windows(64, 0)), batch_size=4)
    trainer = pl.Trainer(max_steps=10, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[cb, Boom()])
    with warnings.catch_warnings(), pytest.raises(RuntimeError, match="data loader broke"):
        warnings.simplefilter("ignore")
        trainer.fit(LitLM(), loader)
    (end,) = by_kind(cb.session_path)["run_ended"]
    assert end.reason == "error" and "data loader broke" in end.error and end.step == 2


def test_the_session_log_is_known_before_fit_and_is_the_one_fit_writes(tmp_path):
    cb = MonitorCallback(sessions_dir=str(tmp_path / "sessions"), run_name="lit-early", eval_every=100)
    path = cb.session_path
    assert path is not None and path.exists() and path.stat().st_size == 0 and "lit-early" in path.name
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*windows(32, 0)), batch_size=4)
    trainer = pl.Trainer(max_steps=3, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[cb])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(LitLM(), loader)
    assert cb.session_path == path
    ev = by_kind(path)
    assert [s.step for s in ev["step"]] == [1, 2, 3] and ev["run_ended"][0].reason == "finished"
    assert sorted(p.name for p in (tmp_path / "sessions").glob("*.jsonl")) == [path.name]
