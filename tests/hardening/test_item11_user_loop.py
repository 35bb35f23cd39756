"""The instrument never hurts the loop it watches: a non-finite loss never hangs a Monitor nothing can resume, a
failing decode or an out-of-range prompt is an alert and a skipped eval, and a wrong argument to ``step`` is a
clear error at the call (a non-scalar loss, None, a string, after close, from a forked child)."""

from __future__ import annotations

import math
import os
import threading

import pytest
import torch

from bitnet_tui import Monitor, MonitorConfig
from bitnet_tui.session.log.reader import read_session
from tests.integrations.helpers import TinyLM

VOCAB = 300


def monitor(tmp_path, **kw):
    torch.manual_seed(0)
    model = TinyLM(VOCAB)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, VOCAB, (4, 17))
    options = {"gen_tokens": 4, "context": 64, **kw.pop("options", {})}
    mon = Monitor(model, opt, decode=kw.pop("decode", lambda ids: " ".join(map(str, ids))),
                  prompts=kw.pop("prompts", [[1, 2, 3]]), val_batches=[(x[:, :-1], x[:, 1:])],
                  sessions_dir=str(tmp_path), eval_every=kw.pop("eval_every", 2), options=MonitorConfig(**options))
    return model, opt, mon, x


def train(model, opt, mon, x, steps: int, nan_at: int | None = None) -> int:
    import torch.nn.functional as F

    done = 0
    for s in range(1, steps + 1):
        loss = F.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten())
        if s == nan_at:
            loss = loss * math.nan
        loss.backward()
        opt.step()
        opt.zero_grad()
        mon.step(loss)
        done = s
        if mon.should_stop:
            break
    return done


def test_a_nan_without_a_control_channel_stops_the_run_instead_of_hanging(tmp_path):
    model, opt, mon, x = monitor(tmp_path)
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(train(model, opt, mon, x, 20, nan_at=3)), daemon=True)
    with mon:
        t.start()
        t.join(timeout=60)
    assert not t.is_alive(), "the loop hung on a non-finite loss with nothing to resume it"
    assert result == [3] and mon.last_end.reason == "nonfinite"
    alert = next(e for e in read_session(mon.session_path).events if e.kind == "alert" and e.code == "nonfinite")
    assert "stopping" in alert.message


@pytest.mark.parametrize("case", ["decode raises", "prompt id out of range"])
def test_a_failing_eval_is_an_alert_and_training_goes_on(tmp_path, case):
    def bad_decode(ids):
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "their tokenizer")

    kw = {"decode": bad_decode} if case == "decode raises" else {"prompts": [[1, 2, VOCAB + 50]]}
    model, opt, mon, x = monitor(tmp_path, **kw)
    with mon:
        assert train(model, opt, mon, x, 8) == 8
    events = read_session(mon.session_path).events
    failed = [e for e in events if e.kind == "alert" and e.code == "measure-failed"]
    assert failed and failed[0].step == 0 and "the eval at step 0 failed and was skipped" in failed[0].message
    assert len(failed) < 5  # 1st, 2nd, 4th ... failure: never a flood
    assert [e.step for e in events if e.kind == "step"] == list(range(1, 9))
    assert mon.last_end.reason == "finished"


def test_wrong_arguments_to_step_are_clear_errors_at_the_call(tmp_path):
    model, opt, mon, x = monitor(tmp_path)
    with mon:
        for bad, err in ((None, TypeError), ("1.5", TypeError), (True, TypeError), (torch.ones(4), ValueError)):
            with pytest.raises(err, match="Monitor.step"):
                mon.step(bad)
        assert mon.step_count == 0  # nothing was recorded by a refused call
        mon.step(torch.tensor(2.5))
        mon.step(2.5)
    with pytest.raises(ValueError, match="after close"):
        mon.step(1.0)
    steps = [e for e in read_session(mon.session_path).events if e.kind == "step"]
    assert [s.loss for s in steps] == [2.5, 2.5] and all(math.isfinite(s.lr) for s in steps)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_cannot_write_into_its_parents_log(tmp_path):
    model, opt, mon, x = monitor(tmp_path)
    with mon:
        mon.step(1.0)
        pid = os.fork()
        if pid == 0:  # the child: its step must refuse, and it leaves without touching the log
            try:
                mon.step(2.0)
                code = 1
            except ValueError:
                code = 0
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        mon.step(3.0)
    assert [e.step for e in read_session(mon.session_path).events if e.kind == "step"] == [1, 2]


def test_a_step_before_any_optimizer_step_logs_the_lr_the_optimizer_holds(tmp_path):
    model, opt, mon, x = monitor(tmp_path)
    with mon:
        mon.step(1.0)  # no opt.step() yet
    (step,) = [e for e in read_session(mon.session_path).events if e.kind == "step"]
    assert step.lr == pytest.approx(1e-3)
