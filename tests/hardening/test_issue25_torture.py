"""Issue 25's acceptance: a plain PyTorch loop with the Monitor, tortured, with the control socket on and off.

NaN and inf losses, None, a string and a vector for the loss, a ``decode`` that raises, prompts outside the
vocabulary, ``eval_every=0``, a step after close and a step from a forked child. Each case runs in a thread under
a deadline (a hang fails it), nothing raises out of ``mon.step`` but a clear error at the call (TypeError or
ValueError for a loss of the wrong type and for a call after close or from another process, each naming
``Monitor.step``), and every log ends with ``run_ended``. The behaviours one by one, with their messages:
``test_item11_user_loop.py``; this file is the whole matrix at once.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from bitnet_tui.session.control.peer import control_path
from bitnet_tui.session.log.reader import read_session
from tests.hardening.test_item11_user_loop import VOCAB, monitor, train

DEADLINE_S = 30.0


def within_deadline(fn: Callable[[], object]) -> object:
    """``fn()`` in a thread; fails the test if it is still running after :data:`DEADLINE_S` (a hang)."""
    out: list[object] = []
    err: list[BaseException] = []

    def body() -> None:
        try:
            out.append(fn())
        except BaseException as e:  # noqa: BLE001  # re-raised in the test's thread
            err.append(e)

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(DEADLINE_S)
    assert not t.is_alive(), f"hung for {DEADLINE_S:g} s"
    if err:
        raise err[0]
    return out[0]


def ends_with_run_ended(log: Path) -> str:
    """The reason of the log's last line, which must be its run_ended (and the only one)."""
    lines = log.read_bytes().splitlines()
    last = json.loads(lines[-1])
    assert last["kind"] == "run_ended", lines[-1][:200]
    assert sum(b'"kind":"run_ended"' in line or b'"kind": "run_ended"' in line for line in lines) == 1
    return str(last["reason"])


def nonfinite(value: float):
    def case(tmp_path: Path, control: bool) -> tuple[Path, str]:
        model, opt, mon, x = monitor(tmp_path, eval_every=4, options={"control": control})
        with mon:
            train(model, opt, mon, x, 6)  # finite steps first, then the bad one
            mon.step(torch.tensor(value))
            assert mon.should_stop  # the loop is told to stop; the call itself returned
        return mon.session_path, "nonfinite"
    return case


def wrong_loss(bad: object, err: type[Exception]):
    def case(tmp_path: Path, control: bool) -> tuple[Path, str]:
        model, opt, mon, x = monitor(tmp_path, eval_every=4, options={"control": control})
        with mon:
            train(model, opt, mon, x, 2)
            with pytest.raises(err, match=r"Monitor\.step"):
                mon.step(bad)
            train(model, opt, mon, x, 2)  # the loop goes on after the refused call
            assert mon.step_count == 4
        return mon.session_path, "finished"
    return case


def failing_eval(kind: str):
    def case(tmp_path: Path, control: bool) -> tuple[Path, str]:
        def bad_decode(ids):
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "their tokenizer")

        kw = {"decode": bad_decode} if kind == "decode" else {"prompts": [[1, 2, VOCAB + 50], [-3, 0, 1]]}
        model, opt, mon, x = monitor(tmp_path, eval_every=2, options={"control": control}, **kw)
        with mon:
            assert train(model, opt, mon, x, 4) == 4
        codes = [e.code for e in read_session(mon.session_path).events if e.kind == "alert"]
        assert "measure-failed" in codes
        return mon.session_path, "finished"
    return case


def refused_at_construction(why: str, **kw: object):
    def case(tmp_path: Path, control: bool) -> tuple[Path | None, str]:
        with pytest.raises(ValueError, match=why):
            monitor(tmp_path, options={"control": control}, **kw)
        assert list(tmp_path.iterdir()) == []  # refused before any log or socket was made
        return None, ""
    return case


def step_after_close(tmp_path: Path, control: bool) -> tuple[Path, str]:
    model, opt, mon, x = monitor(tmp_path, eval_every=4, options={"control": control})
    with mon:
        train(model, opt, mon, x, 2)
    size = mon.session_path.stat().st_size
    with pytest.raises(ValueError, match=r"Monitor\.step.*after close"):
        mon.step(1.0)
    mon.close()  # a second close is a no-op
    assert mon.session_path.stat().st_size == size and not control_path(mon.session_path).exists()
    return mon.session_path, "finished"


def forked_child(tmp_path: Path, control: bool) -> tuple[Path, str]:
    model, opt, mon, x = monitor(tmp_path, eval_every=4, options={"control": control})
    with mon:
        train(model, opt, mon, x, 1)
        pid = os.fork()
        if pid == 0:  # the child: a refused step, then an exit that must not end its parent's log
            code = 3
            try:
                mon.step(2.0)
            except ValueError as e:
                code = 0 if "forked child" in str(e) else 4
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        train(model, opt, mon, x, 1)
        assert mon.step_count == 2
    return mon.session_path, "finished"


CASES: dict[str, Callable[[Path, bool], tuple[Path | None, str]]] = {
    "nan": nonfinite(math.nan), "inf": nonfinite(math.inf),
    "None": wrong_loss(None, TypeError), "str": wrong_loss("1.5", TypeError), "bool": wrong_loss(True, TypeError),
    "vector": wrong_loss(torch.ones(4), ValueError),
    "raising decode": failing_eval("decode"), "out-of-vocab prompts": failing_eval("prompts"),
    "eval_every=0": refused_at_construction("eval_every must be a whole number >= 1", eval_every=0),
    "ragged prompts": refused_at_construction(r"Monitor\(prompts=\.\.\.\): the prompts must be lists of whole token "
                                              "ids, all of one length", prompts=[[1, 2, 3], [4]]),
    "step after close": step_after_close,
}
if hasattr(os, "fork"):
    CASES["forked child"] = forked_child


@pytest.mark.timeout(60)
@pytest.mark.parametrize("control", [False, True], ids=["no control", "control"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_tortured_user_loop_never_hangs_or_raises_and_ends_its_log(tmp_path, case, control):
    log, reason = within_deadline(lambda: CASES[case](tmp_path, control))  # type: ignore[misc]
    if log is None:
        return
    assert ends_with_run_ended(log) == reason
    assert not control_path(log).exists()  # the socket went with the run
