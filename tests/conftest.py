"""Shared fixtures and helpers: a tiny real run, a private environment per test, waits with deadlines.

Every test gets its own sessions directory and a tokenizer cache shared by the session, never the user's
``~/.cache`` or ``./sessions``; terminal-size variables from the user's shell (``COLUMNS``, ``LINES``) are
removed, so a suite started inside tmux draws what it would draw anywhere.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spinning OpenMP threads slow a shared CPU

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bitnet_model.train.config import DataConfig, DiagConfig, ModelConfig, RunConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
TINY_KNOBS = {"hidden": 32, "layers": 1, "heads": 2, "vocab_size": 300, "context": 16, "batch_size": 4}
"""The tiny model as run knobs."""


def tiny_args(**knobs: Any) -> list[str]:
    """``run`` flags for the tiny model (plus ``knobs``, e.g. steps=10, eval_every=5)."""
    out: list[str] = []
    for k, v in {**TINY_KNOBS, **knobs}.items():
        out += ["--" + k.replace("_", "-"), str(v)]
    return out


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("tok-cache"))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, cache_dir, tmp_path):
    monkeypatch.setenv("BITNET_TUI_CACHE", cache_dir)
    monkeypatch.setenv("BITNET_TUI_SESSIONS", str(tmp_path / "sessions"))
    for var in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TEXTUAL"):
        monkeypatch.delenv(var, raising=False)


def tiny_config(cache_dir: str, **train: Any) -> RunConfig:
    """A real run, small enough for a test: 1 layer, width 32, vocab 300, 16-token context."""
    t = {"lr": 3e-3, "steps": 60, "batch_size": 4, **train}
    return RunConfig(
        model=ModelConfig(hidden=32, layers=1, heads=2, vocab_size=300, context=16),
        train=TrainConfig(**t),
        diag=DiagConfig(eval_every=20, eval_prompts=2, prompt_tokens=4, gen_tokens=8, eval_batches=1,
                        report_metric=False),
        data=DataConfig(cache_dir=cache_dir),
    )


@pytest.fixture
def tiny(cache_dir):
    """Factory: tiny(steps=..., lr=...) -> RunConfig."""
    return lambda **train: tiny_config(cache_dir, **train)


def wait_until(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition", every: float = 0.05) -> Any:
    """Poll ``cond`` until it is truthy (returns its value) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


async def wait_for(pilot: Any, cond: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> None:
    """The async form for Textual pilots: let the app run while waiting."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        await pilot.pause(0.05)
        await asyncio.sleep(0)


def strict_json(line: str | bytes) -> Any:
    """Parse one log line as strict JSON (bare NaN/Infinity refused)."""

    def refuse(name: str) -> Any:
        raise ValueError(f"bare {name}")

    return json.loads(line, parse_constant=refuse)


def log_lines(path: Path) -> list[dict[str, Any]]:
    return [strict_json(line) for line in path.read_bytes().splitlines() if line.strip()]


def cli(*args: str, timeout: float = 300, **kw: Any) -> subprocess.CompletedProcess:
    """``python -m bitnet_tui ARGS`` in a fresh process (the real entry point), capturing its output."""
    return subprocess.run([sys.executable, "-m", "bitnet_tui", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, **kw)
