"""Issue 24: sweep's options read as run's (a yes/no knob is a flag) and its help says what a preset runs.
Nothing here trains: each test stops before the first run."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from bitnet_tui.app.cli.main import app
from bitnet_tui.app.cli.options import with_knobs
from bitnet_tui.app.cli.sweep import grid_of


def sweep_knobs(*args: str) -> dict[str, Any]:
    """The knobs sweep's options parse ``args`` into (the same declarations as ``bitnet-tui sweep``)."""
    probe = typer.Typer()
    seen: dict[str, Any] = {}

    @probe.command()
    @with_knobs(sweep=True)
    def go(*, knobs: dict[str, Any]) -> None:
        seen.update(knobs)

    r = CliRunner().invoke(probe, list(args), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return seen


def test_sweep_decay_all_is_a_flag_as_in_run():
    """`sweep --decay-all` wanted a value (`--decay-all yes`) where `run --decay-all` is a flag."""
    grid, fixed = grid_of(sweep_knobs("--decay-all", "--lr", "1e-3,3e-3"))
    assert fixed["decay_all"] is True and grid == {"lr": [1e-3, 3e-3]}
    grid, fixed = grid_of(sweep_knobs("--no-decay-all", "--lr", "1e-3,3e-3"))
    assert fixed["decay_all"] is False


def test_sweep_decay_all_both_sweeps_both_values():
    grid, _ = grid_of(sweep_knobs("--decay-all-both"))
    assert grid == {"decay_all": [False, True]}


def test_decay_all_with_decay_all_both_is_one_line():
    r = CliRunner().invoke(app, ["sweep", "--decay-all-both", "--decay-all"])
    assert r.exit_code == 2 and "give one of --decay-all-both, --decay-all and --no-decay-all" in r.output
    assert "Traceback" not in r.output


def test_sweep_decay_all_alone_is_nothing_to_sweep():
    r = CliRunner().invoke(app, ["sweep", "--decay-all", "--steps", "5"])
    assert r.exit_code == 2 and "nothing to sweep" in r.output, r.output


@pytest.mark.parametrize("args", [["--preset", "seed-report", "--help"], ["--help", "--preset", "seed-report"]])
def test_sweep_help_with_a_preset_says_what_it_runs(args):
    """`sweep --preset seed-report --help` was the same as `sweep --help`."""
    plain = CliRunner().invoke(app, ["sweep", "--help"], env={"COLUMNS": "100"})
    r = CliRunner().invoke(app, ["sweep", *args], env={"COLUMNS": "100"})
    assert r.exit_code == 0 and r.output != plain.output
    text = " ".join(r.output.split())
    for part in ("seed-report runs 5 runs", "optimizer=adam lr=0.0015", "optimizer=adamw lr=0.0005",
                 "autopilot", "1,000 steps each", "--decay-all", "--weight-decay 0.1"):
        assert part in text, (part, text[:600])
    assert "about" in text and "min" in text  # roughly how long


def test_sweep_help_names_an_unknown_preset():
    r = CliRunner().invoke(app, ["sweep", "--preset", "nope", "--help"])
    assert r.exit_code == 2 and "unknown preset 'nope'" in r.output and "Traceback" not in r.output
