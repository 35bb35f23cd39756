"""Each disease induced for real on the tiny model, and a healthy run on three seeds that raises none of them."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bitnet_model.train.trainer import Trainer
from bitnet_tui.app.cli.diagnose import diagnose_path
from bitnet_tui.instrument.for_trainer import monitor_for
from bitnet_tui.session.analysis.diseases import CODES, disease_causes
from bitnet_tui.session.analysis.fold import RunFold
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.log.events import Alert, EvalDone, StepDone, WeightsSnapshot


def run(cfg, *, weights_every=None, before=None, during=None, with_monitor=False):
    if weights_every is not None:
        cfg = dataclasses.replace(cfg, diag=dataclasses.replace(cfg.diag, weights_every=weights_every))
    tr = Trainer(cfg)
    mon = monitor_for(tr, None)
    events: list = []
    mon.subscribe(events.append)
    if before:
        before(tr)
    if during:
        mon.subscribe(lambda e: during(mon, e))
    tr.run()
    return (events, mon) if with_monitor else events


def raised(events, code):
    return [e for e in events if isinstance(e, Alert) and e.code == code and e.data.get("change") == "enter"]


def test_frozen_layer_is_named_by_its_zero_update_ratio(tiny):
    def freeze(tr):
        tr.model.blocks[0].attn.v.weight.requires_grad_(False)

    events = run(tiny(steps=40), before=freeze)
    snaps = [e for e in events if isinstance(e, WeightsSnapshot) and e.step > 0]
    v = [lw for s in snaps for lw in s.layers if lw.name == "blocks.0.attn.v"]
    q = [lw for s in snaps for lw in s.layers if lw.name == "blocks.0.attn.q"]
    assert v and all(lw.update_ratio == 0.0 for lw in v)
    assert all(lw.update_ratio and lw.update_ratio > 1e-4 for lw in q)
    hits = raised(events, "frozen-layer")
    assert [a.data["layer"] for a in hits] == ["blocks.0.attn.v"]
    fold = RunFold()
    fold.apply_all(events)
    causes = {c.code: c for c in disease_causes(fold)}
    assert "frozen-layer" in causes and "blocks.0.attn.v" in causes["frozen-layer"].evidence


def test_large_lr_without_warmup_raises_the_update_ratio_then_clears(tiny):
    events = run(tiny(steps=20, lr=0.1, warmup_steps=0, schedule="constant"), weights_every=1)
    hits = raised(events, "update-ratio")
    assert hits and hits[0].step <= 3 and hits[0].data["ratio"] >= 0.3
    calm = run(tiny(steps=20), weights_every=1)
    ratios = [lw.update_ratio for e in calm if isinstance(e, WeightsSnapshot) for lw in e.layers if lw.update_ratio]
    assert ratios and max(ratios) < 0.3 and not raised(calm, "update-ratio")


def test_an_lr_jump_makes_a_loss_spike_after_a_grad_norm_spike(tiny):
    def jump(mon, e):
        if isinstance(e, StepDone) and e.step == 70:
            mon.send(C.SetLR(value=0.9, source="test"))

    events, mon = run(tiny(steps=90), during=jump, with_monitor=True)
    hits = raised(events, "loss-spike")
    assert len(hits) == 1 and 70 < hits[0].step <= 75, [a.message for a in hits]
    assert hits[0].data["z"] >= 6 and hits[0].data["grad_z"] >= 6
    fold = RunFold()
    fold.apply_all(events)
    found = {c.code: c.tier for c in disease_causes(fold)}
    assert found["loss-spike"] == 1  # an LR of 0.9 does more harm after it (attention, activations): fine
    d, _ = diagnose_path(mon.session_path)
    spike = next(c for c in d.causes if c.code == "loss-spike")
    assert spike.tier == 1 and spike.title == "loss spikes" and d.trouble
    assert any(cmd.endswith("--lr 1.5e-3") for _, cmd in d.tries), d.tries  # half the configured 3e-3
    assert len(d.tries) == len(set(d.tries))  # two causes with one fix: offered once


def test_large_lr_without_warmup_collapses_attention_entropy_and_grows_its_logits(tiny):
    events = run(tiny(steps=60, lr=0.1, warmup_steps=0, schedule="constant"))
    ent, logit = raised(events, "attn-entropy"), raised(events, "attn-logit")
    assert ent and ent[0].data["entropy"] < 0.2 and ent[0].data["first"] > 0.9
    assert logit and logit[0].data["max_logit"] >= 30
    first = next(e for e in events if isinstance(e, EvalDone))
    assert first.probes["attn"]["blocks.0.attn"]["max_logit"] < 5  # the random model's logits were small


def test_planted_outlier_channels_leave_int8_activations_at_zero(tiny):
    def plant(tr):
        with torch.no_grad():
            tr.model.embed.weight[:, :2] *= 300.0  # two residual channels 300x the rest, for every token

    events = run(tiny(steps=20), before=plant)
    hits = raised(events, "act-clip")
    layers = {a.data["layer"] for a in hits}
    assert "blocks.0.attn.q" in layers and all(a.data["zero"] >= 0.5 for a in hits)
    first = next(e for e in events if isinstance(e, EvalDone))
    act = first.probes["act"]["blocks.0.attn.q"]
    assert act["zero"] >= 0.5 and act["crest"] > 3.5  # sqrt(32)=5.7 when two channels hold all the energy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_healthy_run_raises_no_disease(tiny, seed):
    events = run(tiny(steps=120, seed=seed))
    bad = [a.message for a in events if isinstance(a, Alert) and a.code in CODES]
    assert not bad
    evals = [e for e in events if isinstance(e, EvalDone)]
    assert all(e.probes.get("act") and e.probes.get("attn") and "log_z" in e.probes for e in evals)
