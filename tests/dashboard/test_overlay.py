"""Runs side by side: the overlay app, ``compare --plot`` and the ``plot`` command's picture."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from typer.testing import CliRunner

from bitnet_tui.app.cli.main import app as cli
from bitnet_tui.app.dashboard.app import make_app
from bitnet_tui.app.dashboard.axes import View
from bitnet_tui.app.dashboard.overlay import OverlayApp, OverlayPlot
from bitnet_tui.app.dashboard.runs import load_runs, overlay
from tests.dashboard import synth

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None


@pytest.fixture
def logs(tmp_path):
    return synth.write_three(tmp_path / "sessions")


def test_runs_are_aligned_by_step_and_a_fork_starts_from_its_parent(logs):
    runs, warnings = load_runs(logs)
    assert warnings == []
    a, b, c = runs
    assert [r.label for r in runs] == ["h64_lr3e-3", "h64_lr1e-3", "h64_lr1e-2"]
    assert b.parent == a.name and b.fork_step == 200 and len({r.color for r in runs}) == 3
    ax = overlay(runs, "loss", View(ema=0.0))
    lines = {ln.color: ln for ln in ax.lines if ln.xs}
    parent, child = lines[a.color], lines[b.color]
    assert child.xs[0] == 200 and child.ys[0] == parent.ys[parent.xs.index(200)]  # the branch leaves the parent
    assert (200, b.color) in ax.vlines
    assert min(lines[c.color].xs) == 1 and max(lines[c.color].xs) == 300
    uniq = overlay(runs, "unique", View())
    assert uniq.ylim[1] is not None and uniq.ylim[1] < 40  # init evals (120) do not flatten the rest
    assert overlay(runs, "flip", View()).lines


@pytest.mark.asyncio
async def test_the_overlay_app_switches_panels_and_log_scale(logs):
    app = make_app("compare", session_paths=logs)
    assert isinstance(app, OverlayApp)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        legend = str(app.query_one("#runs-legend").render())
        assert "fork of h64_lr3e-3 @200" in legend
        assert app.query_one("#p-loss").has_class("-current")
        await pilot.press("v")
        await pilot.pause()
        assert app.query_one("#p-unique").has_class("-current")
        await pilot.press("y")
        await pilot.pause()
        assert all(p.axes.log_y for p in app.query(OverlayPlot))
        await pilot.press("q")
    assert app.return_code == 0


@pytest.mark.parametrize("command", [["compare", "--plot"], ["replay"]])
def test_compare_plot_and_replay_of_several_on_a_pipe_print_the_overlay(logs, command):
    result = CliRunner().invoke(cli, [command[0], *map(str, logs), *command[1:]])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for title in ("Loss", "Unique tokens", "Flip rate (mean over layers)", "LR"):
        assert f"\n{title}\n" in out
    assert "h64_lr1e-3  fork of h64_lr3e-3 @200" in out
    assert "┤" in out and "\x1b" not in out


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib is not installed (pip install -e '.[plot]')")
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_writes_a_picture_of_one_run_or_several(logs, tmp_path, suffix):
    for sessions, name in ((logs[:1], "one"), (logs[1:2], "fork"), (logs, "three")):
        out = tmp_path / f"{name}{suffix}"
        result = CliRunner().invoke(cli, ["plot", *map(str, sessions), "-o", str(out)])
        assert result.exit_code == 0, result.output
        data = out.read_bytes()
        assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data[:2000]
        if suffix == ".svg":
            text = data.decode()
            assert "Flip rate" in text or "Unique tokens" in text
            if name == "three":
                assert "fork of h64_lr3e-3 @200" in text
            if name == "fork":
                assert "parent ≤200" in text  # the parent's history up to the fork


def test_plot_without_matplotlib_says_how_to_get_it(logs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    result = CliRunner().invoke(cli, ["plot", str(logs[0]), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2
    assert "pip install 'bitnet-tui[plot]'" in result.stderr and "Traceback" not in result.output


def test_plot_refuses_other_formats_and_unreadable_sessions(logs, tmp_path):
    r = CliRunner().invoke(cli, ["plot", str(logs[0]), "-o", str(tmp_path / "x.txt")])
    assert r.exit_code == 2 and "must end in .png, .svg or .pdf" in r.stderr
    r = CliRunner().invoke(cli, ["plot", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 2 and r.stderr == f"error: {tmp_path / 'missing.jsonl'} does not exist\n"
    two = [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]
    r = CliRunner().invoke(cli, ["plot", *two, "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 2 and r.stderr.count("warning:") == 2 and "none of the sessions could be read" in r.stderr


def test_the_plot_command_imports_matplotlib_only_when_it_runs():
    import subprocess

    code = "import sys, bitnet_tui.app.cli.main; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
