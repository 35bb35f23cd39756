"""A non-finite loss never reaches the weights, whatever ``--log-every``: the step is skipped on the device."""

from __future__ import annotations

import math

import torch

from bitnet_model.train.trainer import Trainer
from bitnet_tui.instrument.for_trainer import monitor_for
from bitnet_tui.session.log.events import Alert, StepDone


class NaNAt(torch.nn.Module):
    """The model, with its loss made NaN at one call (a real forward and backward through every weight)."""

    def __init__(self, net: torch.nn.Module, at: int) -> None:
        super().__init__()
        self.net, self.at, self.calls = net, at, 0

    def forward(self, x, y, **kw):
        self.calls += 1
        logits, loss = self.net(x, y, **kw)
        return logits, loss * math.nan if self.calls == self.at else loss


def test_a_nan_loss_at_step_5_with_log_every_10_changes_no_weight(tiny):
    tr = Trainer(tiny(steps=10, log_every=10), on_nonfinite="stop")
    mon = monitor_for(tr, None)
    events: list = []
    mon.subscribe(events.append)
    tr.net = NaNAt(tr.net, at=5)
    after: list[list[torch.Tensor]] = []
    tr.optimizer.register_step_post_hook(
        lambda opt, *_: after.append([p.detach().clone() for p in tr.model.parameters()]))
    end = tr.run()
    steps = [e for e in events if isinstance(e, StepDone)]
    assert [e.step for e in steps] == list(range(1, 11))
    assert math.isnan(steps[4].loss) and all(math.isfinite(e.loss) for e in steps[5:])
    assert end.reason == "nonfinite"
    assert len(after) == 10
    assert all(torch.isfinite(p).all() for p in after[-1])  # the weights after step 10 are finite
    assert all(torch.equal(a, b) for a, b in zip(after[3], after[4]))  # step 5 applied no update
    assert not all(torch.equal(a, b) for a, b in zip(after[4], after[5]))  # step 6 did
    state = tr.optimizer.state[next(tr.model.parameters())]
    assert int(state["step"]) == 9  # the skipped step did not count in Adam's bias correction
    assert all(torch.isfinite(v).all() for v in state.values())
    alert = next(e for e in events if isinstance(e, Alert) and e.code == "nonfinite")
    assert alert.step == 5
    assert "update was skipped" in alert.message and alert.data["skipped"] is True


def test_a_loop_that_steps_anyway_is_told_to_go_back_not_to_resume(tiny):
    import torch.nn.functional as F

    from bitnet_model.nn.model import BitNetLM
    from bitnet_tui.instrument.config import MonitorConfig
    from bitnet_tui.instrument.monitor import Monitor

    torch.manual_seed(0)
    model = BitNetLM(tiny().model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 300, (2, 16))
    events: list = []
    with Monitor(model, opt, sessions_dir=None, eval_every=1000,
                 options=MonitorConfig(control=False, on_nonfinite="stop", vocab_size=300)) as mon:
        mon.subscribe(events.append)
        for i in range(3):
            logits, _ = model(x)
            loss = F.cross_entropy(logits.flatten(0, 1), x.flatten()) * (math.nan if i == 1 else 1.0)
            loss.backward()
            opt.step()
            opt.zero_grad()
            mon.step(loss)
            if mon.should_stop:
                break
    alert = next(e for e in events if isinstance(e, Alert) and e.code == "nonfinite")
    assert "may have written it into the weights" in alert.message and alert.data["skipped"] is False
