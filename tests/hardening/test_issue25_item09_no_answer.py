"""Issue 25, item 9: a command sent to a stopped (SIGSTOP) run is not lost, it waits in the socket and is applied
when the process continues. So no answer must not read as "nothing was started": ``ctl`` says the command may
still be applied, exits 3 (the README's table), and names the request's id; a retry with that id is answered
``duplicate`` and never applied twice (``scale-lr 2`` retried once is one doubling, not two)."""

from __future__ import annotations

import json
import os
import signal

import pytest
from typer.testing import CliRunner

from bitnet_tui.app.cli.main import app
from bitnet_tui.instrument.server import ControlServer
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.control.remote import RemoteRun
from tests.hardening.served import applied_commands, served

runner = CliRunner()


def a_log(tmp_path):
    log = tmp_path / "run.jsonl"
    log.write_text("")  # ctl needs only its path: the socket is beside it
    return log, tmp_path / "run.sock", tmp_path / "applied.txt"


@pytest.mark.timeout(60)
def test_a_stopped_run_gets_the_command_later_and_a_retry_with_its_id_is_not_applied_twice(tmp_path):
    log, sock, applied = a_log(tmp_path)
    with served(sock, applied) as proc:
        os.kill(proc.pid, signal.SIGSTOP)
        r = runner.invoke(app, ["ctl", str(log), "scale-lr", "2", "--id", "retry-me", "--timeout", "1"])
        assert r.exit_code == 3, r.output
        err = [line for line in r.output.splitlines() if line.startswith("error: ")]
        assert len(err) == 1 and "no answer from" in err[0] and "within 1 s" in err[0]
        assert "may still be applied when the process runs again" in err[0] and "--id retry-me" in err[0]
        assert "nothing was" not in err[0]
        os.kill(proc.pid, signal.SIGCONT)
        assert applied_commands(applied, 1) == ["scale_lr"]  # the first try was applied after all
        r = runner.invoke(app, ["ctl", str(log), "scale-lr", "2", "--id", "retry-me"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout) == {"ok": True, "duplicate": True, "id": "retry-me"}
        r = runner.invoke(app, ["ctl", str(log), "scale-lr", "2"])  # a new request (a new id) is applied
        assert r.exit_code == 0 and json.loads(r.stdout)["ok"], r.output
        assert applied_commands(applied, 3, within=0.5) == ["scale_lr", "scale_lr"]


def test_a_bad_id_is_one_line_and_exit_2(tmp_path):
    log, _, _ = a_log(tmp_path)
    r = runner.invoke(app, ["ctl", str(log), "pause", "--id", "no spaces\x1b"])
    assert r.exit_code == 2 and r.output.startswith("error: id must be") and "\x1b" not in r.output


def test_the_server_applies_one_command_per_id_and_refuses_a_bad_one(tmp_path):
    taken = []

    class Run:
        run_name, step_count, paused = "r", 0, False

        def send(self, cmd):
            taken.append(cmd)

    with ControlServer(Run(), tmp_path / "r.sock") as srv:
        line = b'{"cmd": "pause", "id": "a"}'
        assert srv.handle(line) == {"ok": True}
        assert srv.handle(line) == {"ok": True, "duplicate": True, "id": "a"}
        assert srv.handle(b'{"cmd": "pause"}') == {"ok": True}
        assert srv.handle(b'{"cmd": "pause", "id": ""}')["ok"] is False
        assert srv.handle(b'{"cmd": "pause", "id": 7}')["ok"] is False
        assert srv.handle(b'{"cmd": "ping", "id": "a"}')["run"] == "r"
    assert [type(c) for c in taken] == [C.Pause, C.Pause]


@pytest.mark.timeout(60)
def test_attach_says_a_command_without_an_answer_may_still_apply(tmp_path):
    log, sock, applied = a_log(tmp_path)
    with served(sock, applied) as proc:
        os.kill(proc.pid, signal.SIGSTOP)
        remote = RemoteRun(log, answer_s=1.0)
        assert remote.send(C.Pause(source="dashboard")) is None
        (alert,) = remote._local
        assert alert.code == "remote" and alert.message.startswith("Pause was sent but got no answer from")
        assert "may still be applied when the process runs again" in alert.message
        os.kill(proc.pid, signal.SIGCONT)
        assert applied_commands(applied, 1) == ["pause"]
