"""Each disease induced for real on the tiny model, and a healthy run on three seeds that raises none of them."""

from __future__ import annotations

import pytest

from bitnet_tui.app.cli.diagnose import diagnose_path
from bitnet_tui.session.analysis.diseases import CODES, disease_causes
from bitnet_tui.session.analysis.fold import RunFold
from bitnet_tui.session.log.events import Alert, EvalDone, StepDone, WeightsSnapshot
from tests.diseases import scenarios as sc


def raised(events, code):
    return [e for e in events if isinstance(e, Alert) and e.code == code and e.data.get("change") == "enter"]


def test_frozen_layer_is_named_by_its_zero_update_ratio(tiny):
    events = sc.frozen_layer(tiny)
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
    events = sc.large_lr_no_warmup(tiny)
    hits = raised(events, "update-ratio")
    assert hits and hits[0].step <= 3 and hits[0].data["ratio"] >= 0.3
    calm, _ = sc.run(tiny(steps=20), weights_every=1)
    ratios = [lw.update_ratio for e in calm if isinstance(e, WeightsSnapshot) for lw in e.layers if lw.update_ratio]
    assert ratios and max(ratios) < 0.3 and not raised(calm, "update-ratio")


def test_an_lr_jump_makes_a_loss_spike_after_a_grad_norm_spike(tiny):
    events, mon = sc.lr_jump(tiny)
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
    events = sc.large_lr_no_warmup(tiny, steps=60, weights_every=None)
    ent, logit = raised(events, "attn-entropy"), raised(events, "attn-logit")
    assert ent and ent[0].data["entropy"] < 0.2 and ent[0].data["first"] > 0.9
    assert logit and logit[0].data["max_logit"] >= 30
    first = next(e for e in events if isinstance(e, EvalDone))
    assert first.probes["attn"]["blocks.0.attn"]["max_logit"] < 5  # the random model's logits were small


def test_planted_outlier_channels_leave_int8_activations_at_zero(tiny):
    events = sc.outlier_channels(tiny)
    hits = raised(events, "act-clip")
    layers = {a.data["layer"] for a in hits}
    assert "blocks.0.attn.q" in layers and all(a.data["zero"] >= 0.5 for a in hits)
    first = next(e for e in events if isinstance(e, EvalDone))
    act = first.probes["act"]["blocks.0.attn.q"]
    assert act["zero"] >= 0.5 and act["crest"] > 3.5  # sqrt(32)=5.7 when two channels hold all the energy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_healthy_run_raises_no_disease(tiny, seed):
    events = sc.healthy(tiny, seed)
    bad = [a.message for a in events if isinstance(a, Alert) and a.code in CODES]
    assert not bad
    evals = [e for e in events if isinstance(e, EvalDone)]
    assert all(e.probes.get("act") and e.probes.get("attn") and "log_z" in e.probes for e in evals)


def causes_of(events):
    fold = RunFold()
    fold.apply_all(events)
    return {c.code: c for c in disease_causes(fold)}


def test_a_memorised_batch_without_weight_decay_drives_log_z_up(tiny):
    events = sc.memorised_logits(tiny)
    hits = raised(events, "logit-z")
    assert hits and hits[0].data["drift"] >= 20 and abs(hits[0].data["first"] - 5.70) < 0.1  # ln 300 at init
    z = [e.probes["log_z"] for e in events if isinstance(e, EvalDone)]
    assert z[-1] - z[0] >= 20, z
    losses = [e.loss for e in events if isinstance(e, StepDone)]
    assert losses[-1] < 1.0  # learned its batch: the loss fell while log Z rose
    assert causes_of(events)["logit-z"].tier == 1


def test_momentum_free_adam_flips_weights_back_and_forth(tiny):
    events = sc.oscillating_weights(tiny)
    hits = raised(events, "flip-back")
    assert hits and hits[0].data["flip_back"] >= 0.5 and hits[0].data["flip_rate"] >= 0.01
    assert causes_of(events)["flip-back"].tier == 1  # still oscillating at the end


def test_a_float_model_made_ternary_at_once_raises_a_quantisation_shock(tiny):
    events = sc.float_then_ternary(tiny)
    hits = raised(events, "quant-shock")
    assert len(hits) == 1 and hits[0].data["at"] == 61 and hits[0].data["rise"] >= 1.0
    assert hits[0].data["before"] < 0.5  # the float model had learned its batch
    assert causes_of(events)["quant-shock"].tier == 1
