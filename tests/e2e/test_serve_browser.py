"""``bitnet-tui serve`` in a real browser: headless Chromium loads the page, and what its terminal shows is read back.

The page draws the dashboard on a canvas, so the DOM holds no text: the test drives Chromium over its DevTools
protocol, hands the page its own textual.js with one addition (the terminal object kept on ``window``), and reads
the terminal's screen buffer, which is what a person sees.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "collapse.jsonl"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it with apt-get)")]

SCREEN = """(() => { const t = window.__term; if (!t) return ""; const b = t.buffer.active; const out = [];
  for (let i = 0; i < t.rows; i++) {
    const l = b.getLine(b.viewportY + i); out.push(l ? l.translateToString(true) : "");
  }
  return out.join("\\n"); })()"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"serve exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail("serve never listened")


class Page:
    """One Chromium tab over the DevTools protocol."""

    def __init__(self, ws) -> None:
        self.ws, self.n, self.pending = ws, 0, {}

    async def call(self, method: str, **params):
        self.n += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[self.n] = fut
        await self.ws.send_json({"id": self.n, "method": method, "params": params})
        return await asyncio.wait_for(fut, 15)

    async def pump(self) -> None:
        async for msg in self.ws:
            d = json.loads(msg.data)
            if "id" in d and d["id"] in self.pending:
                self.pending.pop(d["id"]).set_result(d.get("result", d.get("error")))
            elif d.get("method") == "Fetch.requestPaused":
                asyncio.ensure_future(self.keep_terminal(d["params"]))

    async def keep_terminal(self, p) -> None:
        body = await self.call("Fetch.getResponseBody", requestId=p["requestId"])
        js = base64.b64decode(body["body"]) if body.get("base64Encoded") else body["body"].encode()
        js = js.replace(b"this.terminal.open(e),", b"this.terminal.open(e),window.__term=this.terminal,", 1)
        await self.call("Fetch.fulfillRequest", requestId=p["requestId"], responseCode=200,
                        responseHeaders=[{"name": "Content-Type", "value": "application/javascript"}],
                        body=base64.b64encode(js).decode())

    async def screen(self) -> str:
        r = await self.call("Runtime.evaluate", expression=SCREEN, returnByValue=True)
        return r.get("result", {}).get("value") or ""

    async def wait_screen(self, pred, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = await self.screen()
            if pred(text):
                return text
            await asyncio.sleep(0.2)
        pytest.fail(f"the page never showed it; last screen:\n{text}")


async def browse(url: str, profile: str) -> tuple[str, str]:
    import aiohttp

    chrome = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1100,800",
                               "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 15
        while not (port_file.exists() and port_file.read_text().strip()):
            assert time.monotonic() < deadline, "chromium never opened its DevTools port"
            await asyncio.sleep(0.1)
        devtools = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as http:
            tabs = await (await http.get(f"http://127.0.0.1:{devtools}/json/list")).json()
            tab = next(t for t in tabs if t.get("type") == "page")
            async with http.ws_connect(tab["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                pump = asyncio.ensure_future(page.pump())
                await page.call("Fetch.enable", patterns=[{"urlPattern": "*textual.js*", "requestStage": "Response"}])
                await page.call("Page.navigate", url=url)
                first = await page.wait_screen(lambda s: "Loss" in s and re.search(r"step [1-9]\d*/600", s))
                later = await page.wait_screen(
                    lambda s: "unigram phase" in s and step_of(s) > step_of(first), timeout=15)
                pump.cancel()
                return first, later
    finally:  # the whole group: chromium's zygote and renderers outlive a killed parent and keep writing
        with contextlib.suppress(ProcessLookupError):
            os.killpg(chrome.pid, signal.SIGKILL)
        chrome.wait(10)


def step_of(screen: str) -> int:
    m = re.search(r"step (\d+)/600", screen)
    return int(m.group(1)) if m else -1


def test_serve_shows_the_dashboard_in_a_browser_and_its_replay_plays(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")}
    proc = subprocess.Popen([sys.executable, "-m", "bitnet_tui", "serve", str(FIXTURE), "--port", str(port),
                             "--speed", "4"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, proc)
        profile = tmp_path / "chromium-profile"
        profile.mkdir()
        first, later = asyncio.run(browse(f"http://127.0.0.1:{port}/", str(profile)))
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert "REPLAY" in first and "fixture-h256-lr1.5e-3" in first
    assert "╭─ Loss" in first  # the loss panel, the tab a dashboard opens on
    assert step_of(later) > step_of(first) > 0  # the replay plays: the step moved on between the two reads
    assert "unigram phase" in later  # the detector's state, named in the header
    assert "read-only" in err and f"http://127.0.0.1:{port}/" in err
