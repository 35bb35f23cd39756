"""The dashboard over a live run: a real trainer steered from the keys, rewinds and forks."""

from __future__ import annotations

import asyncio

import pytest

from bitnet_tui.app.dashboard.app import Dashboard, make_app
from bitnet_tui.app.dashboard.dialogs import LRDialog
from bitnet_tui.app.dashboard.panels import render_header
from bitnet_tui.session.log.events import Alert, Intervention, RunEnded, StepDone
from bitnet_tui.session.log.reader import read_session
from tests.conftest import wait_for
from tests.dashboard.test_app import fixture_events
from tests.system.test_system_panel import shown as panel_shown


def header_text(app: Dashboard) -> str:
    return render_header(app.feed, app.mode, app._notice(), alarm=app.source.alarm()).plain


def system_shown(app: Dashboard) -> str:
    from bitnet_tui.app.dashboard.system import SystemPanel

    return panel_shown(app.query_one(SystemPanel))


# --------------------------------------------------------------------------- live, real trainer


def tiny_run(tiny, tmp_path, steps: int = 100_000, **kw):
    """A LocalRun of the tiny model (not started), logging under ``tmp_path``."""
    from bitnet_tui.app.runs.build import prepare_run

    return prepare_run({}, sessions=str(tmp_path / "sessions"), base=tiny(lr=1e-3, steps=steps, batch_size=2),
                       argv=["bitnet-tui", "run"], **kw)


@pytest.mark.asyncio
async def test_live_controls_steer_the_trainer(tmp_path, tiny):
    run = tiny_run(tiny, tmp_path)
    log = run.session_path
    seen: list = []
    run.subscribe(seen.append)
    app = make_app("live", run=run)

    def interventions(action: str) -> list[Intervention]:
        return [e for e in seen if isinstance(e, Intervention) and e.action == action]

    def steps() -> list[StepDone]:
        return [e for e in seen if isinstance(e, StepDone)]

    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.feed.step >= 2, 60, "the first steps on screen")
        assert "LIVE" in header_text(app) and "h32_lr1e-3" in header_text(app)
        palette = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert not palette["Halve learning rate"].startswith("unavailable")

        # Pause: steps stop; the header says so from the confirmed event.
        await pilot.press("p")
        await wait_for(pilot, lambda: app.feed.paused, 20, "the pause to be confirmed")
        n = len(steps())
        await asyncio.sleep(0.6)
        assert len(steps()) == n
        assert "PAUSED" in header_text(app)

        # While paused, LR changes still land (at the step boundary) as Intervention events.
        await pilot.press("left_square_bracket")
        await wait_for(pilot, lambda: interventions("scale_lr"), 10, "LR x0.5")
        half = interventions("scale_lr")[-1]
        assert half.new == pytest.approx(half.old * 0.5) and half.source == "dashboard"
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: len(interventions("scale_lr")) == 2, 10, "LR x2")
        assert interventions("scale_lr")[-1].new == pytest.approx(half.old)
        await pilot.press("u")
        await wait_for(pilot, lambda: interventions("undo_lr"), 10, "undo")
        undo = interventions("undo_lr")[-1]
        assert undo.new == pytest.approx(half.new)  # back to the LR before the last change

        # Set LR through the dialog; a bad value first changes nothing.
        await pilot.press("l")
        assert isinstance(app.screen, LRDialog)
        await pilot.press(*"abc", "enter")
        assert isinstance(app.screen, LRDialog)
        app.screen.query_one("#lr-input").value = ""
        await pilot.press(*"2e-4", "enter")
        await wait_for(pilot, lambda: interventions("set_lr"), 10, "set LR")
        assert interventions("set_lr")[-1].new == pytest.approx(2e-4)
        await wait_for(pilot, lambda: any("set_lr" in e.text for e in app.feed.timeline), 5, "the timeline")

        # Resume: steps continue at the LR that was set.
        await pilot.press("p")
        await wait_for(pilot, lambda: len(steps()) > n + 1, 30, "steps after resume")
        assert not app.feed.paused
        after = [e for e in steps()[n:]]
        assert after[0].lr == pytest.approx(2e-4)
        assert app.feed.lr_changes and app.feed.lr_changes[-1][1] == "set_lr"

        # The system sampler's figures (its own thread, every 2 s, paused or not): in the header and the System tab.
        await wait_for(pilot, lambda: app.feed.last_system is not None, 10, "a system sample")
        app.show_panel("system")
        await pilot.pause(0.6)
        assert "cpu " in header_text(app).splitlines()[0] and " MB" in header_text(app).splitlines()[0]
        assert "CPU (process)" in system_shown(app) and "memory (RSS)" in system_shown(app)

        # Quit asks once, sends Stop, and exits when the run has ended.
        await pilot.press("q")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "ConfirmDialog"
        await pilot.press("y")
        await wait_for(pilot, lambda: app.feed.ended is not None, 30, "run_ended")
        await wait_for(pilot, lambda: not app.is_running, 10, "the app to exit")
    worker_end = [e for e in seen if isinstance(e, RunEnded)]
    assert worker_end and worker_end[-1].reason == "stopped"
    data = read_session(log)
    assert data.end is not None and data.end.reason == "stopped"
    assert data.events[-1] is data.end  # no system sample after the end
    assert any(isinstance(e, Intervention) and e.action == "stop" for e in data.events)
    assert not any(isinstance(e, Alert) and e.code == "command" for e in data.events)


# --------------------------------------------------------------------------- rewind and forks


@pytest.mark.asyncio
async def test_replay_of_a_child_session_shows_the_fork():
    from dataclasses import replace

    from bitnet_tui.app.dashboard.plots import LossPlot, LRPlot
    from bitnet_tui.session.log.events import RunStarted

    events = list(fixture_events())
    assert isinstance(events[0], RunStarted)
    parent = {"session": "/x/parent-run.jsonl", "name": "parent[red]run", "step": 20, "relation": "fork"}
    events[0] = replace(events[0], parent=parent)
    app = make_app("replay", events=events, start_at="end")
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.pause()
        assert "forked from parent[red]run@20" in header_text(app)  # literal, not markup
        assert app.feed.parent[2] == 20
        for plot in (app.query_one(LossPlot), app.query_one(LRPlot)):
            assert "forked @20" in plot.build_text()  # the marker's legend entry
        palette = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert "Rewind: fork from a checkpoint with a new LR" not in palette  # replay: nothing to fork
    plain = make_app("replay", events=fixture_events(), start_at="end")
    async with plain.run_test(size=(140, 45)) as pilot:
        await pilot.pause()
        assert "from" not in header_text(plain).split("\n")[0] and plain.feed.parent is None


@pytest.mark.asyncio
async def test_live_rewind_forks_from_a_checkpoint_with_a_new_lr(tmp_path, tiny):
    from bitnet_tui.app.dashboard.dialogs import RewindDialog
    from bitnet_tui.app.runs.build import prepare_run
    from bitnet_tui.session.log.events import RunStarted
    from bitnet_tui.session.log.paths import checkpoint_dir, list_checkpoints

    sessions = tmp_path / "sessions"
    first = prepare_run({}, sessions=str(sessions), base=tiny(steps=3000, schedule="constant", warmup_steps=0),
                        checkpoint_every=5, argv=["bitnet-tui", "run"])
    first_path = first.session_path
    app = make_app("live", run=first)
    try:
        async with app.run_test(size=(140, 45)) as pilot:
            await wait_for(pilot, lambda: list_checkpoints(checkpoint_dir(first_path)), 60, "a checkpoint")
            await pilot.press("p")  # hold the run still so the rewind, not the end of training, stops it
            await wait_for(pilot, lambda: app.feed.paused, 20, "the pause")
            await pilot.press("r")
            await wait_for(pilot, lambda: isinstance(app.screen, RewindDialog), 5, "the rewind dialog")
            dialog = app.screen
            fork_step = dialog.steps[0]
            dialog.query_one("#rewind-checkpoints").highlighted = 0
            await pilot.press(*"abc", "enter")
            assert isinstance(app.screen, RewindDialog)
            assert "not a number" in str(dialog.query_one("#rewind-error").render())
            dialog.query_one("#rewind-lr").value = ""
            await pilot.press(*"2e-4", "enter")
            await wait_for(pilot, lambda: app.source.run.session_path != first_path, 60, "the forked session")
            await wait_for(pilot, lambda: app.feed.step > fork_step + 1, 60, "steps of the fork")
            assert f"forked from {first_path.name.removesuffix('.jsonl')}@{fork_step}" in header_text(app)
            assert app.source.running
            await pilot.press("p")
            await wait_for(pilot, lambda: app.feed.paused, 20, "the fork's pause")
            await pilot.press("q")
            await pilot.pause()
            await pilot.press("y")
            await wait_for(pilot, lambda: not app.is_running, 30, "the app to exit")
    finally:
        if app.source.running:
            app.source.send(__import__("bitnet_tui.session.control.commands", fromlist=["Stop"]).Stop())
    old = read_session(first_path)
    assert old.end is not None and old.end.reason == "rewound"
    child = read_session(app.source.run.session_path)
    assert isinstance(child.header, RunStarted)
    parent = child.header.parent
    assert parent["name"] == first_path.name.removesuffix(".jsonl") and parent["relation"] == "fork"
    assert parent["step"] == fork_step and child.header.step == fork_step
    steps = [e for e in child.events if isinstance(e, StepDone)]
    assert steps[0].step == fork_step + 1
    assert all(e.lr == pytest.approx(2e-4) for e in steps)
    assert child.end is not None and child.end.reason == "stopped"


class _IdleRun:
    """A stand-in run (the RunHandle seam) that emits nothing and ends when told to stop."""

    run_name = "idle"

    def __init__(self, path, detachable: bool = False) -> None:
        import threading

        self.detachable = detachable
        self.session_path = path
        self._stop = threading.Event()

    def subscribe(self, fn) -> None:
        pass

    def send(self, cmd) -> None:
        self._stop.set()

    def detach(self) -> None:
        self._stop.set()

    def checkpoint_steps(self) -> list[int]:
        return []

    def run(self) -> None:
        self._stop.wait(30)


@pytest.mark.asyncio
async def test_rewind_without_checkpoints_or_in_process_run_offers_nothing(tmp_path):
    from bitnet_tui.app.dashboard.dialogs import RewindDialog

    log = tmp_path / "s.jsonl"
    log.touch()
    app = make_app("live", run=_IdleRun(log))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await pilot.pause()
        assert not isinstance(app.screen, RewindDialog)
        assert any("no checkpoints of this run yet" in str(n.message) for n in app._notifications)
        app.source.run.send(None)
    attached = make_app("live", run=_IdleRun(log, detachable=True))
    async with attached.run_test(size=(120, 40)) as pilot:
        palette = {c.title: c.help for c in attached.get_system_commands(attached.screen)}
        assert palette["Rewind: fork from a checkpoint with a new LR"].startswith("unavailable: attached")
        attached.source.run.send(None)


@pytest.mark.asyncio
async def test_the_optimizer_fixes_are_keys_and_palette_commands(tmp_path, tiny):
    """D decouples, W sets the weight decay (a dialog), Z stops decay on norms and embeddings, U undoes: each an
    intervention from the dashboard, each in the palette."""
    from bitnet_tui.app.dashboard.dialogs import WDDialog

    run = tiny_run(tiny, tmp_path)
    seen: list = []
    run.subscribe(seen.append)
    app = make_app("live", run=run)

    def actions() -> list[str]:
        return [e.action for e in seen if isinstance(e, Intervention) and e.source == "dashboard"]

    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.feed.step >= 2, 60, "the first steps on screen")
        palette = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Set weight decay", "No weight decay on norms and embeddings"} <= palette
        assert any(t.startswith("Decouple weight decay") for t in palette)
        await pilot.press("W")
        assert isinstance(app.screen, WDDialog)
        await pilot.press(*"-1", "enter")
        assert isinstance(app.screen, WDDialog)  # refused, the dialog says why and stays
        await pilot.press("backspace", "backspace", *"0.01", "enter")
        await wait_for(pilot, lambda: "set_wd" in actions(), 30, "set_wd applied")
        await pilot.press("Z")  # this run decays 2-D weights only: refused, with the reason, as an alert
        await wait_for(pilot, lambda: "no_decay_on" in actions() or any(
            isinstance(e, Alert) and e.code == "command" and "decay" in e.message for e in seen), 30,
            "no-decay-on answered")
        await pilot.press("U")
        await wait_for(pilot, lambda: "undo_optim" in actions(), 30, "the undo applied")
        await pilot.press("q")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.feed.ended is not None, 60, "the run to end")
