"""Fix it while it runs, on a real tiny run: the seed report's optimizer (Adam with coupled L2 on every
parameter) decays the ternary scales; ``decouple`` applied live, by a person or by the autopilot, stops it and the
held-out loss falls below its value at the intervention within one eval (measured: N = 1 at eval every 20)."""

from __future__ import annotations

import pytest

from bitnet_tui.app.runs.build import prepare_run
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.log.events import Alert, EvalDone, Intervention, WeightsSnapshot
from bitnet_tui.session.log.reader import read_session

pytestmark = pytest.mark.slow

REPORT = {"optimizer": "adam", "decay_all": True, "weight_decay": 0.1, "lr": 1.5e-3, "warmup_steps": 20,
          "schedule": "constant"}
"""The report's optimizer on the tiny model: PyTorch Adam, decay 0.1 on every parameter."""


def _mean_scale(ev: WeightsSnapshot) -> float:
    return sum(lw.scale for lw in ev.layers) / len(ev.layers)


def _run(tmp_path, tiny, **build):
    live = prepare_run({}, sessions=str(tmp_path / "s"), base=tiny(steps=300, **REPORT), **build)
    return live


def _after(events, step):
    evals = {e.step: e.val_loss for e in events if isinstance(e, EvalDone)}
    scales = {e.step: _mean_scale(e) for e in events if isinstance(e, WeightsSnapshot)}
    return evals, scales


def _recovered_within_one_eval(events, at: int) -> None:
    evals, scales = _after(events, at)
    nxt = min(s for s in evals if s > at)
    assert scales[0] / scales[at] >= 4  # the decay the alert named: the scale fell 4x or more
    assert evals[nxt] < evals[at]  # the held-out loss falls below its value at the intervention ...
    assert scales[nxt] > scales[at]  # ... and the scale stops falling, at the next eval (N = 1)
    assert min(v for s, v in evals.items() if s > at) < min(v for s, v in evals.items() if s <= at)


def test_a_person_decouples_adams_l2_live_and_the_run_recovers(tmp_path, tiny):
    live = _run(tmp_path, tiny, control=True)
    sent: list[int] = []

    def on_alert(ev):
        if isinstance(ev, Alert) and ev.code == "decay" and not sent:
            sent.append(ev.step)
            live.send(C.Decouple(source="test"))

    live.subscribe(on_alert)
    live.run()
    events = read_session(live.session_path).events
    fix = [e for e in events if isinstance(e, Intervention) and e.action == "decouple"]
    assert sent and len(fix) == 1 and fix[0].source == "test" and "coupled L2" in str(fix[0].old)
    _recovered_within_one_eval(events, fix[0].step)


def test_the_autopilot_applies_the_audits_fix_once_with_no_person(tmp_path, tiny):
    live = _run(tmp_path, tiny, autopilot=True)
    live.run()
    events = read_session(live.session_path).events
    auto = [e for e in events if isinstance(e, Intervention) and e.source == "auto"]
    assert [e.action for e in auto] == ["decouple", "no_decay_on"]  # once each, at the decay alert
    assert any(isinstance(e, Alert) and e.code == "autopilot" for e in events)
    _recovered_within_one_eval(events, auto[0].step)


def test_without_a_fix_the_same_run_keeps_decaying(tmp_path, tiny):
    live = _run(tmp_path, tiny)
    live.run()
    events = read_session(live.session_path).events
    evals, scales = _after(events, 0)
    assert not [e for e in events if isinstance(e, Intervention)]
    assert scales[0] / scales[300] >= 4 and evals[300] > min(evals.values())
