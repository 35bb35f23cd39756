import math

import pytest

from bitnet_model.train.config import TrainConfig
from bitnet_model.train.schedule import lr_at, stage_at, wd_at

PEAK = 1.5e-3


def two_stage(**kw):
    return TrainConfig(lr=PEAK, steps=1000, warmup_steps=100, **kw)


def test_two_stage_follows_the_faq_figure():
    """FAQ Figure 1c: stage 1 decays toward ~0 and reaches about half the peak at the midpoint; there the LR
    drops onto a schedule with 2/3 of the peak, so stage 2 starts near a third of the peak; ~0 at the end."""
    c = two_stage()
    assert lr_at(0, c) == pytest.approx(PEAK / 100)
    assert lr_at(99, c) == pytest.approx(PEAK)
    half = PEAK * (1 - (1 - c.final_frac) * (499 - 100) / 899)  # the stage-1 line just before the midpoint
    assert lr_at(499, c) == pytest.approx(half) and 0.5 < lr_at(499, c) / PEAK < 0.6
    assert lr_at(500, c) == pytest.approx(half * 2 / 3, rel=0.01) and 0.33 < lr_at(500, c) / PEAK < 0.4
    assert lr_at(999, c) == pytest.approx(PEAK * 2 / 3 * c.final_frac)
    assert (stage_at(499, c), stage_at(500, c)) == (1, 2)
    assert (wd_at(499, c), wd_at(500, c)) == (0.1, 0.0)


def test_two_stage_hold_key_points():
    c = two_stage(schedule="two-stage-hold")
    assert lr_at(0, c) == pytest.approx(PEAK / 100)
    assert lr_at(99, c) == pytest.approx(PEAK)  # warmup ends at the peak
    assert lr_at(100, c) == pytest.approx(PEAK)
    assert lr_at(499, c) == pytest.approx(PEAK * c.stage1_end_frac)  # just before the midpoint
    assert lr_at(500, c) == pytest.approx(PEAK * c.stage2_frac)  # the drop at the midpoint
    assert lr_at(500, c) < lr_at(499, c)
    assert lr_at(999, c) == pytest.approx(PEAK * c.final_frac)  # ~0 at the end
    assert (stage_at(499, c), stage_at(500, c)) == (1, 2)
    assert (wd_at(499, c), wd_at(500, c)) == (0.1, 0.0)


@pytest.mark.parametrize("schedule", ["two-stage", "two-stage-hold"])
def test_decays_are_monotone_within_each_stage(schedule):
    c = two_stage(schedule=schedule)
    s1 = [lr_at(s, c) for s in range(100, 500)]
    s2 = [lr_at(s, c) for s in range(500, 1000)]
    assert all(a >= b for a, b in zip(s1, s1[1:]))
    assert all(a >= b for a, b in zip(s2, s2[1:]))


def test_stage1_only_keeps_decaying_and_weight_decay():
    c = two_stage(schedule="stage1")
    assert lr_at(999, c) == pytest.approx(PEAK * c.final_frac)
    assert lr_at(499, c) - lr_at(500, c) == pytest.approx(lr_at(498, c) - lr_at(499, c))  # no drop at the midpoint
    assert all(wd_at(s, c) == 0.1 and stage_at(s, c) == 1 for s in (0, 500, 999))


def test_constant_and_cosine():
    c = two_stage(schedule="constant")
    assert lr_at(100, c) == lr_at(999, c) == PEAK
    k = two_stage(schedule="cosine")
    assert lr_at(100, k) == pytest.approx(PEAK)
    assert lr_at(999, k) == pytest.approx(PEAK * k.final_frac)
    mid = lr_at(549, k)
    assert mid == pytest.approx(PEAK * (k.final_frac + (1 - k.final_frac) * 0.5 * (1 + math.cos(math.pi * 449 / 899))))
