"""diagnose's words follow its figures: a measured scale fall outranks "the run is short", and the run's own
decay threshold (from its header) decides, never a hard-coded 4."""

from __future__ import annotations

import dataclasses
import math

from bitnet_tui.session.log.events import WeightsSnapshot
from tests.analysis.test_diagnose import ARGV, AUDIT, diagnosed
from tests.fixtures.scripted import scripted_run


def short_adam_run(tmp_path, fall: float, decay_factor: float | None = None):
    """300 steps, held-out loss between the unigram entropy and ln V, the mean ternary scale falling ``fall``x."""
    ln_v = math.log(4096)
    events = scripted_run([3, 3, 3, 3], val_losses=[ln_v, 7.4, 7.3, 7.35], ln_vocab=ln_v, unigram_entropy=6.5)
    snaps = [i for i, e in enumerate(events) if isinstance(e, WeightsSnapshot)]
    for n, i in enumerate(snaps):
        s = 0.02 / (1 + (fall - 1) * n / (len(snaps) - 1))
        events[i] = dataclasses.replace(events[i], layers=tuple(dataclasses.replace(lw, scale=s)
                                                                for lw in events[i].layers))
    cfg = dict(events[0].config)
    if decay_factor is not None:
        cfg["diag"] = {**cfg.get("diag", {}), "detector": {**cfg.get("diag", {}).get("detector", {}),
                                                           "decay_factor": decay_factor}}
    events[0] = dataclasses.replace(events[0], argv=ARGV, audit=AUDIT, config=cfg)
    return diagnosed(tmp_path / "2026-01-01T00-00-00_h256_lr1.5e-3_adam.jsonl", events)


def test_a_short_adam_run_with_a_6x_scale_fall_ranks_the_optimizer_first_and_never_ended_well(tmp_path):
    d = short_adam_run(tmp_path, fall=6.0)
    assert d.trouble and not d.ended_well
    assert d.causes[0].title.startswith("the optimizer: Adam with coupled L2")
    titles = [c.title for c in d.causes]
    if "the run is short" in titles:
        assert titles.index("the run is short") > titles.index("the optimizer: Adam with coupled L2 weight decay")


def test_the_decay_threshold_is_the_runs_own(tmp_path):
    assert short_adam_run(tmp_path, fall=6.0, decay_factor=8.0).trouble is False  # 6x < 8x: not past it
    (tmp_path / "b").mkdir()
    assert short_adam_run(tmp_path / "b", fall=6.0, decay_factor=4.0).trouble is True


def test_a_fix_applied_live_is_named_with_what_followed_and_not_offered_again(tmp_path):
    """The seed report's fifth run: decouple at the decay alert, the loss falls back: diagnose says the cause was
    fixed live at that step, quotes the loss and scale then and now, and offers no restart with the same fix."""
    from bitnet_tui.session.log.events import Intervention

    ln_v = math.log(50257)
    losses = [ln_v, 9.0, 7.9, 8.2, 7.0, 6.8, 6.7, 6.6]
    events = scripted_run([198, 2, 2, 1, 3, 5, 8, 12], val_losses=losses, ln_vocab=ln_v, unigram_entropy=6.59)
    at = next(i for i, e in enumerate(events) if e.kind == "eval" and e.step == 300)
    events.insert(at + 1, Intervention(step=300, time=events[at].time, action="decouple",
                                       old="all parameters: wd 0.1, coupled L2",
                                       new="all parameters: wd 0.1, decoupled", source="auto"))
    events[0] = dataclasses.replace(events[0], argv=ARGV, audit=AUDIT)
    d = diagnosed(tmp_path / "2026-01-01T00-00-00_h256_lr1.5e-3_adam.jsonl", events)
    cause = next(c for c in d.causes if c.code == "coupled-l2")
    assert cause.fixed.startswith("fixed in the running process at step 300 (decouple, by auto)")
    assert "held-out loss 7.900 then, 6.600 now" in cause.fixed
    assert not any("adamw" in cmd or "decouple" in cmd for _, cmd in d.tries)


def test_no_decline_is_claimed_for_a_run_whose_lowest_loss_is_its_last(tmp_path):
    """The weights decay (scale /6) while the loss is still at its lowest at the last eval: the advice never
    speaks of a checkpoint "from before the decline"."""
    ln_v = math.log(4096)
    events = scripted_run([3, 3, 3, 3], val_losses=[ln_v, 7.4, 7.3, 7.2], ln_vocab=ln_v, unigram_entropy=6.5)
    snaps = [i for i, e in enumerate(events) if isinstance(e, WeightsSnapshot)]
    for n, i in enumerate(snaps):
        s = 0.02 / (1 + 5 * n / (len(snaps) - 1))
        events[i] = dataclasses.replace(events[i], layers=tuple(dataclasses.replace(lw, scale=s)
                                                                for lw in events[i].layers))
    events[0] = dataclasses.replace(events[0], argv=ARGV, audit=AUDIT)
    d = diagnosed(tmp_path / "2026-01-01T00-00-00_h256_lr1.5e-3_adam.jsonl", events, checkpoints=[400])
    assert d.trouble and d.causes[0].code == "coupled-l2"
    assert not any("before the decline" in what for what, _ in d.tries)
    assert any("at its lowest now" in what for what, _ in d.tries)
