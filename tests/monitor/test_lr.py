"""A person's LR changes over the loop's schedule: the typed value is the LR from now on, never exceeded."""

from __future__ import annotations

import pytest
import torch

from bitnet_model.train.trainer import Trainer
from bitnet_tui.instrument.for_trainer import monitor_for
from bitnet_tui.instrument.lr import LRControl
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.log.events import Intervention, StepDone


def scheduled_steps(schedule, rules_at):
    """Drive an LRControl through a schedule; ``rules_at``: {step: ("set", v) | ("undo",)}; returns applied LRs."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=schedule[0])
    ctl = LRControl()
    ctl.attach(opt)
    out = []
    for i, lr in enumerate(schedule):
        for g in opt.param_groups:
            g["lr"] = lr
        what = rules_at.get(i)
        if what and what[0] == "set":
            ctl.set(what[1])
        elif what:
            ctl.undo()
        p.grad = torch.zeros(1)
        opt.step()
        out.append(ctl.applied)
        assert opt.param_groups[0]["lr"] == lr  # the scheduler sees its own value after the step
    return out


WARMUP = [1.5e-3 * (i + 1) / 20 for i in range(20)] + [1.5e-3 * (1 - i / 80) for i in range(80)]


def test_a_typed_lr_during_warmup_holds_until_the_peak_and_is_never_exceeded():
    applied = scheduled_steps(WARMUP, {5: ("set", 5e-4)})
    assert applied[:5] == pytest.approx(WARMUP[:5])
    assert all(a <= 5e-4 * (1 + 1e-12) for a in applied[5:])
    assert applied[5:20] == pytest.approx([5e-4] * 15)  # the warmup ends at the typed value
    assert applied[-1] == pytest.approx(5e-4 * WARMUP[-1] / max(WARMUP))  # then the decay keeps its shape


def test_after_warmup_the_decay_keeps_its_shape_below_the_typed_value():
    applied = scheduled_steps(WARMUP, {40: ("set", 2e-4)})
    assert applied[40] == pytest.approx(2e-4)
    assert applied[60] == pytest.approx(2e-4 * WARMUP[60] / WARMUP[40])


def test_undo_restores_the_rule_before():
    applied = scheduled_steps(WARMUP, {30: ("set", 1e-4), 50: ("undo",)})
    assert applied[49] == pytest.approx(1e-4 * WARMUP[49] / WARMUP[30])
    assert applied[50:] == pytest.approx(WARMUP[50:])


def test_set_lr_during_warmup_in_a_real_run_never_exceeds_the_typed_value(tiny):
    tr = Trainer(tiny(steps=60, lr=1.5e-3, warmup_steps=40, schedule="two-stage"))
    mon = monitor_for(tr, None)
    events = []

    def at5(ev):
        events.append(ev)
        if isinstance(ev, StepDone) and ev.step == 5:
            mon.send(C.SetLR(value=5e-4, source="test"))

    mon.subscribe(at5)
    tr.run()
    iv = next(e for e in events if isinstance(e, Intervention) and e.action == "set_lr")
    later = [e.lr for e in events if isinstance(e, StepDone) and e.step > iv.step]
    assert later and max(later) <= 5e-4 * (1 + 1e-9)
    assert later[0] == pytest.approx(5e-4)
