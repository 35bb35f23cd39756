"""The report's collapse, reproduced small: Adam with coupled L2 decay unlearns, AdamW learns (issue: diagnosis)."""

from __future__ import annotations

import pytest

from bitnet_model.train.config import DataConfig, DiagConfig, ModelConfig, RunConfig, TrainConfig
from bitnet_model.train.trainer import Trainer
from bitnet_tui.instrument.for_trainer import monitor_for
from bitnet_tui.session.analysis.diagnose import diagnose
from bitnet_tui.session.analysis.fold import RunFold
from bitnet_tui.session.analysis.summary import summarize
from bitnet_tui.session.log.paths import checkpoint_dir, list_checkpoints
from bitnet_tui.session.log.reader import read_session

pytestmark = pytest.mark.slow


def contrast_config(cache_dir: str, optimizer: str) -> RunConfig:
    """Width 64, vocabulary 1,024, batch 4 x 32: the report's conditions (decay on every parameter, weight
    decay 0.1) at a high LR, small enough to show the contrast in seconds."""
    return RunConfig(
        model=ModelConfig(hidden=64, layers=1, heads=2, vocab_size=1024, context=32),
        train=TrainConfig(lr=5e-3, steps=200, batch_size=4, optimizer=optimizer, decay_all=True, weight_decay=0.1,
                          warmup_steps=10, schedule="constant"),
        diag=DiagConfig(eval_every=25, eval_prompts=4, prompt_tokens=4, gen_tokens=16, eval_batches=2,
                        report_metric=False),
        data=DataConfig(cache_dir=cache_dir),
    )


def train(cache_dir: str, optimizer: str):
    tr = Trainer(contrast_config(cache_dir, optimizer))
    mon = monitor_for(tr, None)
    end = tr.run()
    assert end.reason == "finished"
    data = read_session(mon.session_path)
    fold = RunFold()
    fold.apply(data.header)
    fold.apply_all(data.events)
    steps = [s for s, _ in list_checkpoints(checkpoint_dir(mon.session_path))]
    return fold, diagnose(summarize(data, fold), fold, steps)


def test_adam_with_coupled_l2_unlearns_and_adamw_does_not(cache_dir):
    adam, adam_dx = train(cache_dir, "adam")
    adamw, adamw_dx = train(cache_dir, "adamw")

    def troubles(fold):
        return {s for _, s in fold.transitions if s == "unlearning"} | {i.code for i in fold.timeline
                                                                           if i.code == "decay"}

    assert troubles(adam), [(i.step, i.text) for i in adam.timeline]
    assert not troubles(adamw), [(i.step, i.text) for i in adamw.timeline]
    # the ternary scales shrink under coupled L2 and grow under AdamW
    assert adam.scales[-1][1] < adam.scales[0][1] / 2 < adamw.scales[-1][1]
    # the audit warned at the start, and diagnose names the optimizer first, with a command that fixes it
    assert any(a.get("code") == "coupled-l2" for a in adam.header.audit)
    assert adam_dx.causes[0].title.startswith("the optimizer: Adam with coupled L2")
    assert any("--optimizer adamw" in cmd for _, cmd in adam_dx.tries)
    assert not adamw_dx.causes or not adamw_dx.causes[0].title.startswith("the optimizer")
