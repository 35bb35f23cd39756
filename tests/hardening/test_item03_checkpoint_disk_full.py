"""Issue 13, item 3: a full disk during a checkpoint alerts, pauses, retries until it works (or a stop arrives),
and never leaves a partial file; a stop while paused on a full disk ends the run with one line.

In-process, the checkpoint module's ``torch.save`` writes part of the file and then fails as torch does on a
short write (``RuntimeError``); the retry cadence (every 5 s) is the real one. In a child process the disk is
really "full": ``RLIMIT_FSIZE`` makes every write past 100 KB fail (EFBIG), so no checkpoint fits.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading

import pytest

import bitnet_model.train.checkpoint as checkpoint_mod
from bitnet_tui.app.runs.build import prepare_run
from bitnet_tui.session.control import commands as C
from bitnet_tui.session.log.events import Alert, CheckpointSaved, Intervention, StepDone
from bitnet_tui.session.log.follow import Follower
from bitnet_tui.session.log.paths import checkpoint_dir, list_sessions
from bitnet_tui.session.log.reader import read_session
from tests.conftest import tiny_args, wait_until
from tests.hardening.hostile import ROOT, cli_env

SHORT_WRITE = ("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file data/0: "
               "file write failed")


class FlakySave:
    """torch.save that fails (after writing part of the file) on the calls numbered in ``fail``."""

    def __init__(self, real, fail):
        self.real, self.fail, self.calls = real, set(fail), 0
        self.lock = threading.Lock()

    def __call__(self, obj, f, *a, **kw):
        with self.lock:
            self.calls += 1
            n = self.calls
        if n in self.fail or "always" in self.fail:
            f.write(b"PK\x03\x04 part of a checkpoint")
            raise RuntimeError(SHORT_WRITE)
        return self.real(obj, f, *a, **kw)


def _leftovers(ckpt) -> list[str]:
    return sorted(p.name for p in ckpt.iterdir() if not (p.name.startswith("step") and p.name.endswith(".pt")))


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_periodic_manual_and_final_checkpoints_retry_through_a_full_disk(tmp_path, tiny, monkeypatch):
    # save calls: 1-2 periodic@4 fail, 3 works; 4 manual@6 fails, 5 works; 6 periodic@8; 7 final@12 fails, 8 works
    flaky = FlakySave(checkpoint_mod.torch.save, fail={1, 2, 4, 7})
    monkeypatch.setattr(checkpoint_mod.torch, "save", flaky)
    live = prepare_run({}, sessions=str(tmp_path / "s"), base=tiny(steps=12), checkpoint_every=4, keep_checkpoints=0)
    live.subscribe(lambda ev: isinstance(ev, StepDone) and ev.step == 6 and live.send(C.CheckpointNow(source="test")))
    end = live.run()
    assert end.reason == "finished" and flaky.calls == 8
    data = read_session(live.session_path)
    ev = data.events
    failed = [e for e in ev if isinstance(e, Alert) and e.code == "checkpoint"]
    assert [e.step for e in failed] == [4, 6, 12] and all(e.level == "error" for e in failed)
    assert all("failed writing file" in e.message and "retried" in e.message for e in failed)
    pauses = [(e.step, e.action) for e in ev if isinstance(e, Intervention) and e.source.startswith("auto: checkpoint")]
    assert pauses == [(4, "pause"), (4, "resume"), (6, "pause"), (6, "resume"), (12, "pause")]
    saved = [(e.step, e.pinned) for e in ev if isinstance(e, CheckpointSaved)]
    assert saved == [(4, False), (6, True), (8, False), (12, True)]
    assert [e.step for e in ev if isinstance(e, StepDone)] == list(range(1, 13))  # training went on after each
    ckpt = checkpoint_dir(live.session_path)
    assert _leftovers(ckpt) == [] and len(list(ckpt.iterdir())) == 4  # no partial or temporary file


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_stop_while_paused_on_a_full_disk_ends_the_run(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(checkpoint_mod.torch, "save", FlakySave(checkpoint_mod.torch.save, fail={"always"}))
    live = prepare_run({}, sessions=str(tmp_path / "s"), base=tiny(steps=200), checkpoint_every=3)
    live.subscribe(lambda ev: isinstance(ev, Alert) and ev.code == "checkpoint" and live.send(C.Stop(source="test")))
    end = live.run()
    assert end.reason == "stopped" and end.step == 3
    data = read_session(live.session_path)
    assert data.end is not None and data.end.reason == "stopped"
    assert not [e for e in data.events if isinstance(e, CheckpointSaved)]
    assert _leftovers(checkpoint_dir(live.session_path)) == [] and not list(checkpoint_dir(live.session_path).iterdir())


def _full_disk() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))  # Python ignores SIGXFSZ: writes fail (EFBIG)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_ctrl_c_to_a_headless_run_paused_on_a_full_disk_is_one_line(tmp_path, cache_dir):
    sdir = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-m", "bitnet_tui", "run", "--headless", *tiny_args(steps=5000),
                             "--checkpoint-every", "3", "--sessions-dir", str(sdir)], cwd=ROOT,
                            env=cli_env(BITNET_TUI_CACHE=cache_dir), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_full_disk)
    try:
        seen: list = []

        def alerted() -> bool:
            logs = list_sessions(sdir)
            if logs and not seen:
                seen.append(Follower(logs[0]))
            return bool(seen) and any(isinstance(e, Alert) and e.code == "checkpoint" for e in seen[0].poll())

        wait_until(alerted, timeout=120, what="the checkpoint to fail", every=0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err + out
    assert err.strip().splitlines()[-1].startswith("run ended (interrupted) at step 3; log: ")
    data = read_session(list_sessions(sdir)[0])
    assert data.end is not None and data.end.reason == "interrupted"
    msgs = [e.message for e in data.events if isinstance(e, Alert) and e.code == "checkpoint"]
    assert msgs and msgs[0].startswith("checkpoint failed"), msgs  # torch says "unexpected pos ...": no errno
    ckpt = checkpoint_dir(data.path)
    assert not list(ckpt.iterdir()), os.listdir(ckpt)  # no partial checkpoint, no temporary file


@pytest.mark.timeout(120)
def test_a_killed_runs_partial_checkpoint_is_removed_when_it_is_resumed(tmp_path, tiny):
    """A run killed mid-save leaves ``.stepN.pt.<pid>.<random>.tmp`` in its checkpoint directory; resuming it
    removes that file (and only regular files: a planted symlink's target is never touched)."""
    first = prepare_run({}, sessions=str(tmp_path / "s"), base=tiny(steps=4), checkpoint_every=2)
    assert first.run().reason == "finished"
    ckpt = checkpoint_dir(first.session_path)
    (ckpt / ".step00000006.pt.4242.deadbeef.tmp").write_bytes(b"PK partial")
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    os.symlink(victim, ckpt / ".step00000008.pt.4242.cafecafe.tmp")
    from typer.testing import CliRunner

    from bitnet_tui.app.cli.main import app

    r = CliRunner().invoke(app, ["run", "--headless", "--resume", str(first.session_path), "--steps", "6",
                                 "--sessions-dir", str(tmp_path / "s")])
    assert r.exit_code == 0, r.output
    assert not (ckpt / ".step00000006.pt.4242.deadbeef.tmp").exists()
    assert victim.read_text() == "keep me"
