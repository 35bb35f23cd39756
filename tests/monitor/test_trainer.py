"""The trainer on real text with a tiny real model: determinism, learning, commands, faults, exact resume."""

from __future__ import annotations

import math
import threading
import time

import pytest

from bitnet_model.train.trainer import Trainer
from bitnet_tui.instrument.for_trainer import monitor_for
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.log.events import Alert, EvalDone, Intervention, RunEnded, RunStarted, StepDone
from tests.conftest import wait_until


def make(cfg, **kw):
    """A trainer with its Monitor (logging to the test's sessions directory) and a list of its events."""
    tr = Trainer(cfg, **kw)
    mon = monitor_for(tr, None)
    events = []
    mon.subscribe(events.append)
    return tr, mon, events


def run_with(cfg, before=None, **kw):
    tr, mon, events = make(cfg, **kw)
    if before:
        before(mon)
    end = tr.run()
    return tr, events, end


def losses(events):
    return [e.loss for e in events if isinstance(e, StepDone)]


def test_same_seed_same_losses(tiny):
    _, a, _ = run_with(tiny(steps=20))
    _, b, _ = run_with(tiny(steps=20))
    assert len(losses(a)) == 20
    assert losses(a) == losses(b)
    _, c, _ = run_with(tiny(steps=20, seed=1))
    assert losses(c) != losses(a)


@pytest.mark.slow
def test_a_short_run_on_the_default_corpus_lowers_held_out_loss(tiny):
    _, ev, end = run_with(tiny(steps=120, lr=3e-3))
    evals = [e for e in ev if isinstance(e, EvalDone)]
    assert end.reason == "finished"
    assert isinstance(ev[0], RunStarted) and isinstance(ev[-1], RunEnded)
    assert evals[0].step == 0 and evals[-1].step == 120
    assert evals[-1].val_loss < evals[0].val_loss - 0.5
    assert ev[0].unigram_entropy < ev[0].ln_vocab


def test_set_lr_changes_the_next_step_and_is_an_intervention(tiny):
    def before(tr):
        tr.send(C.SetLR(value=2e-3, source="test"))

    tr, ev, _ = run_with(tiny(steps=5, warmup_steps=0, schedule="constant"), before)
    iv = [e for e in ev if isinstance(e, Intervention)]
    assert len(iv) == 1 and iv[0].action == "set_lr" and iv[0].new == pytest.approx(2e-3)
    assert iv[0].old == pytest.approx(3e-3) and iv[0].source == "test"
    steps = [e for e in ev if isinstance(e, StepDone)]
    assert all(s.lr == pytest.approx(2e-3) for s in steps)
    assert ev.index(iv[0]) < ev.index(steps[0])


def test_scale_and_undo(tiny):
    def before(tr):
        tr.send(C.ScaleLR(factor=0.5))
        tr.send(C.UndoLR())

    _, ev, _ = run_with(tiny(steps=3, warmup_steps=0, schedule="constant"), before)
    iv = [e for e in ev if isinstance(e, Intervention)]
    assert [i.action for i in iv] == ["scale_lr", "undo_lr"]
    assert iv[0].new == pytest.approx(1.5e-3) and iv[1].new == pytest.approx(3e-3)
    assert all(s.lr == pytest.approx(3e-3) for s in ev if isinstance(s, StepDone))


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, 1e9])
def test_bad_lr_is_refused_and_changes_nothing(tiny, bad):
    def before(tr):
        tr.send(C.SetLR(value=bad))

    _, ev, _ = run_with(tiny(steps=2, warmup_steps=0, schedule="constant"), before)
    assert not [e for e in ev if isinstance(e, Intervention)]
    assert any(isinstance(e, Alert) and e.code == "command" for e in ev)
    assert all(s.lr == pytest.approx(3e-3) for s in ev if isinstance(s, StepDone))


def test_pause_stops_steps_and_resume_continues(tiny):
    tr, mon, ev = make(tiny(steps=400))
    th = threading.Thread(target=tr.run)
    th.start()
    wait_until(lambda: mon.step_count >= 5, 60, "five steps")
    mon.send(C.Pause())
    wait_until(lambda: mon.paused, 30, "the pause")
    at = mon.step_count
    time.sleep(0.3)
    assert mon.step_count == at
    mon.send(C.Resume())
    wait_until(lambda: mon.step_count >= at + 5, 60, "five more steps")
    mon.send(C.Stop(reason="stopped"))
    th.join(30)
    assert ev[-1].reason == "stopped"
    actions = [e.action for e in ev if isinstance(e, Intervention)]
    assert actions == ["pause", "resume", "stop"]


def test_nonfinite_loss_from_a_poisoned_weight(tiny):
    tr, _, ev = make(tiny(steps=10), on_nonfinite="stop")
    with __import__("torch").no_grad():
        tr.model.head.weight.fill_(math.inf)
    end = tr.run()
    assert end.reason == "nonfinite"
    alerts = [e for e in ev if isinstance(e, Alert) and e.code == "nonfinite"]
    assert len(alerts) == 1 and "non-finite loss" in alerts[0].message
    assert math.isnan(ev[[i for i, e in enumerate(ev) if isinstance(e, StepDone)][0]].loss)


def test_a_failing_consumer_pauses_the_run_and_it_continues_when_it_recovers(tiny):
    class Flaky:
        def __init__(self):
            self.broken = False
            self.seen = []

        def __call__(self, ev):
            if self.broken:
                raise OSError(28, "No space left on device")
            self.seen.append(ev)

        def retry(self):
            return not self.broken

    tr, mon, ev = make(tiny(steps=200))
    flaky = Flaky()
    mon.subscribe(flaky)
    th = threading.Thread(target=tr.run)
    th.start()
    wait_until(lambda: mon.step_count >= 3, 60, "three steps")
    flaky.broken = True
    wait_until(lambda: mon.paused, 30, "the pause")
    assert any(isinstance(e, Alert) and e.code == "io" and "No space left" in e.message for e in ev)
    at = mon.step_count
    time.sleep(0.3)
    assert mon.step_count == at
    flaky.broken = False
    wait_until(lambda: not mon.paused, 30, "the resume")
    mon.send(C.Stop())
    th.join(30)
    assert any(isinstance(e, Intervention) and e.action == "resume" and e.source.startswith("auto") for e in ev)


def test_a_crash_in_training_ends_the_run_with_the_error(tiny):
    tr, _, ev = make(tiny(steps=10))

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    tr.model.forward = boom
    end = tr.run()
    assert end.reason == "error" and "kaboom" in end.error
    assert any(isinstance(e, Alert) and e.code == "crash" for e in ev)


@pytest.mark.slow
def test_resume_from_step_40_reproduces_steps_41_to_60_exactly(tiny):
    cfg = tiny(steps=60)
    _, full, _ = run_with(cfg)
    first, mon, _ = make(cfg)

    def at40(ev):
        if isinstance(ev, StepDone) and ev.step == 40:
            mon.send(C.CheckpointNow())
            mon.send(C.Stop())

    mon.subscribe(at40)
    first.run()
    saved = sorted(mon._store.directory.glob("step*.pt"))
    assert [p.name for p in saved] == ["step00000040.pt"]
    _, resumed, _ = run_with(cfg, init_from=saved[0])
    want = [e.loss for e in full if isinstance(e, StepDone) and e.step > 40]
    got = [e.loss for e in resumed if isinstance(e, StepDone)]
    assert [e.step for e in resumed if isinstance(e, StepDone)] == list(range(41, 61))
    assert got == want
