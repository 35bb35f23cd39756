"""Issue 24, progress: the headless line fits 80 columns, the header has a bar, elapsed, ETA, steps/s and tok/s,
and a pause is never part of the pace (tok/s read 476 after a resume)."""

from __future__ import annotations

import io
import threading

import pytest
from rich.cells import cell_len

from bitnet_tui.app.dashboard.feed import Feed
from bitnet_tui.app.dashboard.header import render_header
from bitnet_tui.app.headless import HeadlessView
from bitnet_tui.session.log.events import Event, Intervention, RunEnded, StepDone
from tests.dashboard import synth


class _Replayed:
    """A run (the RunHandle seam) that emits a logged run's events up to a step, then returns."""

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.run_name = events[0].run_name  # type: ignore[attr-defined]
        self.subscribers: list = []

    def subscribe(self, fn) -> None:
        self.subscribers.append(fn)

    def send(self, cmd) -> None:
        pass

    def run(self) -> RunEnded:
        for e in self.events:
            for fn in self.subscribers:
                fn(e)
        return RunEnded(step=self.events[-1].step, time=self.events[-1].time, reason="finished")


def midway(upto: int = 150) -> list[Event]:
    return [e for e in synth.events("2026-01-01T10-00-00_h64_lr1.5e-3_decay_all_no") if e.step <= upto
            and not isinstance(e, RunEnded)]


@pytest.mark.parametrize("width", [80, 120])
def test_headless_progress_line_fits_the_terminal(width, monkeypatch):
    """At 80 columns the line was cut before the step count, the ETA and the state."""
    monkeypatch.setenv("COLUMNS", str(width))
    out = io.StringIO()
    view = HeadlessView(_Replayed(midway()), tty=True, out=out)  # type: ignore[arg-type]
    view.watch()
    line = [ln for ln in out.getvalue().splitlines() if ln.strip()][-1]
    assert cell_len(line) <= width, line
    for part in ("step 150/300", "ETA ", "collapsing", "loss "):
        assert part in line, (part, line)
    assert "━" in line  # Rich's progress bar, where it fits
    if width == 120:
        assert "tok/s" in line and "elapsed " in line, line


def test_header_shows_a_bar_elapsed_eta_and_speeds():
    f = Feed()
    f.apply_all(midway())
    wide = render_header(f, "replay", width=160).plain.splitlines()[1]
    for part in ("step 150/300", "━", "ETA ", "20,000 tok/s", "elapsed 8s", "steps/s"):
        assert part in wide, (part, wide)
    narrow = render_header(f, "replay", width=80).plain.splitlines()[1]
    assert cell_len(narrow) <= 80 and "step 150/300" in narrow and "ETA " in narrow, narrow


def test_a_pause_is_not_part_of_the_pace():
    """Steps 1 s apart, a 100 s pause, then a step whose logged tok/s counted the pause (an older log):
    steps/s, the ETA and tok/s read as before the pause."""
    f = Feed()
    evs = midway(0)
    evs += [StepDone(step=s, time=1000.0 + s, loss=5.0, lr=1e-3, weight_decay=0.0, tokens_per_s=10_000.0)
            for s in range(1, 11)]
    evs += [Intervention(step=10, time=1010.5, action="pause", old="running", new="paused", source="dashboard"),
            Intervention(step=10, time=1110.5, action="resume", old="paused", new="running", source="dashboard"),
            StepDone(step=11, time=1111.0, loss=5.0, lr=1e-3, weight_decay=0.0, tokens_per_s=99.0)]
    f.apply_all(evs)
    assert f.steps_per_s() == pytest.approx(1.0)
    assert f.eta_s() == pytest.approx(300 - 11)
    assert "10,000 tok/s" in render_header(f, "live").plain


def test_the_monitor_leaves_a_pause_out_of_the_next_steps_time(tiny):
    """The step after a resume logged 476 tok/s: its time counted the pause."""
    import torch
    import torch.nn.functional as F

    from bitnet_model.nn.model import BitNetLM
    from bitnet_tui.instrument.config import MonitorConfig
    from bitnet_tui.instrument.monitor import Monitor
    from bitnet_tui.session.control import commands as C

    torch.manual_seed(0)
    model = BitNetLM(tiny().model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 300, (2, 16))
    steps: list[StepDone] = []
    with Monitor(model, opt, sessions_dir=None, eval_every=1000,
                 options=MonitorConfig(control=False, vocab_size=300)) as mon:
        mon.subscribe(lambda e: steps.append(e) if isinstance(e, StepDone) else None)
        for i in range(10):
            logits, _ = model(x)
            F.cross_entropy(logits.flatten(0, 1), x.flatten()).backward()
            opt.step()
            opt.zero_grad()
            if i == 5:  # asked mid-step, applied at this step's boundary; resumed 1 s later
                mon.send(C.Pause(source="test"))
                threading.Timer(1.0, lambda: mon.send(C.Resume(source="test"))).start()
            mon.step(logits.sum() * 0, tokens=32)
    rates = [e.tokens_per_s for e in steps if e.step > 1 and e.tokens_per_s]
    after = next(e.tokens_per_s for e in steps if e.step == 7)
    typical = sorted(rates)[len(rates) // 2]
    assert after > typical / 4, (after, rates)


@pytest.mark.asyncio
async def test_the_first_paint_says_what_the_run_is_doing(tmp_path):
    """The first paint read `LIVE no eval yet (no run_started yet)` for about 2 s."""
    from bitnet_tui.app.dashboard.app import make_app
    from bitnet_tui.app.dashboard.panels import HeaderBar
    from tests.dashboard.test_live import _IdleRun
    from tests.dashboard.test_round3 import shown

    app = make_app("live", run=_IdleRun(tmp_path / "x.jsonl"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = shown(app.query_one(HeaderBar))
        assert "no run_started yet" not in text and "no eval yet" not in text, text
        assert "idle" in text and "starting" in text, text
        await pilot.press("escape")


def test_before_the_first_step_the_header_names_the_run_and_what_comes_next():
    f = Feed()
    f.apply_all(midway(0)[:1])  # the header alone
    two = render_header(f, "live", width=80).plain.splitlines()[1]
    assert "step-0 eval" in two and "then the first step" in two, two
    assert "hidden 64" in two and "layers 4" in two, two
    f.apply_all(e for e in midway(0)[1:] if not isinstance(e, StepDone))
    two = render_header(f, "live", width=80).plain.splitlines()[1]
    assert "waiting for the first step" in two and "step-0 eval" not in two, two
    assert "starting" not in render_header(f, "live", width=80).plain.splitlines()[0]
