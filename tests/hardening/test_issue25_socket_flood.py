"""Issue 25's adversarial pass on the control socket, kept: a 100 MB request without a newline, 500 connections at
once and 1,000 set-lr in about a second leave the run served and every accepted command logged."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from bitnet_tui.session.control.client import request
from bitnet_tui.session.control.peer import control_path
from bitnet_tui.session.log.reader import read_session
from tests.hardening.test_item11_user_loop import monitor, train


def flood_one(path, payload: bytes, timeout: float = 10.0) -> bytes:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
    except BlockingIOError:  # the listen queue is full: refused at the door, the server never saw it
        s.close()
        return b"EAGAIN"
    try:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return s.recv(4096)
    except OSError:
        return b""
    finally:
        s.close()


@pytest.mark.timeout(120)
def test_the_socket_survives_a_flood_and_logs_every_command_it_took(tmp_path):
    model, opt, mon, x = monitor(tmp_path, eval_every=100)
    with mon:
        train(model, opt, mon, x, 1)
        sock = control_path(mon.session_path)
        t = time.monotonic()
        reply = flood_one(sock, b"x" * (100 << 20))  # 100 MB, no newline
        assert b"request too long" in reply and time.monotonic() - t < 10

        replies: list[bytes] = []
        lock = threading.Lock()

        def ping() -> None:
            got = flood_one(sock, b'{"cmd": "ping"}\n')
            with lock:
                replies.append(got)

        threads = [threading.Thread(target=ping) for _ in range(500)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        answers = [json.loads(r.split(b"\n")[0]) for r in replies if r != b"EAGAIN"]
        assert len(replies) == 500 and answers  # each answered (served, or refused as too many) or refused at the door
        assert all(a["ok"] or a["error"] == "too many connections" for a in answers)
        assert request(sock, {"cmd": "ping"})["ok"]

        t = time.monotonic()
        taken = sum(request(sock, {"cmd": "set_lr", "value": 1e-4 + i * 1e-7})["ok"] for i in range(1000))
        sent_s = time.monotonic() - t
        train(model, opt, mon, x, 1)  # the step boundary applies them
    lrs = [e for e in read_session(mon.session_path).events if e.kind == "intervention" and e.action == "set_lr"]
    assert taken == 1000 and len(lrs) == 1000, (taken, len(lrs), sent_s)
