"""The Monitor inside Hugging Face's Trainer: a tiny Llama whose linear layers are ternary, steered mid-run over
the control socket. Needs ``pip install 'bitnet-tui[hf]'``; skipped without it. Nothing touches the hub."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # models are built from configs; nothing may reach the network
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

import torch  # noqa: E402

from bitnet_tui.integrations.hf import MonitorCallback  # noqa: E402
from tests.conftest import ROOT  # noqa: E402
from tests.integrations.helpers import bitify, by_kind, lr_recorder, send_at  # noqa: E402

VOCAB, SEQ = 300, 24


class Tokens(torch.utils.data.Dataset):
    """Random token windows with labels (the model shifts them itself)."""

    def __init__(self, n: int, seed: int) -> None:
        self.ids = torch.randint(0, VOCAB, (n, SEQ), generator=torch.Generator().manual_seed(seed))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i].clone()}


def tiny_llama() -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64)
    model = transformers.LlamaForCausalLM(cfg)
    assert bitify(model.model.layers) == 14  # q, k, v, o, gate, up, down in each of 2 layers; the head stays
    return model


class Steer(transformers.TrainerCallback):
    """The test's own view from inside the Trainer: the LR each optimizer step used, and a command sent over
    the socket when step ``at`` is logged."""

    def __init__(self, monitor_cb: MonitorCallback, at: int, req: dict) -> None:
        self.cb, self.at, self.req = monitor_cb, at, req
        self.replies: list[dict] = []
        self.lrs: list[float] = []

    def on_train_begin(self, args, state, control, optimizer=None, **kw):
        self.lrs = lr_recorder(optimizer.optimizer)  # registered after the Monitor's hooks: sees what step() uses
        self.cb.monitor.subscribe(send_at(self.at, lambda: self.cb.session_path, self.req, self.replies))


def train(tmp_path, steps: int, req: dict, at: int, **args):
    cb = MonitorCallback(prompts=[[1, 2, 3, 4], [5, 6, 7, 8]], decode=lambda ids: " ".join(map(str, ids)),
                         val_batches=[{"input_ids": Tokens(4, 1).ids, "labels": Tokens(4, 1).ids}],
                         sessions_dir=str(tmp_path / "sessions"), run_name="hf-tiny", eval_every=3, gen_tokens=4)
    steer = Steer(cb, at, req)
    targs = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=steps, per_device_train_batch_size=4, learning_rate=1e-3,
        lr_scheduler_type="constant", save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
        dataloader_num_workers=0, seed=0, **{"logging_steps": 1, **args})  # the Trainer's losses, to compare
    trainer = transformers.Trainer(model=tiny_llama(), args=targs, train_dataset=Tokens(64, 0),
                                   callbacks=[cb, steer])
    trainer.train()
    return trainer, cb, steer


def test_set_lr_over_the_socket_changes_the_trainers_optimizer_and_is_logged(tmp_path):
    trainer, cb, steer = train(tmp_path, 7, {"cmd": "set_lr", "value": 4e-4}, at=3)
    assert steer.replies == [{"ok": True}]
    assert trainer.state.global_step == 7
    # the LR the real AdamW used: the schedule's until step 3's boundary, the command's from step 4 on
    assert steer.lrs == pytest.approx([1e-3] * 3 + [4e-4] * 4)
    inner = trainer.optimizer.optimizer
    assert inner.param_groups[0]["lr"] == pytest.approx(1e-3)  # the scheduler's own value is left in place

    ev = by_kind(cb.session_path)
    head = ev["run_started"][0]
    assert head.source == "transformers.Trainer" and head.total_steps == 7
    assert head.config["train"]["lr"] == 1e-3 and head.config["train"]["optimizer"] == "AdamW"
    assert head.config["model"]["hidden"] == 64 and head.config["trainer"]["max_steps"] == 7
    (iv,) = ev["intervention"]
    assert (iv.action, iv.step, iv.source) == ("set_lr", 3, "remote")
    assert iv.old == pytest.approx(1e-3) and iv.new == pytest.approx(4e-4)
    steps = ev["step"]
    assert [s.step for s in steps] == list(range(1, 8))
    assert [s.lr for s in steps] == pytest.approx(steer.lrs)
    hf_losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert [s.loss for s in steps] == pytest.approx(hf_losses)  # the Trainer's own per-step losses
    assert all(math.isfinite(s.grad_norm) for s in steps)

    evals = ev["eval"]
    assert [e.step for e in evals] == [0, 3, 6, 7]
    assert all(math.isfinite(e.val_loss) and e.generated_tokens == 8 and len(e.samples) == 2 for e in evals)
    snaps = ev["weights"]
    assert [s.step for s in snaps] == [0, 3, 6, 7]
    names = {lw.name for lw in snaps[-1].layers}
    assert len(names) == 14 and {"model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"} <= names
    assert all(abs(lw.neg + lw.zero + lw.pos - 1) < 1e-6 for lw in snaps[-1].layers)
    assert any(lw.flip_rate > 0 for lw in snaps[1].layers)  # the ternary weights moved between snapshots
    (end,) = ev["run_ended"]
    assert (end.reason, end.step) == ("finished", 7)
    assert not os.path.exists(str(cb.session_path).removesuffix(".jsonl") + ".sock")


def test_a_stop_command_ends_train_cleanly(tmp_path):
    trainer, cb, steer = train(tmp_path, 20, {"cmd": "stop", "reason": "enough"}, at=2, gradient_accumulation_steps=2)
    assert steer.replies == [{"ok": True}]
    assert trainer.state.global_step == 2  # the Trainer stopped at the step the command arrived
    ev = by_kind(cb.session_path)
    assert [s.step for s in ev["step"]] == [1, 2]
    assert [(i.action, i.new) for i in ev["intervention"]] == [("stop", "enough")]
    (end,) = ev["run_ended"]
    assert (end.reason, end.step) == ("enough", 2)


def test_a_non_finite_loss_the_trainer_filters_out_of_its_log_still_reaches_the_monitor(tmp_path):
    class Poison(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step == 2:
                with torch.no_grad():
                    model.model.embed_tokens.weight.fill_(float("nan"))

    cb = MonitorCallback(sessions_dir=str(tmp_path / "sessions"), eval_every=100, on_nonfinite="stop")
    targs = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=6, per_device_train_batch_size=4, save_strategy="no",
        report_to="none", use_cpu=True, disable_tqdm=True, logging_steps=1)
    trainer = transformers.Trainer(model=tiny_llama(), args=targs, train_dataset=Tokens(32, 0),
                                   callbacks=[Poison(), cb])
    trainer.train()
    assert trainer.state.global_step == 3
    assert math.isfinite([h["loss"] for h in trainer.state.log_history if "loss" in h][-1])  # the Trainer's mean
    ev = by_kind(cb.session_path)
    assert [math.isfinite(s.loss) for s in ev["step"]] == [True, True, False]
    (alert,) = [a for a in ev["alert"] if a.code == "nonfinite"]
    assert alert.step == 3 and (ev["run_ended"][0].reason, ev["run_ended"][0].step) == ("nonfinite", 3)


CRASH = """
import sys
import transformers
from bitnet_tui.integrations.hf import MonitorCallback
from tests.integrations.test_hf import Tokens, tiny_llama

class Boom(transformers.TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == 3:
            raise RuntimeError("CUDA error: device-side assert triggered")

cb = MonitorCallback(prompts=[[1, 2, 3, 4]], decode=str, sessions_dir=sys.argv[1], run_name="hf-crash",
                     eval_every=100, gen_tokens=4)
targs = transformers.TrainingArguments(output_dir=sys.argv[1] + "/out", max_steps=10, per_device_train_batch_size=4,
                                       save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True)
transformers.Trainer(model=tiny_llama(), args=targs, train_dataset=Tokens(64, 0), callbacks=[cb, Boom()]).train()
"""


def test_an_exception_inside_train_still_ends_the_log_with_it(tmp_path):
    """The Trainer has no exception hook for callbacks: the Monitor ends the log when the process exits."""
    proc = subprocess.run([sys.executable, "-c", CRASH, str(tmp_path)], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 1 and "device-side assert triggered" in proc.stderr
    (log,) = tmp_path.glob("*.jsonl")
    ev = by_kind(log)
    assert [s.step for s in ev["step"]] == [1, 2, 3]  # step 3's update was made before its on_step_end raised
    (end,) = ev["run_ended"]
    assert (end.reason, end.step, end.error) == ("error", 3, "RuntimeError: CUDA error: device-side assert triggered")
    assert [a.code for a in ev["alert"]][-1] == "crash"
