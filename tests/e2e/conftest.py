"""The real terminal every end-to-end test drives: a private tmux server, killed after the test."""

from __future__ import annotations

import pytest

from tests.e2e.test_tmux_e2e import Tmux


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(tmp_path)
    yield t
    t.kill()
