"""Issue 13, item 10: ``--keep-checkpoints K`` keeps the newest K periodic checkpoints, plus every checkpoint a
person asked for (``c``, ``ctl checkpoint``) and the final one."""

from __future__ import annotations

import pytest

from bitnet_tui.app.runs.build import prepare_run
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.log.events import CheckpointSaved, StepDone
from bitnet_tui.session.log.paths import checkpoint_dir, list_checkpoints
from bitnet_tui.session.log.reader import read_session


def _run(tmp_path, tiny, keep: int, asked_at: tuple[int, ...] = (5,), steps: int = 14):
    live = prepare_run({}, sessions=str(tmp_path / "s"), base=tiny(steps=steps), checkpoint_every=2,
                       keep_checkpoints=keep)

    def ask(ev):
        if isinstance(ev, StepDone) and ev.step in asked_at:
            live.send(C.CheckpointNow(source="test"))

    live.subscribe(ask)
    end = live.run()
    assert end.reason == "finished"
    kept = [s for s, _ in list_checkpoints(checkpoint_dir(live.session_path))]
    saved = [e for e in read_session(live.session_path).events if isinstance(e, CheckpointSaved)]
    return kept, saved


@pytest.mark.parametrize("keep,periodic", [(2, [10, 12]), (1, [12]), (3, [8, 10, 12])])
def test_the_newest_k_periodic_checkpoints_the_asked_for_ones_and_the_final_one_are_kept(tmp_path, tiny, keep,
                                                                                          periodic):
    kept, saved = _run(tmp_path, tiny, keep)
    assert kept == sorted([*periodic, 5, 14]), kept
    pinned = {e.step for e in saved if e.pinned}
    assert pinned == {5, 14}
    removed = [r for e in saved for r in e.removed]
    assert len(removed) == len({2, 4, 6, 8, 10, 12} - set(periodic))  # each pruned once, and said so in the log


def test_keep_0_keeps_every_checkpoint(tmp_path, tiny):
    kept, saved = _run(tmp_path, tiny, 0, asked_at=())
    assert kept == [2, 4, 6, 8, 10, 12, 14]
    assert not any(e.removed for e in saved)
