"""``bitnet-tui serve`` without a browser: the missing extra, a run that cannot be steered, who the server answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = str(REPO / "tests" / "fixtures" / "collapse.jsonl")


def test_without_the_serve_extra_it_is_one_line_naming_the_install_and_exit_2():
    code = ("import sys; sys.modules['textual_serve'] = None; sys.argv = ['bitnet-tui', 'serve', sys.argv[1]]; "
            "from bitnet_tui.app.cli.main import main; main()")
    r = subprocess.run([sys.executable, "-c", code, FIXTURE], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: serve needs the serve extra: pip install 'bitnet-tui[serve]'"


def test_steer_on_a_finished_log_is_refused_with_the_read_only_way():
    pytest.importorskip("textual_serve")
    from typer.testing import CliRunner

    from bitnet_tui.app.cli.main import app

    r = CliRunner().invoke(app, ["serve", FIXTURE, "--steer"])
    assert r.exit_code == 2 and "to look without steering: bitnet-tui serve collapse" in r.output
    assert "Traceback" not in r.output


def request(path: str, host: str = "127.0.0.1:8123", **headers: str):
    from aiohttp.test_utils import make_mocked_request

    return make_mocked_request("GET", path, headers={"Host": host, **headers})


def test_the_server_answers_only_127_0_0_1_its_own_page_and_with_steer_the_token():
    pytest.importorskip("textual_serve")
    from bitnet_tui.app.web import COOKIE, DashboardServer

    view = DashboardServer("true", port=8123, title="t", token=None)
    assert view.refusal(request("/"), websocket=False) == ""
    assert view.refusal(request("/", host="localhost:8123"), websocket=False) == ""
    assert "only http://127.0.0.1" in view.refusal(request("/", host="evil.example:8123"), websocket=False)
    assert "only http://127.0.0.1" in view.refusal(request("/", host="127.0.0.1:9999"), websocket=False)
    assert view.refusal(request("/ws", Origin="http://127.0.0.1:8123"), websocket=True) == ""
    assert "its own page" in view.refusal(request("/ws", Origin="http://evil.example"), websocket=True)

    steer = DashboardServer("true", port=8123, title="t", token="s3cret")
    assert "token" in steer.refusal(request("/"), websocket=False)
    assert "token" in steer.refusal(request("/?token=guess"), websocket=False)
    assert steer.refusal(request("/?token=s3cret"), websocket=False) == ""
    assert "token" in steer.refusal(request("/ws?token=s3cret"), websocket=True)  # the websocket takes the cookie
    assert steer.refusal(request("/ws", Cookie=f"{COOKIE}=s3cret"), websocket=True) == ""
    assert "token" in steer.refusal(request("/ws", Cookie=f"{COOKIE}=nope"), websocket=True)


def test_a_bad_speed_is_one_line_and_exit_2():
    r = subprocess.run([sys.executable, "-m", "bitnet_tui", "serve", FIXTURE, "--speed", "fast"], capture_output=True,
                       text=True, timeout=60, cwd=REPO)
    assert r.returncode == 2 and "is not a number or 'max'" in r.stderr and "Traceback" not in r.stderr
