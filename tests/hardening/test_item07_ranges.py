"""Issue 13, item 7 (and item 8's control-socket values): every path into a run meets the same ranges.

The command line, a config read back from a log's header (``--resume``/``--from``), a checkpoint, ``sweep``
and the control channel (``ctl``, the raw socket, the dashboard's commands) all refuse what the log reader
would refuse: ``--steps 9223372036854775807``, a checkpoint whose ``step`` is 1e30, ``--checkpoint-every -1``,
``--lr 5e-324`` (and a later scale that would divide by zero), a value above 1e308.
"""

from __future__ import annotations

import json
import math
import time

import pytest
import torch
from typer.testing import CliRunner

from bitnet_model.train.config import RunConfig
from bitnet_tui.app.cli.main import app
from bitnet_tui.instrument.lr import LRControl
from bitnet_tui.instrument.server import ControlServer
from bitnet_tui.instrument.steering import Steering
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.control.client import request
from bitnet_tui.session.control.peer import control_path
from bitnet_tui.session.log.paths import checkpoint_dir
from tests.conftest import tiny_args, tiny_config
from tests.control.helpers import RecordingRun, reply_to
from tests.fixtures.scripted import scripted_run

runner = CliRunner()
BIG = "9223372036854775807"


def _no_traceback(r) -> None:
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output


@pytest.mark.parametrize("args,says", [
    (["--steps", BIG], "steps must be between"), (["--lr", "5e-324"], "lr must be between"),
    (["--lr", "1e400"], "lr must be"), (["--lr", "nan"], "lr must be"), (["--warmup", BIG], "warmup"),
    (["--eval-every", BIG], "eval_every"), (["--checkpoint-every", "-1"], "--checkpoint-every"),
    (["--checkpoint-every", BIG], "--checkpoint-every"), (["--keep-checkpoints", "-1"], "--keep-checkpoints"),
], ids=lambda a: " ".join(a) if isinstance(a, list) else None)
def test_the_command_line_refuses_out_of_range_values(tmp_path, args, says):
    r = runner.invoke(app, ["run", "--headless", *tiny_args(steps=2), *args, "--sessions-dir", str(tmp_path / "s")])
    assert r.exit_code == 2, r.output
    _no_traceback(r)
    assert says in r.output
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("args", [["--lr", "1e-3,5e-324"], ["--steps", f"2,{BIG}"], ["--lr", "1e-3,inf"]],
                         ids=" ".join)
def test_sweep_refuses_out_of_range_values_before_starting_anything(tmp_path, args):
    r = runner.invoke(app, ["sweep", *args, "--sessions-dir", str(tmp_path / "s")])
    assert r.exit_code == 2, r.output
    _no_traceback(r)
    assert r.output.startswith("error: ") and not (tmp_path / "s").exists()


def _parent_log(sdir, **train):
    """A finished session whose header config has ``train`` overrides (written as a hostile file would)."""
    sdir.mkdir(exist_ok=True)
    events = [e.to_dict() for e in scripted_run([20, 10], config=tiny_config(None, steps=8), eval_every=4)]
    events[0]["config"]["train"].update(train)
    log = sdir / "2026-01-01T00-00-00_parent.jsonl"
    log.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    checkpoint_dir(log).mkdir()
    (checkpoint_dir(log) / "step00000004.pt").write_bytes(b"not read: the config is refused first")
    return log


@pytest.mark.parametrize("train,says", [({"steps": int(BIG)}, "steps must be"),
                                        ({"steps": int("9" * 400)}, "steps must be"),
                                        ({"lr": 5e-324}, "lr must be between"), ({"lr": 1e308}, "lr must be"),
                                        ({"warmup_steps": -1}, "warmup_steps must be")],
                         ids=["steps-int64", "steps-400-digits", "lr-5e-324", "lr-1e308", "warmup-negative"])
@pytest.mark.parametrize("how", ["--resume", "--from"])
def test_a_config_read_back_from_a_log_header_meets_the_same_ranges(tmp_path, data_loads_guard, train, says, how):
    log = _parent_log(tmp_path / "s", **train)
    r = runner.invoke(app, ["run", "--headless", how, str(log), "--sessions-dir", str(tmp_path / "s")])
    assert r.exit_code == 2, r.output
    _no_traceback(r)
    assert says in r.output and r.output.startswith("error: ")
    assert len(list((tmp_path / "s").glob("*.jsonl"))) == 1


@pytest.fixture
def data_loads_guard(monkeypatch):
    import bitnet_model.data.dataset as dataset

    monkeypatch.setattr(dataset, "load_data", lambda *a, **k: pytest.fail("the data was loaded"))


def test_a_checkpoint_whose_step_is_1e30_is_refused(tmp_path):
    sdir = tmp_path / "s"
    log = _parent_log(sdir)
    cfg = RunConfig.from_dict(json.loads(log.read_text().splitlines()[0])["config"])
    torch.save({"format": "bitnet-tui-checkpoint", "version": 2, "step": 1e30, "config": cfg.to_dict(),
                "model": {}, "optimizer": {}}, checkpoint_dir(log) / "step00000004.pt")
    r = runner.invoke(app, ["run", "--headless", "--resume", str(log), "--sessions-dir", str(sdir)])
    assert r.exit_code == 2, r.output
    _no_traceback(r)
    assert "unusable step ('1e+30')" in r.output


def _steering(scheduled=1e-3):
    lr = LRControl()
    lr.scheduled = scheduled
    seen = []
    return Steering(lr, seen.append), lr, seen


@pytest.mark.parametrize("cmd", [C.SetLR(value=5e-324), C.SetLR(value=math.inf), C.SetLR(value=1.0),
                                 C.ScaleLR(factor=1e-320), C.ScaleLR(factor=1e300), C.ScaleLR(factor=0.0)],
                         ids=["set-5e-324", "set-inf", "set-1", "scale-1e-320", "scale-1e300", "scale-0"])
def test_the_run_refuses_an_lr_outside_the_range_whatever_the_path(cmd):
    st, lr, seen = _steering()
    st.apply(cmd)
    assert lr.lr_now() == 1e-3 and not lr.rules
    assert seen and seen[-1].kind == "alert" and "refused" in seen[-1].message


def test_the_smallest_lr_then_a_scale_down_never_divides_by_zero():
    st, lr, seen = _steering()
    st.apply(C.SetLR(value=C.MIN_LR))
    st.apply(C.ScaleLR(factor=0.5))  # below the minimum: refused, the LR stays
    assert lr.lr_now() == pytest.approx(C.MIN_LR) and math.isfinite(lr.factor())
    st.apply(C.ScaleLR(factor=2.0))
    assert lr.lr_now() == pytest.approx(2 * C.MIN_LR)
    lr.observe(0.0)  # a schedule at zero (the end of a decay): the rule's reference stays its peak
    assert math.isfinite(lr.factor()) and lr.lr_now() == 0.0


@pytest.fixture
def served(tmp_path):
    sdir = tmp_path / "s"
    sdir.mkdir(mode=0o700)
    log = sdir / "2026-01-01T00-00-00_r.jsonl"
    log.write_text("")
    run = RecordingRun()
    server = ControlServer(run, control_path(log))
    yield sdir, log, run
    server.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("line", [
    b'{"cmd": "scale_lr", "factor": ' + b"9" * 400 + b"}", b'{"cmd": "set_lr", "value": ' + b"9" * 400 + b"}",
    b'{"cmd": "set_lr", "value": 1e309}', b'{"cmd": "scale_lr", "factor": -1e309}',
    b'{"cmd": "set_lr", "value": 5e-324}', b'{"cmd": "set_lr", "value": NaN}', b'{"cmd": "set_lr", "value": "1e-3"}',
    b'{"cmd": "stop", "reason": ' + b"9" * 400 + b"}",
], ids=["factor-400-digits", "value-400-digits", "value-1e309", "factor--1e309", "value-5e-324", "value-NaN",
        "value-text", "reason-400-digits"])
def test_the_control_socket_refuses_values_out_of_range_and_keeps_serving(served, line):
    _, log, run = served
    reply = reply_to(control_path(log), line + b"\n")
    assert reply["ok"] is False and reply["error"], reply
    assert not run.sent
    assert request(control_path(log), {"cmd": "ping"})["ok"] is True  # the server is still there


@pytest.mark.timeout(30)
@pytest.mark.parametrize("cmd,value", [("set-lr", "1e400"), ("set-lr", "nan"), ("scale-lr", "-inf"),
                                       ("set-lr", "5e-324"), ("scale-lr", "0")])
def test_ctl_refuses_values_out_of_range_in_one_line(served, cmd, value):
    sdir, log, run = served
    t = time.monotonic()
    r = runner.invoke(app, ["ctl", "--sessions-dir", str(sdir), "--", log.name, cmd, value])
    assert r.exit_code == 2, r.output
    _no_traceback(r)
    assert not run.sent and time.monotonic() - t < 10
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and (lines[0].startswith("error: ") or json.loads(lines[0])["ok"] is False), r.output


def test_a_checkpoint_whose_step_disagrees_with_its_file_name_and_monitor_is_refused(tmp_path):
    """A forged step (10**9 in step00000004.pt, whose Monitor state says 4) must not link the parent at step
    1,000,000,000 while training resumes from 4: the checkpoint is refused, saying why."""
    sdir = tmp_path / "s"
    log = _parent_log(sdir)
    cfg = RunConfig.from_dict(json.loads(log.read_text().splitlines()[0])["config"])
    torch.save({"format": "bitnet-tui-checkpoint", "version": 2, "step": 10**9, "config": cfg.to_dict(),
                "model": {}, "optimizer": {}, "monitor": {"step": 4}}, checkpoint_dir(log) / "step00000004.pt")
    r = runner.invoke(app, ["run", "--headless", "--resume", str(log), "--sessions-dir", str(sdir)])
    assert r.exit_code == 2, r.output
    _no_traceback(r)
    assert "disagrees with itself about its step" in r.output
    assert len(list(sdir.glob("*.jsonl"))) == 1  # nothing was started
