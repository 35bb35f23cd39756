"""Session logs: writing, reading, following, naming."""

from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path

import pytest

from bitnet_tui.session.log import writer as session_mod
from bitnet_tui.session.log.errors import SessionError, SessionWriteError
from bitnet_tui.session.log.events import (
    Alert,
    CheckpointSaved,
    EvalDone,
    Intervention,
    LayerWeights,
    RunEnded,
    StepDone,
    WeightsSnapshot,
)
from bitnet_tui.session.log.follow import Follower
from bitnet_tui.session.log.reader import decode_event, read_session
from bitnet_tui.session.log.schema import event_from_dict
from bitnet_tui.session.log.writer import SessionWriter, session_status
from tests.fixtures.scripted import scripted_run


def every_kind() -> list:
    """One event of each kind, with non-finite floats where the schema allows them."""
    head = scripted_run([20], eval_every=1, end=None)[0]
    return [
        head,
        StepDone(step=1, time=1.5, loss=math.nan, lr=1e-3, weight_decay=0.1, grad_norm=math.inf,
                 tokens_per_s=900.0, stage=1, extra={"acc": 0.5, "nan": math.nan}),
        EvalDone(step=1, time=2.0, val_loss=math.inf, unique_tokens=3, generated_tokens=256, distinct2=0.1,
                 top_share=0.5, top_tokens=(("the", 9), ("é\n", 2)), entropy=None, repetition=0.25,
                 samples=("the the\n", "\x1b[31mred\u2028"), prompts=("a",), state="collapsed"),
        WeightsSnapshot(step=1, time=2.1, layers=(LayerWeights("blocks.0.q", 0.3, 0.4, 0.3, 0.02, math.nan, 0.05),)),
        Alert(step=1, time=2.2, level="warning", code="detector", message="3 unique", state_from="collapsing",
              state_to="collapsed", unique_tokens=3, val_loss=math.nan, top_tokens=(("the", 9),), sample="x",
              data={"share": 0.01, "thresholds": "t"}),
        Intervention(step=1, time=2.3, action="set_lr", old=1e-3, new=5e-4, source="dashboard"),
        Intervention(step=1, time=2.3, action="pause", old="running", new="paused", source="cli"),
        CheckpointSaved(step=1, time=2.4, path="x.ckpt/step1.pt"),
        RunEnded(step=1, time=2.5, reason="error", error="boom"),
    ]


def write(path: Path, events) -> Path:
    with SessionWriter(path) as w:
        for e in events:
            w(e)
    return path


def _strict(c: str):
    raise AssertionError(f"bare {c} in the log")


def same(a, b) -> bool:
    """Equality where NaN equals NaN."""
    return json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)


# --------------------------------------------------------------------------- writer

def test_round_trip_every_kind(tmp_path):
    events = every_kind()
    p = write(tmp_path / "s.jsonl", events)
    lines = p.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == len(events) + 1
    for line, ev in zip(lines, events, strict=False):
        d = json.loads(line.decode("utf-8"), parse_constant=_strict)
        assert d["kind"] == ev.kind
    data = read_session(p)
    assert same(data.header, events[0])
    assert len(data.events) == len(events) - 1
    assert all(same(a, b) for a, b in zip(data.events, events[1:], strict=True))
    assert data.ended and data.end_reason == "error" and data.status == "finished"
    assert data.malformed == 0 and not data.truncated_last_line and data.warnings == []


def test_step_fast_path_equals_checked_path():
    raw = b'{"kind":"step","step":3,"time":1,"loss":2.5,"lr":0.001,"weight_decay":0.1,"grad_norm":1,' \
          b'"tokens_per_s":10.0,"stage":2}'
    fast = decode_event(raw)
    checked = event_from_dict(json.loads(raw))
    assert fast == checked and type(fast) is StepDone and isinstance(fast.time, float)
    with pytest.raises(ValueError):
        decode_event(raw.replace(b'"step":3', b'"step":true'))
    with pytest.raises(ValueError):
        decode_event(raw.replace(b'"loss":2.5', b'"loss":NaN'))


def test_append_only(tmp_path):
    p = tmp_path / "s.jsonl"
    w = SessionWriter(p)
    with pytest.raises(FileExistsError, match="being written by another run"):
        SessionWriter(p)
    w(every_kind()[0])
    w.close()
    before = p.read_bytes()
    with pytest.raises(FileExistsError, match="already holds a session"):
        SessionWriter(p)
    assert p.read_bytes() == before


def test_writer_needs_header_first(tmp_path):
    with SessionWriter(tmp_path / "s.jsonl") as w, pytest.raises(ValueError, match="run_started"):
        w(every_kind()[1])


def test_fsync_on_the_right_kinds(tmp_path, monkeypatch):
    synced: list[int] = []
    real = os.fsync
    w = SessionWriter(tmp_path / "s.jsonl")
    monkeypatch.setattr(session_mod.os, "fsync", lambda fd: synced.append(fd) or real(fd))
    kinds = []
    for ev in every_kind():
        before = len(synced)
        w(ev)
        if len(synced) > before:
            kinds.append(ev.kind)
    assert kinds == ["run_started", "alert", "intervention", "intervention", "checkpoint", "run_ended"]
    w.close()


def test_write_error_keeps_backlog_and_recovers(tmp_path, monkeypatch):
    p = tmp_path / "s.jsonl"
    events = every_kind()
    w = SessionWriter(p)
    w(events[0])
    real_write = os.write
    state = {"full": True, "partial": True}

    def flaky(fd, data):
        if state["partial"]:  # half a line gets out, then the disk is full
            state["partial"] = False
            return real_write(fd, bytes(data[:10]))
        if state["full"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(session_mod.os, "write", flaky)
    seen = []
    w.on_error = seen.append
    with pytest.raises(SessionWriteError, match="No space left"):
        w(events[1])
    with pytest.raises(SessionWriteError):
        w(events[2])
    assert w.error is not None and w.pending_bytes > 0 and len(seen) == 1
    assert not w.retry()
    state["full"] = False
    assert w.retry() and w.error is None and w.pending_bytes == 0
    for ev in events[3:]:
        w(ev)
    w.close()
    data = read_session(p)
    assert [e.kind for e in data.events] == [e.kind for e in events[1:]] and data.malformed == 0


def test_close_reports_unwritten(tmp_path, monkeypatch):
    w = SessionWriter(tmp_path / "s.jsonl")
    w(every_kind()[0])

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(session_mod.os, "write", full)
    with pytest.raises(SessionWriteError):
        w(every_kind()[1])
    with pytest.raises(SessionWriteError, match="incomplete"):
        w.close()


# --------------------------------------------------------------------------- reader

def good_log(tmp_path: Path, name="s.jsonl", end="finished") -> Path:
    return write(tmp_path / name, scripted_run([20, 10, 4], eval_every=5, end=end))


def test_truncated_last_line(tmp_path):
    p = good_log(tmp_path, end=None)
    with open(p, "ab") as f:
        f.write(b'{"kind":"step","step":16,"ti')
    data = read_session(p)
    assert data.truncated_last_line and data.malformed == 0
    assert data.status == "crashed" and not data.ended
    assert any("last line is incomplete" in w for w in data.warnings)
    assert data.events[-1].kind == "alert" or data.events[-1].step == 15


def test_garbage_line_in_the_middle(tmp_path):
    p = good_log(tmp_path)
    lines = p.read_bytes().split(b"\n")
    lines.insert(3, b"\x00\xff not json")
    lines.insert(5, b'{"kind":"step","step":"x"}')
    lines.insert(7, b"   ")
    p.write_bytes(b"\n".join(lines))
    data = read_session(p)
    assert data.malformed == 2 and data.ended and not data.truncated_last_line
    assert "2 malformed lines skipped (line 4:" in data.warnings[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n\n  \n", "is empty"),
        (b"hello world\n", "is not a bitnet-tui session (its first line is not JSON)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "is not a bitnet-tui session (its first line is not JSON)"),
        (b'{"name": "package.json"}\n', "is not a bitnet-tui session (its first line is not a run_started event)"),
        (b"[1, 2, 3]\n", "is not a bitnet-tui session (its first line is not a run_started event)"),
        (b'{"kind":"step","step":1}\n', "is not a bitnet-tui session (its first line is not a run_started event)"),
        (b'{"kind":"run_started","schema":3,"step":0}\n',
         "was written by schema version 3; this bitnet-tui reads versions 1, 2"),
        (b'{"kind":"run_started","schema":1,"step":0}\n', "has a damaged header (run_started event is missing"),
        (b'{"kind":"run_started","schema":1,"st', "has an incomplete header"),
    ],
)
def test_not_a_session(tmp_path, content, message):
    p = tmp_path / "x.jsonl"
    p.write_bytes(content)
    with pytest.raises(SessionError) as e:
        read_session(p)
    assert str(e.value) == f"{p} {message}" or str(e.value).startswith(f"{p} {message}")
    assert "\n" not in str(e.value)


def test_directory_and_missing(tmp_path):
    with pytest.raises(SessionError, match=r"is a directory$"):
        read_session(tmp_path)
    with pytest.raises(SessionError, match=r"nope\.jsonl does not exist$"):
        read_session(tmp_path / "nope.jsonl")


def test_huge_line_is_skipped_not_loaded(tmp_path):
    p = good_log(tmp_path)
    lines = p.read_bytes().split(b"\n")
    lines.insert(2, b'{"kind":"eval","samples":["' + b"a" * (10 << 20) + b'"]}')
    p.write_bytes(b"\n".join(lines))
    data = read_session(p)
    assert data.malformed == 1 and data.ended
    assert "line 3 is over 1048576 bytes" in data.warnings[0]
    f = Follower(p, max_line=1 << 16, max_read=1 << 20)
    got = []
    for _ in range(30):
        got += f.poll()
    assert f.malformed == 1 and f.ended and len(got) == len(data.stream())


def test_skip_kinds_keeps_last(tmp_path):
    p = good_log(tmp_path)
    full = read_session(p)
    quick = read_session(p, skip=("step", "weights"))
    assert quick.skipped == {"step": 15, "weights": 3}
    assert quick.last_skipped["step"] == [e for e in full.events if e.kind == "step"][-1]
    assert [e.kind for e in quick.events] == [e.kind for e in full.events if e.kind not in ("step", "weights")]


def test_running_status(tmp_path):
    p = tmp_path / "live.jsonl"
    w = SessionWriter(p)
    w(every_kind()[0])
    assert read_session(p).status == "running"
    w.close()
    assert read_session(p).status == "crashed"
    assert session_status(False, None, mtime=100.0, now=130.0) == "running"
    assert session_status(False, None, mtime=100.0, now=1000.0) == "crashed"
    assert session_status(True, True, mtime=0.0) == "finished"


def test_reads_a_10k_step_log_whole(tmp_path):
    events = scripted_run([20] * 100, eval_every=100)  # 10k steps; the 100k figure is in bench/
    p = write(tmp_path / "big.jsonl", events)
    data = read_session(p)
    assert len(data.events) == len(events) - 1


# --------------------------------------------------------------------------- follower

def test_follower_sees_lines_only_when_complete(tmp_path):
    p = tmp_path / "f.jsonl"
    f = Follower(p)
    assert f.poll() == [] and f.header is None
    events = every_kind()
    lines = [json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in events]
    with open(p, "wb") as out:
        assert f.poll() == []
        head = lines[0].encode()
        out.write(head[:20])
        out.flush()
        assert f.poll() == [] and f.header is None
        out.write(head[20:] + lines[1].encode()[:15])
        out.flush()
        got = f.poll()
        assert [e.kind for e in got] == ["run_started"]
        out.write(lines[1].encode()[15:])
        out.flush()
        got = f.poll()
        assert len(got) == 1 and same(got[0], events[1])
        assert f.poll() == []
        for line in lines[2:]:
            out.write(line.encode())
        out.flush()
    got = f.poll()
    assert [e.kind for e in got] == [e.kind for e in events[2:]] and f.ended


def test_follower_refuses_non_session(tmp_path):
    p = tmp_path / "f.jsonl"
    p.write_text("not a log\n")
    with pytest.raises(SessionError, match="is not a bitnet-tui session"):
        Follower(p).poll()
