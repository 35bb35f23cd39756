"""States that mean what they say, on sequences with their losses: the unigram phase only within its band,
"partly learned" above it, "too early to say" for a running run, "healthy" only when every diversity figure
agrees, severity from the state, and alert text that never repeats itself."""

from __future__ import annotations

import math

from bitnet_tui.session.analysis import verdict as V
from bitnet_tui.session.analysis.detector import CollapseDetector, DetectorConfig, EvalFigures
from bitnet_tui.session.analysis.fold import EvalPoint, timeline_item
from tests.analysis.test_diagnose import diagnosed
from tests.fixtures.scripted import scripted_run

REPORT_LN_V, REPORT_H = math.log(50257), 6.59  # the seed-report preset: GPT-2's vocabulary on our corpus


def run(figs: list[tuple[int, float | None, float | None, float | None]], *, ln_v=math.log(4096), h=6.58,
        cfg=None) -> tuple[list[str], list, CollapseDetector]:
    """(unique of 256, loss, distinct-2, repetition) per eval, 100 steps apart."""
    d = CollapseDetector(cfg or DetectorConfig(), ln_v, h)
    states, alerts = [], []
    for i, (u, loss, d2, rep) in enumerate(figs):
        alerts += d.observe(EvalFigures(step=100 * i, unique=u, generated=256, val_loss=loss, distinct2=d2,
                                        repetition=rep))
        states.append(d.state)
    return states, alerts, d


def test_a_loss_well_above_the_unigram_entropy_is_partly_learned_not_the_unigram_phase():
    # the case: held-out 8.35 against a unigram entropy of 6.59 at vocabulary 50,257
    states, alerts, d = run([(120, 10.9, 0.9, 0.3)] + [(2, 8.35, 0.01, 0.95)] * 4, ln_v=REPORT_LN_V, h=REPORT_H)
    assert states[-1] == "partial" and "unigram" not in states
    change = next(a for a in alerts if a.state_to == "partial")
    top, floor = REPORT_H + 0.15 * (REPORT_LN_V - REPORT_H), REPORT_LN_V - 0.25 * (REPORT_LN_V - REPORT_H)
    assert f"unigram band's top {top:.2f}" in change.message and f"near uniform {floor:.2f}" in change.message
    near, _, _ = run([(120, 10.9, 0.9, 0.3)] + [(2, 6.7, 0.01, 0.95)] * 4, ln_v=REPORT_LN_V, h=REPORT_H)
    assert near[-1] == "unigram"  # 6.7 is within the band around 6.59


def test_the_seed_reports_adam_run_is_never_called_the_unigram_phase(tmp_path):
    # loss 1.7 nats above the unigram entropy and climbing back: partly learned or unlearning, never "unigram"
    losses = [REPORT_LN_V, 9.4, 8.4, 8.3, 8.35, 8.6, 9.0, 9.4]
    events = scripted_run([120, 3, 2, 2, 2, 1, 1, 1], val_losses=losses, ln_vocab=REPORT_LN_V,
                          unigram_entropy=REPORT_H)
    d = diagnosed(tmp_path / "2026-01-01T00-00-00_seed_adam.jsonl", events)
    assert "unigram phase" not in d.disease and d.verdict in (V.PARTLY_LEARNED, V.UNLEARNED, V.STUCK_PARTLY)


def test_learned_but_not_varied_is_repetitive_and_healthy_needs_distinct2_and_repetition():
    learned = [(120, 8.3, 0.9, 0.3), (60, 5.0, 0.02, 0.6), (60, 4.9, 0.02, 0.6), (60, 4.8, 0.02, 0.6)]
    states, _, _ = run(learned)
    assert states[-1] == "repetitive"  # 23% unique, but distinct-2 0.02: every prompt repeats a phrase
    states, alerts, _ = run(learned[:1] + [(60, 5.0, 0.2, 0.6)] * 3)
    assert states[-1] == "healthy"
    healthy = next(a for a in alerts if a.state_to == "healthy")
    assert "distinct-2 0.20 >= 0.06" in healthy.message and "repetition 60% < 90%" in healthy.message


def test_a_running_run_still_at_ln_vocab_is_too_early_to_say_and_an_ended_one_never_learned():
    pts = [EvalPoint(step=s, val_loss=8.3, unique_tokens=100) for s in (0, 10)]
    assert V.verdict(pts, ln_vocab=math.log(4096), unigram_entropy=6.58, ended=False).label == V.TOO_EARLY
    assert V.verdict(pts, ln_vocab=math.log(4096), unigram_entropy=6.58, ended=True).label == V.NEVER_LEARNED
    many = [EvalPoint(step=s, val_loss=8.3, unique_tokens=100) for s in range(0, 120, 10)]
    assert V.verdict(many, ln_vocab=math.log(4096), unigram_entropy=6.58, ended=False).label == V.NEVER_LEARNED


def test_good_news_is_info_and_the_timeline_never_repeats_the_transition():
    states, alerts, _ = run([(120, 8.3, 0.9, 0.3), (10, 6.6, 0.05, 0.8), (60, 5.0, 0.2, 0.6),
                             (60, 4.9, 0.2, 0.6)])
    assert [a.level for a in alerts] == ["info"] * len(alerts)  # start, unigram, healthy: no warning among them
    for a in alerts:
        item = timeline_item(a)
        assert item is not None and item.text.count("→") == 1 and "->" not in item.text, item.text


def test_the_ranking_rules_in_the_docs_are_the_codes():
    from pathlib import Path

    from bitnet_tui.session.analysis.causes import rules_table

    doc = (Path(__file__).parents[2] / "docs" / "diagnosis.md").read_text(encoding="utf-8")
    assert rules_table() in doc


def test_a_loss_still_falling_in_the_band_is_slow_not_stuck():
    # the width-256 AdamW run at 1.5e-3: 17 evals in the unigram band, a new low at almost every one
    falling = [(120, 10.8, 0.9, 0.3)] + [(10, 7.1 - 0.05 * i, 0.1, 0.7) for i in range(16)]
    states, alerts, d = run(falling, ln_v=REPORT_LN_V, h=REPORT_H)
    assert states[-1] == "unigram" and not d.stuck and not any("still" in a.message for a in alerts)
    flat = [(120, 10.8, 0.9, 0.3)] + [(10, 6.9 + 0.01 * (i % 2), 0.1, 0.7) for i in range(16)]
    states, alerts, d = run(flat, ln_v=REPORT_LN_V, h=REPORT_H)
    assert states[-1] == "unigram" and d.stuck and sum("still in the unigram phase" in a.message for a in alerts) == 1
    pts = [EvalPoint(step=100 * i, val_loss=loss, unique_tokens=u, distinct2=d2, repetition=r)
           for i, (u, loss, d2, r) in enumerate(falling)]
    assert V.verdict(pts, ln_vocab=REPORT_LN_V, unigram_entropy=REPORT_H).label == V.UNIGRAM_PHASE
