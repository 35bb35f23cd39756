"""What an alert in a user's loop says about the held-out loss: the eval's own figure under its own label, the
window's median (what states are judged by) labelled as such."""

from __future__ import annotations

from tests.integrations.helpers import by_kind
from tests.integrations.test_unigram import _run


def test_a_state_change_quotes_its_evals_own_loss_and_labels_the_median(tmp_path, cache_dir):
    _, path = _run(tmp_path, cache_dir, feed=True, steps=40)
    ev = by_kind(path)
    own = {e.step: e.val_loss for e in ev["eval"]}
    changes = [a for a in ev["alert"] if a.code == "detector" and a.step > 0]
    assert changes, "the loop's loss fell far enough for a state change"
    for a in changes:
        assert a.val_loss == own[a.step]
        assert f"held-out loss {own[a.step]:.3f} (median of the last 3 evals " in a.message
        median = sorted(own[s] for s in own if a.step - 20 <= s <= a.step)[1]
        assert f"median of the last 3 evals {median:.3f}" in a.message
        assert a.data["loss_median"] == median
