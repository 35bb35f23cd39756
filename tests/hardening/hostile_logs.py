"""Hostile session logs of every kind the adversarial pass used, made at any scale, and the viewers they go through.

``python -m tests.hardening.hostile_logs`` makes them at full size (a 50 MB line, a million blank lines) and runs
every viewer on each in a fresh process, printing exit status, stderr lines, wall time and peak RSS (the figures in
docs/security.md). ``test_issue25_hostile_matrix.py`` runs the same kinds, scaled down, in the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from tests.fixtures.scripted import scripted_run

VIEWERS: dict[str, Callable[[Path, Path], list[str]]] = {
    "sessions": lambda log, out: ["sessions", "--sessions-dir", str(log.parent)],
    "summary": lambda log, out: ["summary", str(log)],
    "compare": lambda log, out: ["compare", str(log), str(log)],
    "diagnose": lambda log, out: ["diagnose", str(log)],
    "export": lambda log, out: ["export", str(log), str(out), "--to", "csv"],
}
"""The five log viewers (``replay``/``watch`` are the dashboard: test_item06_special_files.py, test_hostile.py)."""


def good_lines() -> list[str]:
    return [json.dumps(e.to_dict()) for e in scripted_run([20, 10, 3], states=["healthy", "collapsing", "collapsed"],
                                                           eval_every=4)]


def _text(lines: list[str], sep: str = "\n") -> bytes:
    return (sep.join(lines) + sep).encode()


def kinds(scale: float = 1.0) -> dict[str, Callable[[Path], None]]:
    """Each kind's maker: writes the hostile log at ``path`` (``scale`` 1: the pass's sizes)."""
    g = good_lines()
    big, blanks = max(2 << 20, int(50e6 * scale)), max(1000, int(1e6 * scale))

    def write(data: bytes) -> Callable[[Path], None]:
        return lambda p: p.write_bytes(data)

    def link(target: str) -> Callable[[Path], None]:
        return lambda p: p.symlink_to(target)

    def streamed(p: Path, head: list[str], body: Callable[[IO[bytes]], object], tail: list[str]) -> None:
        with open(p, "wb") as f:
            f.write(_text(head))
            body(f)
            f.write(_text(tail))

    out: dict[str, Callable[[Path], None]] = {
        "empty": write(b""),
        "header only": write(_text(g[:1])),
        "BOM": write(b"\xef\xbb\xbf" + _text(g)),
        "CRLF": write(_text(g, "\r\n")),
        "UTF-16": write(("\n".join(g) + "\n").encode("utf-16")),
        "NUL in a line": write(_text(g[:3]) + b"\x00" * 64 + b"\n" + _text(g[3:])),
        "NUL only": write(b"\x00" * 4096),
        "not JSON": write(b"hello\nworld\n"),
        "binary": write(bytes(range(256)) * 64),
        "truncated last line": write(_text(g)[:-40]),
        "bare NaN": write(_text(g[:3] + [g[3].replace('"loss":', '"loss":NaN,"x":', 1)] + g[4:])),
        "1e400": write(_text(g[:3] + ['{"kind":"step","step":5,"time":1e400,"loss":1e400,"lr":1e400,'
                                      '"weight_decay":0,"grad_norm":1e400,"tokens_per_s":1,"stage":1}'] + g[3:])),
        "10^5 brackets": write(_text(g[:3] + ["[" * 100_000] + g[3:])),
        "10^5 nested objects": write(_text(g[:3] + ['{"a":' * 100_000 + "1" + "}" * 100_000] + g[3:])),
        "a second header": write(_text(g[:5] + g[:1] + g[5:])),
        "unknown kinds": write(_text(g[:3] + ['{"kind":"zzz","step":1,"time":1}'] * 1000 + g[3:])),
        "a step of 10^400": write(_text(g[:3] + ['{"kind":"step","step":' + "9" * 400 + ',"time":1,"loss":1,'
                                                 '"lr":1e-3,"weight_decay":0,"grad_norm":1,"tokens_per_s":1,'
                                                 '"stage":1}'] + g[3:])),
        "a 50 MB line": lambda p: streamed(p, g[:3], lambda f: f.write(b"z" * big + b"\n"), g[3:]),
        "a 50 MB line without newline": lambda p: streamed(p, g, lambda f: f.write(b'{"kind":"step"' + b" " * big),
                                                           []),
        "a million blank lines": lambda p: streamed(p, g[:3], lambda f: f.write(b"\n" * blanks), g[3:]),
        "a symlink to /dev/zero": link("/dev/zero"),
        "a symlink to /proc/self/mem": link("/proc/self/mem"),
        "a symlink to itself": lambda p: p.symlink_to(p.name),
        "a directory": lambda p: p.mkdir(),
    }
    if hasattr(os, "mkfifo"):
        out["a FIFO"] = lambda p: os.mkfifo(p)
    return out


PEAK = r"""
import atexit, runpy, sys
out = sys.argv.pop(1)

def peak():  # VmHWM: this process's own high-water mark (ru_maxrss would count its parent's, from before exec)
    with open("/proc/self/status") as f:
        kib = next(line.split()[1] for line in f if line.startswith("VmHWM"))
    with open(out, "w") as f:
        f.write(kib)

atexit.register(peak)
sys.argv[0] = "bitnet-tui"
runpy.run_module("bitnet_tui", run_name="__main__", alter_sys=True)
"""


def measure() -> None:
    """Full size, every viewer, a fresh process each: exit, stderr lines, seconds, peak RSS (VmHWM) in MB."""
    root = Path(tempfile.mkdtemp(prefix="hostile-"))
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    print(f"{'kind':32} {'viewer':9} exit lines   s   MB")
    for i, (name, make) in enumerate(kinds(1.0).items()):
        d = root / f"k{i}"
        d.mkdir()
        log = d / "2026-01-01T00-00-00_h256_lr1.5e-3.jsonl"
        make(log)
        for viewer, args in VIEWERS.items():
            t = time.monotonic()
            hwm = d / "peak"
            r = subprocess.run([sys.executable, "-c", PEAK, str(hwm), *args(log, d / "out")], cwd=repo, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               timeout=120)
            print(f"{name:32} {viewer:9} {r.returncode:4} {len(r.stderr.splitlines()):5} {time.monotonic() - t:4.1f} "
                  f"{int(hwm.read_text()) / 1024:5.0f}", flush=True)


if __name__ == "__main__":
    measure()
