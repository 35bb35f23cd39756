"""How each way out of a loop reads in ``run_ended``: one rule for ``with Monitor``, the trainer, Lightning and
a process that exits with the Monitor open."""

from __future__ import annotations

from bitnet_tui.instrument.dist import RankFailed
from bitnet_tui.instrument.ending import ending_for


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as e:  # noqa: BLE001 - the point is to hold it with its traceback
        return e


def test_a_finished_or_stopped_loop_and_ctrl_c_end_with_a_checkpoint_and_no_error():
    assert (ending_for(None).reason, ending_for(None).final_checkpoint) == ("finished", True)
    assert ending_for(None, stop_reason="stopped").reason == "stopped"
    ctrl_c = ending_for(_raised(KeyboardInterrupt()))
    assert (ctrl_c.reason, ctrl_c.error, ctrl_c.final_checkpoint, ctrl_c.crash) == ("interrupted", "", True, "")


def test_a_crash_is_an_error_with_its_traceback_in_the_alert_and_no_checkpoint():
    e = ending_for(_raised(ValueError("loss went sideways")))
    assert (e.reason, e.error, e.final_checkpoint) == ("error", "ValueError: loss went sideways", False)
    assert e.crash.startswith("training crashed: ValueError: loss went sideways\n")
    assert "Traceback (most recent call last)" in e.crash and "_raised" in e.crash


def test_a_peer_that_stopped_answering_is_a_rank_failure_only_under_torch_distributed():
    gone = _raised(RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:1234"))
    e = ending_for(gone, distributed=True)
    assert e.reason == "rank_failed" and e.error.startswith("a rank stopped responding (RuntimeError: ")
    assert not e.crash and not e.final_checkpoint
    assert ending_for(gone).reason == "error"  # one process: a gloo message is just an error
    assert ending_for(_raised(RankFailed("rank 1 is gone"))).error == "rank 1 is gone"
