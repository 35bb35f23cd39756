"""Issue 13, item 8: what once gave a raw traceback is one line and exit 2, said before heavy work starts.

Bad numbers and devices, a sessions directory that is a file, not writable or unreadable, a tokenizer cache
that cannot be written, tokenizers with a huge id or a missing unk token, a config nested 500 levels deep, a
control-socket value beyond 1e308, and checkpoints that ``weights_only`` loads but whose fields are wrong
(``--resume`` then falls back to the newest one that loads, and says which). "Before heavy work" is checked by
watching for the data loader (corpus, tokenizer): it must not have been called.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from bitnet_tui.app.cli.main import app
from bitnet_tui.session.log.paths import checkpoint_dir
from tests.conftest import tiny_args
from tests.fixtures.scripted import scripted_run
from tests.hardening.hostile import ROOT, cli_env

runner = CliRunner()


@pytest.fixture
def data_loads(monkeypatch):
    """Calls of the data loader (the first heavy step of a run) made during the test."""
    import bitnet_model.data.dataset as dataset

    calls = []
    real = dataset.load_data

    def spy(*a, **kw):
        calls.append(a)
        return real(*a, **kw)

    monkeypatch.setattr(dataset, "load_data", spy)
    return calls


def one_error_line(r) -> str:
    out = r.output
    assert "Traceback" not in out and r.exception is None or isinstance(r.exception, SystemExit), \
        (repr(r.exception), out)
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out
    return errors[0]


@pytest.mark.parametrize("args,says", [
    (["--seed", "99999999999999999999999"], "seed must be between"), (["--device", "cuda:abc"], "device must be"),
    (["--hidden", "1000000"], "hidden must be between"), (["--vocab-size", "99999999999"], "vocab_size must be"),
    (["--batch-size", "99999999999"], "batch_size"),
], ids=lambda a: " ".join(a) if isinstance(a, list) else None)
def test_bad_values_are_one_line_before_any_data_is_loaded(tmp_path, data_loads, args, says):
    r = runner.invoke(app, ["run", "--headless", *args, "--sessions-dir", str(tmp_path / "s")])
    assert r.exit_code == 2, r.output
    assert says in one_error_line(r)
    assert not data_loads and not (tmp_path / "s").exists()


@pytest.mark.parametrize("args", [["--seed", "1e30"], ["--batch-size", "1e11"], ["--vocab-size", "1e11"],
                                  ["--checkpoint-every", "-1"]], ids=" ".join)
def test_values_the_option_parser_refuses_are_usage_errors_without_a_traceback(tmp_path, data_loads, args):
    """Non-integers for integer options are refused by the option parser itself (its usage message, exit 2)."""
    r = runner.invoke(app, ["run", "--headless", *args, "--sessions-dir", str(tmp_path / "s")])
    assert r.exit_code == 2 and "Traceback" not in r.output and args[0] in r.output, r.output
    assert not data_loads and not (tmp_path / "s").exists()


def test_a_model_too_big_for_the_machine_is_one_line(tmp_path):
    """Checked against the machine's memory before anything is allocated (but after the data is loaded)."""
    r = runner.invoke(app, ["run", "--headless", *tiny_args(steps=2, hidden=4096, layers=256, heads=64),
                            "--sessions-dir", str(tmp_path / "s")])
    assert r.exit_code == 2, r.output
    assert "needs about" in one_error_line(r)


@pytest.mark.slow
def test_a_sessions_directory_that_is_a_file_is_one_line(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    for args in (["run", "--headless", *tiny_args(steps=2)], ["sessions"], ["summary", "latest"],
                 ["run", "--detach", *tiny_args(steps=2)]):
        r = runner.invoke(app, [*args, "--sessions-dir", str(f)])
        assert r.exit_code == 2, (args, r.output)
        one_error_line(r)


def test_a_sessions_directory_that_is_a_file_is_refused_before_the_data_is_loaded(tmp_path, data_loads):
    f = tmp_path / "file"
    f.write_text("x")
    r = runner.invoke(app, ["run", "--headless", *tiny_args(steps=2), "--sessions-dir", str(f)])
    assert r.exit_code == 2
    assert not data_loads


def _as_unprivileged() -> list[str]:
    """A prefix that runs a command without the power to ignore file permissions (root keeps its uid)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to drop root's permission override")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", [0o500, 0o000], ids=["not-writable", "unreadable"])
def test_a_sessions_directory_that_cannot_be_written_or_read_is_one_line(tmp_path, cache_dir, mode):
    d = tmp_path / "sessions"
    d.mkdir()
    (d / "2026-01-01T00-00-00_x.jsonl").write_text("{}\n")
    d.chmod(mode)
    try:
        cases = [["run", "--headless", *tiny_args(steps=2)], ["sessions"], ["summary", "latest"],
                 ["summary", "2026-01-01T00-00-00_x"], ["diagnose", "latest"], ["compare", "a", "b"]]
        for args in cases if mode == 0 else cases[:1]:
            r = subprocess.run([*_as_unprivileged(), sys.executable, "-m", "bitnet_tui", *args, "--sessions-dir",
                                str(d)], capture_output=True, text=True, timeout=60, cwd=ROOT,
                               env=cli_env(BITNET_TUI_CACHE=cache_dir), stdin=subprocess.DEVNULL)
            assert r.returncode == 2, (args, r.stderr[-2000:])
            errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
            assert len(errors) == 1 and "Traceback" not in r.stderr, (args, r.stderr[-2000:])
            assert "not writable" in errors[0] or "cannot be read" in errors[0] or "could be read" in errors[0]
    finally:
        d.chmod(0o700)
    assert [p.name for p in d.iterdir()] == ["2026-01-01T00-00-00_x.jsonl"]


def test_a_tokenizer_cache_that_is_a_file_is_one_line_before_the_corpus_is_built(tmp_path, monkeypatch):
    import bitnet_model.data.dataset as dataset

    built = []
    monkeypatch.setattr(dataset, "default_corpus", lambda: built.append(1) or pytest.fail("corpus built"))
    dataset.forget_loaded()
    cache = tmp_path / "cache"
    cache.write_text("not a folder")
    monkeypatch.setenv("BITNET_TUI_CACHE", str(cache))
    r = runner.invoke(app, ["run", "--headless", *tiny_args(steps=2), "--sessions-dir", str(tmp_path / "s")])
    assert r.exit_code == 2, r.output
    assert "tokenizer cache" in one_error_line(r) and not built


@pytest.mark.parametrize("case", ["huge-id", "huge-added-id", "missing-unk"])
def test_a_tokenizer_with_a_huge_id_or_a_missing_unk_token_is_one_line(tmp_path, case):
    vocab = {"<|endoftext|>": 0, "a": 1, "b": 2, " ": 3}
    model = {"type": "BPE", "vocab": vocab, "merges": []}
    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
           "pre_tokenizer": None, "post_processor": None, "decoder": None, "model": model}
    if case == "huge-id":
        vocab["zz"] = 10**7
    elif case == "huge-added-id":
        tok["added_tokens"] = [{"id": 2**33, "content": "QQ", "single_word": False, "lstrip": False,
                                "rstrip": False, "normalized": False, "special": True}]
    else:
        model["unk_token"] = "[UNK]"
    (tmp_path / "tok.json").write_text(json.dumps(tok))
    (tmp_path / "d.txt").write_text("a b ab ba, with other letters the vocabulary lacks.\n\n" * 200)
    r = runner.invoke(app, ["run", "--headless", *tiny_args(steps=2), "--tokenizer", str(tmp_path / "tok.json"),
                            "--data", str(tmp_path / "d.txt"), "--sessions-dir", str(tmp_path / "s")])
    assert r.exit_code == 2, r.output
    one_error_line(r)
    assert not list((tmp_path / "s").glob("*.jsonl")) if (tmp_path / "s").exists() else True


def test_a_config_nested_500_levels_deep_is_shown_cut(tmp_path):
    events = [e.to_dict() for e in scripted_run([20, 10], eval_every=4)]
    deep: dict = {}
    cur = deep
    for _ in range(500):
        cur["n"] = {}
        cur = cur["n"]
    events[0]["config"]["deep"] = deep
    events[0]["corpus"] = deep
    (tmp_path / "2026-01-01T00-00-00_deep.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    for args in (["summary", "latest", "--json"], ["summary", "latest"], ["sessions", "--json"],
                 ["compare", "latest", "latest", "--json"], ["diagnose", "latest", "--json"]):
        r = runner.invoke(app, [*args, "--sessions-dir", str(tmp_path)])
        assert r.exit_code == 0 and r.exception is None, (args, r.output, r.exception)
    s = json.loads(runner.invoke(app, ["summary", "latest", "--json", "--sessions-dir", str(tmp_path)]).stdout)
    assert "nested too deeply" in json.dumps(s["config"])


@pytest.fixture
def three_checkpoints(tmp_path):
    """A finished tiny run with checkpoints at steps 2, 4 and 6; returns (sessions dir, log, checkpoint dir)."""
    sdir = tmp_path / "s"
    r = runner.invoke(app, ["run", "--headless", *tiny_args(steps=6, eval_every=6), "--checkpoint-every", "2",
                            "--sessions-dir", str(sdir)])
    assert r.exit_code == 0, r.output
    log = next(sdir.glob("*.jsonl"))
    ck = checkpoint_dir(log)
    assert sorted(p.name for p in ck.iterdir()) == ["step00000002.pt", "step00000004.pt", "step00000006.pt"]
    return sdir, log, ck


BAD_FIELDS = {
    "no-config": lambda d: d.pop("config"), "step-abc": lambda d: d.update(step="abc"),
    "step-1e30": lambda d: d.update(step=1e30),
    "shapes": lambda d: d.update(model={k: torch.zeros(3) for k in d["model"]}),
    "config-lr-5e-324": lambda d: d["config"]["train"].update(lr=5e-324),
    "config-not-a-dict": lambda d: d.update(config={"model": "abc"}),
    "monitor-step-abc": lambda d: d.update(monitor={"step": "abc"}),
    "monitor-lr-rules": lambda d: d["monitor"].update(lr={"rules": "xy"}),
    "monitor-lr-5e-324": lambda d: d["monitor"].update(lr={"rules": [[5e-324, None]]}),
    "monitor-detector": lambda d: d["monitor"].update(detector={"losses": "abc", "state": 3}),
    "monitor-not-a-dict": lambda d: d.update(monitor=[1, 2]),
    "rng": lambda d: d.update(torch_rng=torch.zeros(3)),
}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_resume_falls_back_past_checkpoints_with_wrong_fields_and_says_which(three_checkpoints):
    sdir, log, ck = three_checkpoints
    good = torch.load(ck / "step00000006.pt", weights_only=True)
    for name, spoil in BAD_FIELDS.items():
        bad = {**good, "config": json.loads(json.dumps(good["config"])), "monitor": dict(good["monitor"])}
        spoil(bad)
        torch.save(bad, ck / "step00000006.pt")
        r = runner.invoke(app, ["run", "--headless", "--resume", str(log), "--steps", "8",
                                "--sessions-dir", str(sdir)])
        assert r.exit_code == 0, (name, r.output, r.exception)
        notes = [line for line in r.output.splitlines() if line.startswith("note: ")]
        assert any("step00000006.pt does not load" in n and "continuing from step00000004.pt" in n for n in notes), \
            (name, r.output)
        assert "Traceback" not in r.output


@pytest.mark.timeout(120)
def test_resume_with_only_a_bad_checkpoint_is_one_line(three_checkpoints):
    sdir, log, ck = three_checkpoints
    good = torch.load(ck / "step00000006.pt", weights_only=True)
    for p in ck.iterdir():
        p.unlink()
    torch.save({**good, "monitor": {"step": "abc"}}, ck / "step00000006.pt")
    r = runner.invoke(app, ["run", "--headless", "--resume", str(log), "--sessions-dir", str(sdir)])
    assert r.exit_code == 2, r.output
    assert "unusable monitor state" in one_error_line(r)
    assert len(list(sdir.glob("*.jsonl"))) == 1  # no new session was left behind
