"""Shared material for the hardening tests (issue 13): hostile text, logs built from it, and output checks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.fixtures.scripted import scripted_run

ROOT = Path(__file__).resolve().parents[2]

OSC_TITLE = "\x1b]2;pwned-title\x07"
OSC_CLIPBOARD = "\x1b]52;c;ZXZpbA==\x07"
CSI = "\x1b[2J\x1b[31m"
C1 = "\x9b31m\x9d0;c1-title\x9c\x85"
MARKUP = "[link=http://evil.example]click[/link][/oops][bold]"
BIDI = "\u202egnp.exe\u202c\u2066x\u2069"
EVIL = OSC_TITLE + OSC_CLIPBOARD + CSI + C1 + MARKUP + BIDI
"""Every kind of hostile text at once: OSC 2 (title), OSC 52 (clipboard), CSI, C1 controls, Rich markup
(a link, a closing tag that would raise MarkupError, an opening one), bidirectional overrides."""
EVIL_NAME = EVIL.replace("/", "")
"""The same, usable in a file name."""
LITERALS = ("[/oops]", "[link=http://evil.example]", "[bold]")
"""Markup that must be shown as it is written (interpreted, it would vanish or raise)."""

_BAD = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def control_chars(text: str) -> list[str]:
    """The terminal control characters (C0 but tab/newline, DEL, C1, bidi controls) in ``text``, escaped."""
    return sorted({ascii(c) for c in _BAD.findall(text)})


def poison(value: Any, depth: int = 0) -> Any:
    """``value`` with EVIL appended to every string and added as a key (and value) of every dict."""
    if isinstance(value, dict):
        out = {k + (EVIL if depth else ""): poison(v, depth + 1) for k, v in value.items()}
        out[f"k{depth}{EVIL}"] = EVIL
        return out
    if isinstance(value, list):
        return [poison(v, depth + 1) for v in value] + [EVIL]
    if isinstance(value, str):
        return value + EVIL
    return value


def hostile_log(path: Path, differs: Any = 1) -> Path:
    """A readable session log whose every key and value that reaches a screen is hostile; the config has a
    hostile key (``train.<EVIL>``) set to ``differs``, so two such logs differ there (a compare column)."""
    events = scripted_run([20, 10, 3], states=["healthy", "collapsing", "collapsed"], eval_every=4)
    lines = []
    for ev in events:
        d = ev.to_dict()
        kind = d["kind"]
        if kind == "run_started":
            cfg = d["config"]
            cfg["train"][EVIL] = differs
            cfg["train"][MARKUP + EVIL] = differs  # markup first: inside a 60-character column header
            cfg["train"]["optimizer"] += EVIL
            cfg[EVIL] = {EVIL: EVIL}
            for k in ("corpus", "tokenizer", "versions", "world"):
                d[k] = poison(d.get(k) or {"name": "x"}, 1)
            d["optimizer"] = {"name": EVIL, "decay": EVIL, "weight_decay": 0.1, "decay_on": [EVIL], EVIL: EVIL}
            d["audit"] = [{"level": "warning", "code": EVIL, "message": EVIL, "fix": EVIL, EVIL: EVIL}]
            d["parent"] = {"session": EVIL, "name": EVIL, "step": 3, "relation": EVIL}
            d.update(run_name=EVIL, device=EVIL, source=EVIL, argv=[EVIL, EVIL])
        elif kind == "step":
            d["extra"] = {EVIL: 1.0}
        elif kind == "eval":
            d.update(samples=[EVIL, EVIL], prompts=[EVIL, EVIL], top_tokens=[[EVIL, 3], [" ", 1]],
                     state=d.get("state", "") + EVIL, extra={EVIL: 2.0})
        elif kind == "weights":
            for i, layer in enumerate(d["layers"]):
                layer["name"] = f"{i}{EVIL}"
        elif kind == "alert":
            for k in ("level", "code", "message", "state_from", "state_to", "sample"):
                d[k] = d.get(k, "") + EVIL
            d["data"] = poison({"x": 1})
            d["top_tokens"] = [[EVIL, 2]]
        elif kind == "run_ended":
            lines.append(json.dumps({"kind": "intervention", "step": d["step"], "time": d["time"], "action": EVIL,
                                     "old": EVIL, "new": EVIL, "source": EVIL}))
            lines.append(json.dumps({"kind": "checkpoint", "step": d["step"], "time": d["time"], "path": EVIL,
                                     "removed": [EVIL]}))
            lines.append(json.dumps({"kind": "alert", "step": d["step"], "time": d["time"], "level": EVIL,
                                     "code": EVIL, "message": EVIL}))
            lines.append("not json " + EVIL)
            lines.append(json.dumps({"kind": EVIL, "step": 1, "time": 1.0}))
            d.update(reason="error" + EVIL, error=EVIL)
        d[EVIL] = EVIL  # unknown keys too
        lines.append(json.dumps(d))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}


def run_cli(*args: str, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess:
    """``python -m bitnet_tui ARGS`` in a fresh process with a hard timeout (a hang fails the test)."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([sys.executable, "-m", "bitnet_tui", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=kw.pop("env", cli_env()), **kw)


NOBODY = 65534


def can_switch_user() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("setpriv") is not None


def as_user(script: str, uid: int = NOBODY, **kw: Any) -> subprocess.CompletedProcess:
    """Run a shell script as another (real) user: the attacker of the shared-directory tests."""
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "sh", "-s"],
                          input=script, capture_output=True, text=True, timeout=60, **kw)
