"""The collapse detector on scripted eval sequences with their losses (never token counts alone)."""

from __future__ import annotations

import math

import pytest

from bitnet_tui.session.analysis.detector import CollapseDetector, DetectorConfig, EvalFigures

LN_V, H_UNI = math.log(4096), 6.58  # bitnet-tui's corpus: 8.32 and 6.58 nats
REPORT_LN_V, REPORT_H = math.log(50257), 7.3  # the report's vocabulary (GPT-2's)


def feed(unique, losses, *, ln_v=LN_V, h=H_UNI, generated=256, repetition=None, distinct2=None, every=100,
         cfg=None):
    """Run the detector over (unique, loss) pairs; returns (states, alerts)."""
    d = CollapseDetector(cfg or DetectorConfig(), ln_v, h)
    states, alerts = [], []
    for i, (u, loss) in enumerate(zip(unique, losses, strict=True)):
        rep = repetition[i] if isinstance(repetition, list) else repetition
        alerts += d.observe(EvalFigures(step=i * every, unique=u, generated=generated, val_loss=loss,
                                        repetition=rep, distinct2=distinct2, top_tokens=(("the", 9),),
                                        sample="the the the"))
        states.append(d.state)
    return states, alerts, d


def test_a_random_model_at_step_0_is_not_a_warning():
    states, alerts, _ = feed([120], [8.31])
    assert states == ["not_learning"]
    assert alerts[0].level == "info" and alerts[0].state_to == "not_learning"


def test_the_reports_trajectory_with_its_losses_is_not_learning_not_collapse():
    # The report's Phase 1 run at vocab 50,257: greedy output shrinks 20 -> 2 while the held-out loss stays at
    # ln(vocab) (10.3-10.8). Its token counts alone once read "collapsed"; with the losses it never learned.
    losses = [10.98, 10.7, 10.6, 10.5, 10.7, 10.8, 10.75]
    states, alerts, _ = feed([20, 19, 9, 4, 2, 2, 2], losses, ln_v=REPORT_LN_V, h=REPORT_H)
    assert set(states) == {"not_learning"}
    assert not any(a.state_to in ("collapsing", "collapsed", "unigram") for a in alerts)


def test_learned_a_little_then_back_toward_ln_vocab_is_unlearning():
    # Adam + coupled L2 at 1.5e-3: the loss drops (9.2 at step 250 in the report's setting), then climbs back.
    losses = [10.9, 9.4, 9.1, 9.0, 9.4, 9.9, 10.4, 10.7, 10.7]
    states, alerts, d = feed([20, 6, 3, 2, 2, 1, 1, 1, 1], losses, ln_v=REPORT_LN_V, h=REPORT_H, every=125)
    assert states[0] == "not_learning" and states[-1] == "unlearning"
    a = next(a for a in alerts if a.state_to == "unlearning")
    assert a.level == "error" and "lowest 9.000 at step 375" in a.message
    assert a.data["min_loss"] == pytest.approx(9.0) and a.data["min_step"] == 375
    assert states[-2:] == ["unlearning", "unlearning"]


def test_unlearning_can_end_when_the_loss_comes_back_down():
    losses = [8.3, 7.2, 6.6, 6.5, 7.3, 7.9, 8.1, 8.2, 7.0, 6.2, 5.8, 5.6]
    states, _, _ = feed([60, 8, 5, 5, 4, 3, 3, 3, 6, 20, 30, 35], losses)
    assert "unlearning" in states and states[-1] != "unlearning"


def test_the_unigram_phase_is_normal_and_leaving_it_is_not_a_collapse():
    # loss falls to the unigram entropy, output is " the" repeated, then diversity catches up with the loss
    losses = [8.3, 7.2, 6.6, 6.4, 6.0, 5.7, 5.5, 5.3]
    unique = [110, 4, 3, 5, 9, 15, 22, 30]
    states, alerts, _ = feed(unique, losses)
    assert states[0] == "not_learning" and "unigram" in states and states[-1] == "healthy"
    assert not any(a.state_to in ("collapsing", "collapsed") for a in alerts)


def test_healthy_needs_a_loss_below_the_unigram_entropy():
    # diverse output while the loss is still above the unigram entropy is not "healthy" yet
    states, _, _ = feed([110, 40, 35], [8.3, 6.9, 6.7])
    assert states == ["not_learning", "partial", "partial"]  # 7.6 and 6.9: above the unigram band (top 6.84)


def test_without_a_held_out_loss_healthy_claims_diversity_only_and_says_so():
    states, alerts, _ = feed([120, 14, 30, 40], [None] * 4)
    assert states[-1] == "healthy"
    (change,) = [a for a in alerts if a.state_to == "healthy"]
    assert "whether the model learned is not measured (no held-out loss)" in change.message
    assert "has learned" not in change.message
    assert all("no held-out loss (judged on the samples alone)" in a.message for a in alerts)
    _, with_loss, _ = feed([120, 14, 30, 40], [8.3, 6.6, 5.5, 5.0])
    assert "the model has learned" in with_loss[-1].message and "no held-out loss" not in with_loss[-1].message


def test_degenerate_decoding_after_learning_collapses_and_recovers():
    losses = [8.3, 6.0, 5.2, 5.0, 4.9, 4.9, 4.8, 4.8, 4.7]
    unique = [110, 30, 25, 9, 4, 3, 12, 16, 25]
    states, alerts, _ = feed(unique, losses)
    assert states[2:] == ["healthy", "collapsing", "collapsed", "collapsed", "recovering", "recovered", "recovered"]
    collapsed = next(a for a in alerts if a.state_to == "collapsed")
    assert collapsed.level == "error" and "4/256 unique tokens (1.6%)" in collapsed.message
    assert "thresholds: collapsed <= 2%" in collapsed.data["thresholds"]


def test_eight_prompts_each_in_a_two_token_loop_are_collapsed():
    # 16 unique tokens of 256 read "healthy" by count; per prompt, 30 of 32 tokens repeat
    losses = [8.3, 6.0, 5.2, 5.0, 4.9]
    states, _, _ = feed([110, 30, 25, 16, 16], losses, repetition=[0.2, 0.3, 0.3, 0.94, 0.94], distinct2=0.065)
    assert states[-2:] == ["collapsed", "collapsed"]


def test_a_noisy_healthy_run_raises_no_alert():
    losses = [8.3, 6.1, 5.4, 5.3, 5.5, 5.2, 5.4, 5.3, 5.5, 5.2, 5.4, 5.3]
    unique = [110, 30, 20, 14, 22, 16, 19, 14, 21, 17, 15, 22]
    states, alerts, _ = feed(unique, losses, repetition=0.4)
    assert states[-1] == "healthy"
    assert [(a.state_to, a.level) for a in alerts if a.level != "info"] == []
    assert "collapsing" not in states and "collapsed" not in states


def test_hysteresis_keeps_counts_near_the_threshold_from_flapping():
    losses = [8.3, 5.5] + [5.2] * 11
    unique = [110, 30, 9, 16, 10, 12, 9, 16, 11, 13, 9, 16, 12]  # 9-16 of 256, around the 4% line
    states, alerts, _ = feed(unique, losses)
    assert states[3] == "healthy"
    changes = sum(1 for a, b in zip(states[3:], states[4:]) if a != b)
    assert changes == 4  # one threshold without hysteresis (the old rule, <= 10 low) changes 6 times here


def test_learned_but_never_diverse_ends_collapsed_after_the_grace_period():
    cfg = DetectorConfig(stuck_evals=4)
    states, alerts, d = feed([110] + [3] * 8, [8.3] + [4.8] * 8, cfg=cfg)
    assert states[1] == "unigram" and states[-1] == "collapsed" and not d.diverse


def test_a_long_unigram_phase_warns_once():
    cfg = DetectorConfig(stuck_evals=3)
    states, alerts, _ = feed([110] + [4] * 7, [8.3] + [6.6] * 7, cfg=cfg)
    stuck = [a for a in alerts if "still in the unigram phase" in a.message]
    assert len(stuck) == 1 and stuck[0].level == "warning"


def test_weights_decaying_toward_zero_while_the_loss_is_not_improving_alerts_once():
    d = CollapseDetector(DetectorConfig(), REPORT_LN_V, REPORT_H)
    for step, loss in ((0, 10.9), (50, 9.5), (100, 9.3), (150, 9.6), (200, 10.1)):
        d.observe(EvalFigures(step=step, unique=5, generated=256, val_loss=loss))
    alerts = []
    for step, scale in ((0, 0.020), (50, 0.021), (100, 0.009), (150, 0.004), (200, 0.002), (250, 0.0018)):
        alerts += d.observe_scale(step, scale)
    assert len(alerts) == 1
    a = alerts[0]
    assert a.code == "decay" and a.step == 150 and "fell 5.2x" in a.message
    assert a.data["peak_scale"] == 0.021


def test_scales_shrinking_while_the_loss_improves_do_not_alert():
    d = CollapseDetector(DetectorConfig(), LN_V, H_UNI)
    alerts = []
    for step, (loss, scale) in enumerate([(8.3, 0.02), (7.0, 0.01), (6.0, 0.004), (5.0, 0.003)]):
        d.observe(EvalFigures(step=step, unique=40, generated=256, val_loss=loss))
        alerts += d.observe_scale(step, scale)
    assert alerts == []


def test_state_survives_a_checkpoint():
    _, _, d = feed([110, 30, 25, 9], [8.3, 6.0, 5.2, 5.0])
    e = CollapseDetector(DetectorConfig(), LN_V, H_UNI)
    e.load_state_dict(d.state_dict())
    assert (e.state, e.low, e.diverse, e.min_loss, e.losses) == (d.state, d.low, d.diverse, d.min_loss, d.losses)


def test_thresholds_must_be_ordered():
    with pytest.raises(ValueError):
        DetectorConfig(collapse_share=0.05, collapsing_share=0.04)
