"""Issue 13, item 1: another user cannot make your run overwrite your files.

In a shared sessions directory (mode 1777) a real second user (``nobody``, through ``setpriv``) pre-creates what
a run will name: ``<name>.ckpt/`` (0777) full of symlinks named like checkpoints and temporary files, ``<name>.out``,
``<name>.sock`` and ``<name>.jsonl``, each pointing at a file of the victim's. The run must leave that file
untouched and either avoid the name or refuse with one sentence (exit 2) before anything starts: no traceback,
no background run whose name was not printed. Runs as root (CI does); skipped where users cannot be switched.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import bitnet_tui.app.cli.detach as detach_mod
from bitnet_tui.app.cli.main import app
from bitnet_tui.app.runs.plan import plan_run
from bitnet_tui.session.log.paths import checkpoint_dir, list_sessions
from bitnet_tui.session.log.reader import read_session
from tests.conftest import TINY_KNOBS, tiny_args, wait_until
from tests.hardening.hostile import NOBODY, as_user, can_switch_user

pytestmark = pytest.mark.skipif(not can_switch_user(), reason="needs root and setpriv to act as a second user")
runner = CliRunner()
KNOBS = {**TINY_KNOBS, "steps": 6, "eval_every": 6}


@pytest.fixture
def shared():
    """A world-writable sticky directory outside the test's private tmp (which the other user cannot enter)."""
    d = Path(tempfile.mkdtemp(prefix="bitnet-shared-", dir="/tmp"))
    d.chmod(0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def victim(tmp_path):
    v = tmp_path / "precious.txt"
    v.write_text("the victim's own data\n")
    return v


def _stop_detached(output: str) -> None:
    """End the background run this test started, if its parent printed one (a regression must not leave it)."""
    m = re.search(r"\(pid (\d+)\)", output)
    if m is None:
        return
    pid = int(m.group(1))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        time.sleep(5)


def _untouched(victim: Path) -> None:
    assert victim.read_text() == "the victim's own data\n"
    assert not victim.is_symlink() and victim.stat().st_nlink == 1


def _plant(base: Path, victim: Path, what=("ckpt", "out", "sock", "jsonl")) -> None:
    """As the other user: plant ``base``'s files (``base`` is a path without suffix), pointing at ``victim``."""
    script = [f'b="{base}"; v="{victim}"']
    if "ckpt" in what:
        script.append('mkdir -m 0777 "$b.ckpt" && chmod 0777 "$b.ckpt"')
        for s in ("00000002", "00000004", "00000006"):
            script.append(f'ln -s "$v" "$b.ckpt/step{s}.pt"; ln -s "$v" "$b.ckpt/.step{s}.pt.1.abcd.tmp"')
    for suffix in ("out", "sock", "jsonl"):
        if suffix in what:
            script.append(f'ln -s "$v" "$b.{suffix}"')
    r = as_user("; ".join(script))
    assert r.returncode == 0, r.stderr
    for suffix in what:
        assert Path(f"{base}.{suffix}").lstat().st_uid == NOBODY


WINDOW = {"": ("ckpt", "out", "sock"), "-2": ("jsonl",), "-3": ("ckpt",)}
"""What is planted for each name a run could take: its siblings only (the log's own name is free), the log
only, the checkpoint directory only."""


def _plant_window(shared: Path, victim: Path, label: str, seconds: int = 90) -> list[tuple[Path, tuple[str, ...]]]:
    """Plant every name a run started in the next ``seconds`` could take (and its -2 and -3 variants)."""
    now = datetime.now()
    planted = [(shared / f"{(now + timedelta(seconds=i)).strftime('%Y-%m-%dT%H-%M-%S')}_{label}{sfx}", what)
               for i in range(-1, seconds) for sfx, what in WINDOW.items()]
    lines = [f'v="{victim}"']
    for b, what in planted:
        if "ckpt" in what:
            lines.append(f'mkdir -m 0777 "{b}.ckpt"; chmod 0777 "{b}.ckpt"; ln -s "$v" "{b}.ckpt/step00000006.pt"')
        lines.extend(f'ln -s "$v" "{b}.{suffix}"' for suffix in what if suffix != "ckpt")
    r = as_user("\n".join(lines))
    assert r.returncode == 0, r.stderr
    return planted


def _planted_intact(planted: list[tuple[Path, tuple[str, ...]]], victim: Path) -> None:
    for b, what in planted:
        if "ckpt" in what:
            ck = Path(f"{b}.ckpt")
            assert ck.lstat().st_uid == NOBODY and stat.S_IMODE(ck.lstat().st_mode) == 0o777
            assert sorted(os.listdir(ck)) == ["step00000006.pt"]
        for suffix in what:
            if suffix != "ckpt":
                assert os.readlink(f"{b}.{suffix}") == str(victim)
            else:
                assert not os.path.lexists(f"{b}.jsonl") or os.path.islink(f"{b}.jsonl")  # no log of ours there


@pytest.mark.timeout(120)
def test_a_run_avoids_every_name_the_other_user_planted(shared, victim):
    label = plan_run(KNOBS, sessions=str(shared)).label
    bases = _plant_window(shared, victim, label)
    r = runner.invoke(app, ["run", "--headless", *tiny_args(steps=6, eval_every=6), "--checkpoint-every", "2",
                            "--control", "--sessions-dir", str(shared)])
    assert r.exit_code == 0, r.output
    ours = [p for p in list_sessions(shared) if not p.is_symlink()]
    assert len(ours) == 1 and ours[0].name.endswith(f"_{label}-4.jsonl"), ours
    assert f"session: {ours[0]}" in r.output
    assert read_session(ours[0]).end.reason == "finished"
    ck = checkpoint_dir(ours[0])
    assert ck.stat().st_uid == os.geteuid() and stat.S_IMODE(ck.stat().st_mode) == 0o700
    _untouched(victim)
    _planted_intact(bases, victim)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_detached_run_avoids_the_planted_names_and_prints_its_own(shared, victim):
    label = plan_run(KNOBS, sessions=str(shared)).label
    bases = _plant_window(shared, victim, label)
    r = runner.invoke(app, ["run", "--detach", *tiny_args(steps=6, eval_every=6), "--sessions-dir", str(shared)])
    try:
        assert r.exit_code == 0, r.output
        log = Path(next(line for line in r.output.splitlines() if line.startswith("session: ")).split(" ", 1)[1])
        assert log.name.endswith(f"_{label}-4.jsonl") and not log.is_symlink()
        wait_until(lambda: read_session(log).ended, timeout=120, what="the detached run to end")
        assert read_session(log).end.reason == "finished"
    except BaseException:
        _stop_detached(r.output)
        raise
    _untouched(victim)
    _planted_intact(bases, victim)


@pytest.mark.parametrize("planted", ["ckpt", "sock"])
def test_a_run_whose_claimed_name_is_taken_after_the_claim_refuses_before_it_starts(shared, victim, planted):
    """The race: the log was claimed (by a parent, ``--session-file``), then the other user planted a sibling."""
    log = shared / "2026-01-01T00-00-00_h32_lr3e-3.jsonl"
    os.close(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    _plant(log.with_suffix(""), victim, what=(planted,))
    r = runner.invoke(app, ["run", "--headless", *tiny_args(steps=6), "--checkpoint-every", "2", "--control",
                            "--session-file", str(log), "--sessions-dir", str(shared)])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    errors = [line for line in r.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and ("another user" in errors[0] or "not a socket" in errors[0]), r.output
    assert log.stat().st_size == 0  # nothing started: not even the header was written
    _untouched(victim)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_detached_childs_refusal_is_printed_and_leaves_no_orphan(shared, victim, monkeypatch):
    """The other user plants ``<name>.ckpt/`` between the parent's claim and the child's start: the child refuses,
    the parent prints the child's sentence, removes the empty log, and exits 2."""
    real_claim = detach_mod.claim

    def claim_then_attack(plan):
        log, out = real_claim(plan)
        _plant(log.with_suffix(""), victim, what=("ckpt",))
        return log, out

    monkeypatch.setattr(detach_mod, "claim", claim_then_attack)
    r = runner.invoke(app, ["run", "--detach", *tiny_args(steps=6), "--sessions-dir", str(shared)])
    _stop_detached(r.output)  # nothing to stop unless the child started (a regression)
    assert r.exit_code == 2, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "belongs to another user" in errors[0], r.output
    assert "session: " not in r.output and not [p for p in list_sessions(shared) if not p.is_symlink()]
    assert not list(shared.glob("*.out"))
    _untouched(victim)


def test_a_planted_output_file_after_the_claim_starts_nothing(shared, victim, monkeypatch):
    """``<name>.out`` planted between the log's claim and the output file's creation: no background run starts
    (its name could not be printed), the claimed log is removed, the error is one line."""
    started = []
    monkeypatch.setattr(detach_mod, "subprocess", SimpleNamespace(  # the detach module's view of it only
        Popen=lambda *a, **k: started.append(a) or pytest.fail("started"), DEVNULL=-3, STDOUT=-2))
    real_claim_session = detach_mod.claim_session

    def claim_then_attack(plan):
        log = real_claim_session(plan)
        _plant(log.with_suffix(""), victim, what=("out",))
        return log

    monkeypatch.setattr(detach_mod, "claim_session", claim_then_attack)
    r = runner.invoke(app, ["run", "--detach", *tiny_args(steps=6), "--sessions-dir", str(shared)])
    assert r.exit_code == 2, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "already exists" in errors[0] and "Traceback" not in r.output, r.output
    assert not started and not [p for p in list_sessions(shared) if not p.is_symlink()]
    _untouched(victim)


def test_a_checkpoint_directory_of_another_user_is_never_written(shared, victim):
    """Resuming is not the attack surface, saving is: a store pointed at the other user's 0777 directory refuses
    it outright, whatever the symlinks inside are named."""
    from bitnet_tui.instrument.checkpoints import CheckpointStore
    from bitnet_tui.session.safefs import UnsafePathError, atomic_write

    base = shared / "x"
    _plant(base, victim, what=("ckpt",))
    store = CheckpointStore(Path(f"{base}.ckpt"), lambda p: atomic_write(p, lambda f: f.write(b"overwritten")))
    with pytest.raises(UnsafePathError, match="another user"):
        store.save(2)
    _untouched(victim)
