"""Diagnosis in a user's own loop: the same truth for a foreign model, ternary class and optimizer as for ours.
The seed report's optimizer (Adam, coupled L2 on every parameter) decays the user's ternary layers and
``diagnose`` says so with the optimizer first, in the user's terms; AdamW with decay on 2-D weights does not."""

from __future__ import annotations

import pytest

from bitnet_tui.app.cli.diagnose import diagnose_path
from bitnet_tui.session.log.reader import read_session
from tests.integrations.user_loop import train

pytestmark = pytest.mark.slow


def test_adam_with_coupled_l2_in_a_users_loop_is_named_with_the_optimizer_first(tmp_path, cache_dir):
    seen: dict = {}

    def midway(mon):
        if mon.step_count == 200:  # another shell runs diagnose while the run goes on
            seen["live"] = diagnose_path(mon.session_path)[0]

    log = train(tmp_path / "s", "adam", cache=cache_dir, control=True, on_step=midway)
    data = read_session(log)
    assert not any(e.kind == "alert" and e.code == "no-layers" for e in data.events)  # TernaryDense was found
    assert any(e.kind == "alert" and e.code == "decay" for e in data.events)
    live = seen["live"]
    assert live.running and live.step == 200 and not live.ended_well
    assert live.causes[0].code == "coupled-l2" and live.causes[0].tier == 1
    assert live.tries[0][1].split()[:3] == ["bitnet-tui", "ctl", log.name.removesuffix(".jsonl")]
    assert live.tries[0][1].endswith("decouple")  # the live fix first ...
    assert any(c.startswith("torch.optim.AdamW(") for _, c in live.tries)  # ... then the change in their code
    d, _ = diagnose_path(log)
    assert not d.running and not d.ended_well and d.trouble
    assert d.causes[0].code == "coupled-l2" and "weights decaying" in d.headline()
    assert "unigram phase" not in d.disease
    for _, change in d.tries:
        assert "--" not in change and "bitnet-tui run" not in change  # never our run flags in their loop


def test_adamw_with_decay_on_2d_weights_in_a_users_loop_raises_no_decay(tmp_path, cache_dir):
    log = train(tmp_path / "s", "adamw", cache=cache_dir)
    data = read_session(log)
    assert not any(e.kind == "alert" and e.code in ("decay", "no-layers") for e in data.events)
    d, _ = diagnose_path(log)
    assert not d.trouble and all(c.code != "coupled-l2" for c in d.causes) and d.decayed is None


def test_what_a_users_run_lacks_is_named_with_what_it_would_need(tmp_path, cache_dir):
    from typer.testing import CliRunner

    from bitnet_tui.app.cli.main import app

    log = train(tmp_path / "s", "adamw", cache=cache_dir, steps=40)
    d, _ = diagnose_path(log)
    figures = dict(d.figures)
    assert "estimated from the held-out batches" in figures["ln(vocab) / unigram entropy"]
    assert "MonitorConfig(unigram=" in figures["ln(vocab) / unigram entropy"]
    out = CliRunner().invoke(app, ["diagnose", str(log)]).stdout
    assert "run_ended: finished at step 40" in out.splitlines()[0] + out.splitlines()[1]


def test_a_users_flat_config_is_read_where_our_nested_one_is(tmp_path, cache_dir):
    from typer.testing import CliRunner

    from bitnet_tui.app.cli.main import app
    from bitnet_tui.session.analysis.summary import read_summary

    log = train(tmp_path / "s", "adamw", cache=cache_dir, steps=20)  # config={"lr": 1.5e-3, "optimizer": "adamw"}
    s = read_summary(log)
    assert s.key_config["lr"] == 1.5e-3 and s.key_config["optimizer"] == "adamw"
    wide = CliRunner().invoke(app, ["sessions", "--wide", "--sessions-dir", str(tmp_path / "s")]).stdout
    assert "1.5e-3" in wide and "adamw" in wide


def test_a_ternary_layer_gone_entirely_to_zero_is_an_alert_and_in_diagnose(tmp_path, cache_dir):
    """A layer whose latent weights sit below the quantiser's clamp floor rounds every weight to 0: the Monitor
    says so at the snapshot (not only summary), and diagnose lists it with its cause."""
    import torch

    from tests.integrations import user_loop

    real = user_loop.UserGPT.__init__

    def shrunk(self, *a, **kw):
        real(self, *a, **kw)
        with torch.no_grad():
            self.fc2.weight.mul_(1e-6)  # far below the absmean floor of 1e-5: every ternary value 0
        self.fc2.weight.requires_grad_(False)  # and it stays there

    user_loop.UserGPT.__init__ = shrunk
    try:
        log = train(tmp_path / "s", "adamw", cache=cache_dir, steps=20)
    finally:
        user_loop.UserGPT.__init__ = real
    alerts = [e for e in read_session(log).events if e.kind == "alert" and e.code == "dead-layers"]
    assert len(alerts) == 1 and alerts[0].step == 0 and "fc2" in alerts[0].message
    d, _ = diagnose_path(log)
    assert "fc2" in dict(d.figures).get("ternary layers entirely zero", "")
