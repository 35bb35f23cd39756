"""Hostile input: logs full of terminal escapes and junk, malicious checkpoints, bad command-line values."""

from __future__ import annotations

import json
import pickle
import tracemalloc
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from bitnet_model.train.checkpoint import CheckpointError, load_checkpoint
from bitnet_tui.app.cli.main import app
from bitnet_tui.session.log.follow import Follower
from bitnet_tui.session.log.paths import checkpoint_dir
from bitnet_tui.session.log.reader import read_session
from bitnet_tui.session.log.writer import SessionWriter
from tests.fixtures.scripted import scripted_run

runner = CliRunner()
EVIL = "\x1b[2J\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07[blink]blink[/blink][link=http://x]click[/link]\x9b31m"
TINY = ["--hidden", "32", "--layers", "1", "--heads", "2", "--vocab-size", "300", "--context", "16",
        "--batch-size", "4", "--eval-every", "20", "--steps", "5"]


def hostile_log(path: Path, *, big: int = 10 << 20) -> Path:
    """A log with a valid header, then everything a reader must survive."""
    events = scripted_run([20, 10, 3], states=["healthy", "collapsing", "collapsed"], eval_every=4)
    header = events[0].to_dict()
    header["run_name"] = EVIL
    header["argv"] = [EVIL]
    header["config"]["data"]["name"] = EVIL
    lines = [json.dumps(header)]
    for e in events[1:-1]:
        d = e.to_dict()
        if d["kind"] == "alert":
            d["message"] = EVIL
            d["sample"] = EVIL
        if d["kind"] == "eval":
            d["samples"] = [EVIL] * len(d["samples"])
            d["top_tokens"] = [[EVIL, 3]]
        lines.append(json.dumps(d))
    lines += [
        '{"kind":"step","step":99,"time":1.0,"loss":"abc","lr":1e-3,"weight_decay":0,"grad_norm":1,'
        '"tokens_per_s":1,"stage":1}',
        '{"kind":"eval","step":12,"time":1.0,"val_loss":1e308,"unique_tokens":' + "9" * 400 + ','
        '"generated_tokens":-5,"distinct2":-1,"top_share":2,"top_tokens":[],"entropy":1,"samples":[]}',
        '{"kind":"step","step":-7,"time":-1e300,"loss":1,"lr":1e-3,"weight_decay":0,"grad_norm":1,'
        '"tokens_per_s":-1,"stage":99999999999999999999}',
        "[" * 100_000,
        '{"kind":"alert","step":12,"time":1.0,"level":"' + EVIL + '","code":"x","message":"' + "y" * (big // 2) + '"}',
        "z" * big,
        json.dumps({"kind": "intervention", "step": 12, "time": 1.0, "action": EVIL, "old": EVIL, "new": 1.0,
                    "source": EVIL}),
        json.dumps({"kind": "run_ended", "step": 12, "time": 2.0, "reason": EVIL, "error": EVIL}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def evil_dir(tmp_path):
    d = tmp_path / "sessions"
    d.mkdir()
    hostile_log(d / "2026-01-01T00-00-00_h256_lr1.5e-3.jsonl")
    return d


def _all_output(result) -> str:
    """stdout and stderr, interleaved (CliRunner's ``output``)."""
    return result.output


@pytest.mark.parametrize("args", [["summary", "latest"], ["summary", "latest", "--json"], ["sessions"],
                                  ["compare", "latest", "latest"]])
def test_hostile_log_is_shown_literally_by_the_log_commands(evil_dir, args):
    result = runner.invoke(app, [*args, "--sessions-dir", str(evil_dir)])
    out = _all_output(result)
    assert result.exit_code in (0, 1), out
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    assert "Traceback" not in out
    assert len(out) < 200_000  # the 10 MB line was not echoed


def test_hostile_log_reads_in_bounded_memory(tmp_path):
    path = hostile_log(tmp_path / "big.jsonl", big=10 << 20)
    tracemalloc.start()
    try:
        data = read_session(path)
        _, read_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        follower = Follower(path, max_read=1 << 20)
        for _ in range(40):  # 1 MiB a poll; a poll inside the long lines returns nothing
            follower.poll()
        _, follow_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read_peak < 4 << 20, f"read_session peak {read_peak / 2**20:.1f} MiB"
    assert follow_peak < 4 << 20, f"Follower peak {follow_peak / 2**20:.1f} MiB"
    assert data.malformed >= 5 and data.end is not None
    assert follower.malformed >= 4 and follower.ended


def test_hostile_log_replays_in_the_dashboard_without_escapes(tmp_path):
    pytest.importorskip("textual")
    from bitnet_tui.app.dashboard.app import make_app

    path = hostile_log(tmp_path / "r.jsonl", big=1 << 20)
    app_ = make_app("replay", session_path=path, start_at="end")

    async def go():
        async with app_.run_test(size=(100, 40)) as pilot:
            await pilot.pause()
            return app_.export_screenshot()

    import asyncio

    svg = asyncio.run(go())
    assert "\x1b" not in svg and "\x07" not in svg and "pwned" in svg


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_malicious_pickle_checkpoint_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "step00000005.pt"
    torch.save({"format": "bitnet-tui-checkpoint", "version": 1, "model": _Evil(marker)}, bad)
    assert pickle.loads(pickle.dumps(_Evil(marker))) and marker.exists()  # the payload is real
    marker.unlink()
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(bad)
    assert not marker.exists()


def test_resume_from_a_malicious_checkpoint_is_one_clear_line(tiny, tmp_path):
    sdir = tmp_path / "sessions"
    sdir.mkdir()
    log = sdir / "2026-01-01T00-00-00_h32_lr3e-3.jsonl"
    with SessionWriter(log) as w:
        for e in scripted_run([20, 10], config=tiny(steps=10), eval_every=5):
            w(e)
    marker = tmp_path / "pwned"
    ck = checkpoint_dir(log)
    ck.mkdir()
    torch.save({"format": "bitnet-tui-checkpoint", "version": 1, "model": _Evil(marker)}, ck / "step00000005.pt")
    result = runner.invoke(app, ["run", "--headless", "--resume", str(log), "--sessions-dir", str(sdir)])
    out = _all_output(result)
    assert result.exit_code == 2, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[-1].startswith("error:") and "refused" in lines[-1]
    assert "Traceback" not in out and not marker.exists()


def _data_file(tmp_path: Path, kind: str) -> list[str]:
    if kind == "missing":
        return ["--data", str(tmp_path / "nope.txt")]
    if kind == "empty":
        (tmp_path / "empty.txt").write_text("")
        return ["--data", str(tmp_path / "empty.txt")]
    if kind == "binary":
        (tmp_path / "blob.txt").write_bytes(bytes(range(256)) * 400)
        return ["--data", str(tmp_path / "blob.txt")]
    (tmp_path / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "BPE", "vocab": [')
    return ["--tokenizer", str(tmp_path / "tokenizer.json")]


@pytest.mark.parametrize("args", [
    ["--lr", "abc"], ["--lr", "-1"], ["--lr", "0"], ["--steps", "0"], ["--hidden", "-5"],
    ["--hidden", "30", "--heads", "4"], ["--batch-size", "0"],
])
def test_bad_numbers_are_one_clear_line(tmp_path, args):
    result = runner.invoke(app, ["run", "--headless", "--sessions-dir", str(tmp_path / "s"), *args])
    out = _all_output(result)
    assert result.exit_code != 0 and "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("error")]
    assert len(errors) == 1, out
    assert not (tmp_path / "s").exists() or not list((tmp_path / "s").glob("*.jsonl"))


@pytest.mark.parametrize("kind", ["missing", "empty", "binary", "tokenizer"])
def test_bad_data_is_one_clear_line(tmp_path, kind):
    args = _data_file(tmp_path, kind)
    result = runner.invoke(app, ["run", "--headless", *TINY, "--sessions-dir", str(tmp_path / "s"), *args])
    out = _all_output(result)
    assert result.exit_code == 2, out
    assert "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out
