"""Acceptance: the Monitor on a user's own loop, with a model and a ternary layer bitnet-tui did not define.

Steered from another process with ``bitnet-tui ctl`` while it runs; read afterwards by ``summary``, ``compare``
and replay; paused, stopped and asked for a checkpoint over its socket; and invisible to the loop it watches.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from bitnet_tui import Monitor, MonitorConfig
from bitnet_tui.session.control.client import request
from bitnet_tui.session.control.peer import control_path
from bitnet_tui.session.log.events import Alert, Intervention
from tests.conftest import ROOT, cli, wait_until
from tests.integrations.helpers import (
    VOCAB,
    TernaryLinear,
    TinyLM,
    batch,
    by_kind,
    lr_recorder,
    model_and_monitor,
    train_step,
)


def test_ctl_from_another_process_steers_a_user_loop_and_the_cli_reads_the_result(tmp_path):
    model, opt, mon = model_and_monitor(tmp_path, 3e-3, run_name="user-loop", eval_every=25)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / 2000)  # the user's decay under the rule
    seen: list[Intervention] = []
    mon.subscribe(lambda ev: seen.append(ev) if isinstance(ev, Intervention) else None)
    with mon:
        used = lr_recorder(opt)  # after the Monitor's hooks: the LR each step really used
        log = mon.session_path
        deadline = time.monotonic() + 90
        for step in range(1, 100_000):
            loss = train_step(model, opt, step)
            sched.step()
            opt.zero_grad()
            mon.step(loss)
            if step == 3:  # a person types this in another terminal while the loop runs on
                ctl = subprocess.Popen([sys.executable, "-m", "bitnet_tui", "ctl", str(log), "set-lr", "1e-3"],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
            if seen and step >= seen[0].step + 5:
                break
            assert time.monotonic() < deadline, "the ctl command never arrived"
            time.sleep(0.01)
    out, err = ctl.communicate(timeout=30)
    assert ctl.returncode == 0, err
    assert json.loads(out) == {"ok": True}
    (iv,) = seen
    k, base = iv.step, 3e-3
    assert (iv.action, iv.source) == ("set_lr", "remote") and iv.new == pytest.approx(1e-3)
    scheduled = [base * (1 - s / 2000) for s in range(len(used))]
    assert used[:k] == pytest.approx(scheduled[:k])  # the user's schedule until the command's step
    assert used[k:] == pytest.approx([v * 1e-3 / scheduled[k] for v in scheduled[k:]])  # 1e-3, then the decay
    assert opt.param_groups[0]["lr"] == pytest.approx(sched.get_last_lr()[0])  # the scheduler's value is intact

    ev = by_kind(log)
    assert [s.lr for s in ev["step"]] == pytest.approx(used)
    assert ev["run_ended"][0].reason == "finished"
    layers = [lw.name for lw in ev["weights"][-1].layers]
    assert layers == [f"blocks.{i}.{p}" for i in range(2) for p in ("qkv", "o", "up", "down")]

    s = json.loads(cli("summary", str(log), "--json").stdout)
    assert s["end_reason"] == "finished" and s["key_config"]["lr"] == 3e-3 and s["evals"] == len(ev["eval"])
    assert [(t["code"], t["step"]) for t in s["timeline"] if t["kind"] == "intervention"] == [("set_lr", k)]
    assert len(s["weights"]) == 8

    other_model, other_opt, other = model_and_monitor(tmp_path, 1e-3, run_name="user-loop-b", eval_every=5)
    with other:
        for step in range(1, 6):
            other.step(train_step(other_model, other_opt, step))
            other_opt.zero_grad()
    res = cli("compare", str(log), str(other.session_path), "--json")
    assert res.returncode == 0, res.stderr
    table = json.loads(res.stdout)
    assert table["differing_keys"] == ["train.lr"]
    assert [r["differs"]["train.lr"] for r in table["sessions"]] == [3e-3, 1e-3]
    assert [r["last_step"] for r in table["sessions"]] == [ev["run_ended"][0].step, 5]

    from bitnet_tui.app.dashboard.app import make_app

    app = make_app("replay", session_path=log, start_at="end")
    assert app.mode == "replay" and app.feed.ended is not None and app.feed.ended.reason == "finished"
    assert app.feed.step == ev["run_ended"][0].step and len(app.feed.evals) == len(ev["eval"])
    assert len(app.source.player.intervention_idx) == 1


def test_pause_blocks_step_until_resume_checkpoint_without_save_alerts_and_stop_ends_the_loop(tmp_path):
    model, opt, mon = model_and_monitor(tmp_path, 1e-3, eval_every=1000)
    seen: list = []
    mon.subscribe(seen.append)  # before the loop's thread starts: events arrive in it
    took: dict[int, float] = {}
    done: list[int] = []
    failed: list[BaseException] = []

    def loop() -> None:
        try:
            with mon:
                for step in range(1, 100_000):
                    loss = train_step(model, opt, step)
                    opt.zero_grad()
                    t0 = time.perf_counter()
                    mon.step(loss)
                    took[step] = time.perf_counter() - t0
                    done.append(step)
                    if mon.should_stop:
                        return
                    time.sleep(0.01)
        except BaseException as e:  # the assertion below reports it
            failed.append(e)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    wait_until(lambda: len(done) >= 2, what="two steps")
    sock = control_path(mon.session_path)
    assert request(sock, {"cmd": "pause"}) == {"ok": True}
    wait_until(lambda: mon.paused, what="the pause")
    held = len(done)
    time.sleep(0.6)
    assert len(done) == held, "mon.step() returned while paused"
    assert request(sock, {"cmd": "ping"})["paused"] is True
    assert request(sock, {"cmd": "checkpoint"}) == {"ok": True}  # taken while paused: this run has no save
    wait_until(lambda: any(isinstance(e, Alert) and e.code == "checkpoint" for e in list(seen)),
               what="the checkpoint alert")
    assert request(sock, {"cmd": "resume"}) == {"ok": True}
    wait_until(lambda: len(done) >= held + 3, what="steps after resume")
    assert request(sock, {"cmd": "stop"}) == {"ok": True}
    t.join(30)
    assert not t.is_alive() and not failed, failed
    assert mon.should_stop
    paused_step = held + 1
    assert took[paused_step] >= 0.6 > max(v for s, v in took.items() if s != paused_step)

    ev = by_kind(mon.session_path)
    acts = [(i.action, i.step) for i in ev["intervention"]]
    assert acts[:3] == [("pause", paused_step), ("checkpoint", paused_step), ("resume", paused_step)]
    assert acts[3][0] == "stop" and acts[3][1] == done[-1]
    (alert,) = [a for a in ev["alert"] if a.code == "checkpoint"]
    assert alert.level == "warning" and "no save function" in alert.message
    assert "checkpoint" not in ev
    assert (ev["run_ended"][0].reason, ev["run_ended"][0].step) == ("stopped", done[-1])
    assert not control_path(mon.session_path).exists()


class NoisyLM(TinyLM):
    """A user model whose forward draws from the global RNG even in eval mode (stochastic rounding noise), with
    dropout, and with one dropout the user froze in eval mode: what a careless diagnostic would disturb."""

    def __init__(self) -> None:
        super().__init__(VOCAB, linear=TernaryLinear)
        self.drop = nn.Dropout(0.2)
        self.frozen = nn.Dropout(0.5)
        self.frozen.eval()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids) + 0.01 * torch.rand(ids.shape[0], ids.shape[1], 1)
        h = self.frozen(self.drop(h + self.pos(torch.arange(ids.shape[1]))))
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.norm(h))


def test_diagnostics_leave_modes_gradients_and_the_rng_as_the_loop_sees_them(tmp_path):
    def run(watch: bool) -> tuple[list[float], dict[str, torch.Tensor]]:
        torch.manual_seed(0)
        model = NoisyLM()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        modes, rng = [m.training for m in model.modules()], torch.get_rng_state()
        layers = [m for m in model.modules() if isinstance(m, TernaryLinear)]
        mon = Monitor(model, opt, prompts=[[1, 2, 3]], val_batches=[batch(9)], eval_every=2,
                      sessions_dir=str(tmp_path / "sessions"),
                      options=MonitorConfig(gen_tokens=3, context=64, layers=layers)) if watch else None
        if mon is not None:
            mon.start()  # probes the vocabulary, evals at step 0
            assert [m.training for m in model.modules()] == modes and torch.equal(rng, torch.get_rng_state())
        losses = []
        for step in range(1, 7):
            x, y = batch(step)
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
            loss.backward()
            opt.step()
            if mon is not None:  # called before zero_grad: the gradients are still the loop's
                modes = [m.training for m in model.modules()]
                grads = [p.grad.clone() for p in model.parameters()]
                rng = torch.get_rng_state()
                mon.step(loss)
                assert [m.training for m in model.modules()] == modes
                assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
                assert torch.equal(rng, torch.get_rng_state())
            opt.zero_grad()
            losses.append(loss.item())
        if mon is not None:
            mon.close()
            assert [e.step for e in by_kind(mon.session_path)["eval"]] == [0, 2, 4, 6]
        return losses, {k: v.clone() for k, v in model.state_dict().items()}

    watched, plain = run(True), run(False)
    assert watched[0] == plain[0]  # bit for bit: the same losses ...
    assert all(torch.equal(watched[1][k], plain[1][k]) for k in plain[1])  # ... and the same weights


CRASHING_LOOP = """
import os
import sys
from pathlib import Path
from tests.integrations.helpers import model_and_monitor, train_step
model, opt, mon = model_and_monitor(Path(sys.argv[1]), 3e-3, run_name="crash", eval_every=1000)
mon.start()  # no `with`, as in a loop whose framework has no exception hook (transformers' Trainer)
for step in range(1, 6):
    mon.step(train_step(model, opt, step))
    opt.zero_grad()
    if step == 4 and sys.argv[2] == "raise":
        raise RuntimeError("CUDA error: an illegal memory access was encountered")
    if step == 2 and os.fork() == 0:  # a child process (a data worker, a helper) that exits on its own
        sys.exit(0)
if sys.argv[2] == "close":
    mon.close()
"""


@pytest.mark.parametrize("how", ["raise", "forget", "close"])
def test_a_process_that_ends_with_the_monitor_open_still_ends_its_log(tmp_path, how):
    """...once, by the process that opened it: the forked child's exit leaves the log alone."""
    proc = subprocess.run([sys.executable, "-c", CRASHING_LOOP, str(tmp_path), how], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == (1 if how == "raise" else 0), proc.stderr
    (log,) = (tmp_path / "sessions").glob("*.jsonl")
    (end,) = by_kind(log)["run_ended"]
    if how == "close":
        assert (end.reason, end.step) == ("finished", 5)
        return
    assert end.reason == "error" and end.step == (4 if how == "raise" else 5)
    if how == "raise":
        assert end.error == "RuntimeError: CUDA error: an illegal memory access was encountered"
    else:
        assert "Monitor still open" in end.error
    s = json.loads(cli("summary", str(log), "--json").stdout)
    assert s["end_reason"] == "error"
