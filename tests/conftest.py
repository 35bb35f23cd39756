"""Shared fixtures: a tiny real run configuration and a tokenizer cache shared by the whole test session."""

from __future__ import annotations

import pytest

from bitnet_model.train.config import DataConfig, DiagConfig, ModelConfig, RunConfig, TrainConfig


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("tok-cache"))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, cache_dir, tmp_path):
    """Never touch the user's ~/.cache or ./sessions from a test."""
    monkeypatch.setenv("BITNET_TUI_CACHE", cache_dir)
    monkeypatch.setenv("BITNET_TUI_SESSIONS", str(tmp_path / "sessions"))


def tiny_config(cache_dir: str, **train) -> RunConfig:
    """A real run, small enough for a test: 1 layer, width 32, vocab 300, 16-token context."""
    t = {"lr": 3e-3, "steps": 60, "batch_size": 4, **train}
    return RunConfig(
        model=ModelConfig(hidden=32, layers=1, heads=2, vocab_size=300, context=16),
        train=TrainConfig(**t),
        diag=DiagConfig(eval_every=20, eval_prompts=2, prompt_tokens=4, gen_tokens=8, eval_batches=1),
        data=DataConfig(cache_dir=cache_dir),
    )


@pytest.fixture
def tiny(cache_dir):
    """Factory: tiny(steps=..., lr=...) -> RunConfig."""
    return lambda **train: tiny_config(cache_dir, **train)
