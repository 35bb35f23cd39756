"""The disease rules' hysteresis, the figures' way through the log, diagnose, export and the dashboard panel."""

from __future__ import annotations

import csv
import math

import torch

from bitnet_model.train.trainer import Trainer
from bitnet_tui.instrument.for_trainer import monitor_for
from bitnet_tui.instrument.probes import act_figures, safe_probe
from bitnet_tui.instrument.weights import WeightWatcher
from bitnet_tui.session.analysis.disease_view import disease_rows, probe_rows
from bitnet_tui.session.analysis.diseases import DiseaseWatch, disease_causes
from bitnet_tui.session.analysis.fold import RunFold
from bitnet_tui.session.log.events import Alert, EvalDone, LayerWeights, StepDone, WeightsSnapshot
from bitnet_tui.session.log.reader import read_session
from tests.conftest import cli


def ev_eval(step, **probes):
    return EvalDone(step=step, time=0.0, unique_tokens=1, generated_tokens=1, probes=probes)


def layer(name="l", ratio=None, back=None, flip=0.1):
    return LayerWeights(name=name, neg=0.3, zero=0.4, pos=0.3, scale=0.02, flip_rate=flip, near_boundary=0.05,
                        update_ratio=ratio, flip_back=back)


def codes(alerts):
    return [(a.code, a.data["change"]) for a in alerts]


def test_rules_enter_and_leave_at_different_thresholds():
    w = DiseaseWatch()
    seq = [0.9, 0.4, 0.25]  # enters at >= 0.5, stays at 0.4 (above the 0.3 exit), leaves at 0.25
    got = [codes(w.observe(ev_eval(i, act={"x": {"zero": z, "crest": 5.0}}))) for i, z in enumerate(seq)]
    assert got == [[("act-clip", "enter")], [], [("act-clip", "leave")]]
    w = DiseaseWatch()
    got = [codes(w.observe(ev_eval(i, attn={"a": {"entropy": [e, e], "max_logit": m}})))
           for i, (e, m) in enumerate([(0.9, 5.0), (0.1, 40.0), (0.25, 25.0), (0.5, 10.0)])]
    assert got == [[], [("attn-entropy", "enter"), ("attn-logit", "enter")], [],
                   [("attn-entropy", "leave"), ("attn-logit", "leave")]]


def test_log_z_drift_flip_back_and_quantisation_shock_rules():
    w = DiseaseWatch()
    assert codes(w.observe(ev_eval(0, log_z=5.7))) == []
    assert codes(w.observe(ev_eval(1, log_z=-20.0))) == [("logit-z", "enter")]
    assert codes(w.observe(ev_eval(2, log_z=1.0))) == [("logit-z", "leave")]
    snap = lambda s, back, flip: WeightsSnapshot(step=s, time=0.0, layers=(layer(back=back, flip=flip),))  # noqa: E731
    assert codes(w.observe(snap(1, 0.8, 0.002))) == []  # few flips: no oscillation to speak of
    assert codes(w.observe(snap(2, 0.8, 0.05))) == [("flip-back", "enter")]
    assert codes(w.observe(snap(3, 0.1, 0.05))) == [("flip-back", "leave")]
    w = DiseaseWatch()
    out = []
    for s in range(1, 41):
        out += w.observe(StepDone(step=s, time=0.0, loss=3.0 if s <= 20 else 4.5, lr=1e-3, stage=1 if s <= 20 else 2))
    assert [a.code for a in out if a.code == "quant-shock"] == ["quant-shock"]


def test_a_nonfinite_loss_is_not_a_spike_and_a_flat_window_needs_a_real_rise():
    w = DiseaseWatch()
    out = []
    for s in range(1, 40):
        out += w.observe(StepDone(step=s, time=0.0, loss=3.0 + 0.001 * (s % 2), lr=1e-3))
    out += w.observe(StepDone(step=40, time=0.0, loss=math.nan, lr=1e-3))
    out += w.observe(StepDone(step=41, time=0.0, loss=3.1, lr=1e-3))  # 100 sd, but 0.1 nats: noise
    assert out == []
    assert codes(w.observe(StepDone(step=42, time=0.0, loss=6.0, lr=1e-3))) == [("loss-spike", "enter")]


def test_flip_back_and_update_ratio_are_measured_at_snapshots():
    lin = torch.nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.1, 2.0, -2.0, 0.0]] * 4))  # scale (absmean) ~1
    ww = WeightWatcher()
    ww.snapshot([("l", lin)])
    with torch.no_grad():
        lin.weight[:, 0] = 0.9  # 0 -> +1 for a quarter of the values
    ww.snapshot([("l", lin)])
    ww.keep_step_before([("l", lin)])
    with torch.no_grad():
        lin.weight[:, 0] = 0.1  # and back to 0
    (lw,) = ww.snapshot([("l", lin)])
    assert lw.flip_back == 1.0 and lw.flip_rate == 0.25
    expected = float(torch.full((4,), 0.8).norm() / lin.weight.detach().norm())
    assert math.isclose(lw.update_ratio, expected, rel_tol=1e-5)
    (again,) = ww.snapshot([("l", lin)])
    assert again.update_ratio is None  # the kept copy belongs to one snapshot only


def test_absmax_saturation_is_one_value_per_token_and_an_outlier_zeroes_the_rest():
    x = torch.randn(64, 32)
    f = act_figures(x)
    assert math.isclose(f["sat"], 1 / 32, rel_tol=0.2) and f["zero"] < 0.05
    x[:, 3] = 1000.0
    g = act_figures(x)
    assert g["zero"] > 0.9 and g["crest"] > 5.0 and math.isclose(g["sat"], 1 / 32, rel_tol=0.2)


def test_a_probe_that_cannot_read_the_model_is_an_error_field_not_a_failed_eval():
    class Odd(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("needs an attention mask")

    out = safe_probe(Odd(), (torch.zeros(2, 4, dtype=torch.long), None), None, None)
    assert out == {"error": "RuntimeError: needs an attention mask"}


def test_the_figures_survive_the_log_and_reach_diagnose_export_and_the_panel(tiny, tmp_path):
    tr = Trainer(tiny(steps=40))
    mon = monitor_for(tr, None)
    tr.model.blocks[0].ffn.up.weight.requires_grad_(False)
    tr.run()
    path = mon.session_path
    data = read_session(path)
    evals = [e for e in data.events if isinstance(e, EvalDone)]
    assert evals[-1].probes["act"]["blocks.0.attn.q"]["zero"] >= 0
    assert any(lw.update_ratio == 0.0 for e in data.events if isinstance(e, WeightsSnapshot) for lw in e.layers)
    fold = RunFold()
    fold.apply(data.header)
    fold.apply_all(data.events)
    causes = disease_causes(fold)
    assert [c.code for c in causes] == ["frozen-layer"] and "blocks.0.ffn.up" in causes[0].evidence
    rows = {r[0]: r for r in disease_rows(fold)}
    assert rows["frozen layer"][3].startswith("ALERT") and rows["loss spikes"][3] == "ok"
    res = cli("diagnose", str(path))
    assert res.returncode == 0 and "frozen layer" in res.stdout and "blocks.0.ffn.up" in res.stdout
    res = cli("export", str(path), "--to", "csv", str(tmp_path / "csv"))
    assert res.returncode == 0, res.stderr
    with open(tmp_path / "csv" / "probes.csv", encoding="utf-8") as f:
        got = list(csv.DictReader(f))
    assert {r["figure"] for r in got} >= {"act_zero", "attn_max_logit", "log_z", "attn_entropy_h0"}
    assert len(got) == len(evals) * len(probe_rows(evals[-1].probes))
    assert any(isinstance(a, Alert) and a.code == "frozen-layer" for a in data.events)


def test_hostile_probes_read_from_a_file_are_skipped_not_a_crash():
    bad = [{"act": [1, 2]}, {"act": {"x": "zero"}, "attn": {"a": {"entropy": "high", "max_logit": "NaN"}}},
           {"attn": {"a": {"entropy": [None, True, 1e400]}}, "log_z": "x"}, {"act": {"x": {"zero": 2e308}}}]
    w = DiseaseWatch()
    for i, p in enumerate(bad):
        assert w.observe(ev_eval(i, **p)) == []
        assert isinstance(probe_rows(p), list)
    fold = RunFold()
    fold.apply(ev_eval(9, **bad[1]))
    assert all(len(r) == 4 for r in disease_rows(fold))


def test_the_diseases_panel_shows_each_state_and_the_attention_heads():
    from rich.console import Console

    from bitnet_tui.app.dashboard.diseases import disease_table
    from bitnet_tui.app.dashboard.feed import Feed

    w, feed = DiseaseWatch(), Feed()
    for i, e in enumerate([0.9, 0.05]):
        ev = ev_eval(i, attn={"blocks.0.attn": {"entropy": [e, e / 2], "max_logit": 3.0 + 40 * i}})
        feed.apply(ev)
        for a in w.observe(ev):
            feed.apply(a)
    con = Console(width=100, record=True)
    con.print(disease_table(feed))
    text = con.export_text()
    assert "attention entropy collapse" in text and "ALERT (step 1)" in text
    assert "0.05" in text and "0.03" in text and "43.0" in text  # per head, and the layer's max q.k/sqrt(d)
    assert "frozen layer" in text and "not measured" in text


def test_every_disease_is_a_row_of_the_causes_table_and_the_lr_ones_have_the_half_lr_fix():
    from bitnet_tui.session.analysis.causes import BY_CODE, Evidence, causes
    from bitnet_tui.session.analysis.diseases import CODES, ONE_OFF
    from bitnet_tui.session.analysis.fixes import FIXES

    assert {c: BY_CODE[c].title for c in CODES} == CODES
    assert {c for c in CODES if c in FIXES} == {"loss-spike", "update-ratio", "attn-entropy", "attn-logit",
                                                "logit-z", "flip-back"}
    assert all(FIXES[c].live == "set-lr {half}" for c in CODES if c in FIXES)
    w, events = DiseaseWatch(), []
    for i, z in enumerate([0.9, 0.1]):  # act-clip raised, then cleared
        events += w.observe(ev_eval(i, act={"x": {"zero": z}}))
    events += w.observe(ev_eval(2, attn={"a": {"entropy": [0.9], "max_logit": 40.0}}))  # attn-logit, still on
    found = {c.code: c.tier for c in disease_causes(events)}
    assert found == {"act-clip": 2, "attn-logit": 1} and set(ONE_OFF) <= set(CODES)
    e = Evidence(audit={}, trouble=True, diverged=True, unlearned=False, decay_alert_step=None, fall=1.0, k=4.0,
                 full_precision_falls=(), flips=None, never_learned=False, not_learned_yet=False, degenerate=False,
                 lr=1e-3, lr_changes=(), last_step=10, diseases=disease_causes(events))
    assert [(c.code, c.tier) for c in causes(e)] == [("nonfinite", 1), ("attn-logit", 1), ("act-clip", 2)]
