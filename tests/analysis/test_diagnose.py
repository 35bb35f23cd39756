"""diagnose's "what to try": commands that do what their words say."""

from __future__ import annotations

import dataclasses
import math
import shlex

from bitnet_tui.session.analysis.diagnose import diagnose, same_run_with
from bitnet_tui.session.analysis.fold import RunFold
from bitnet_tui.session.analysis.summary import summarize
from bitnet_tui.session.log.events import EvalDone, RunEnded
from bitnet_tui.session.log.reader import read_session
from bitnet_tui.session.log.writer import SessionWriter
from tests.fixtures.scripted import scripted_run

ARGV = ("/x/bin/bitnet-tui", "run", "--headless", "--hidden", "256", "--decay-all", "--optimizer", "adam",
        "--lr", "0.0015", "--session-file", "/s/a b.jsonl", "--detach")
AUDIT = ({"code": "coupled-l2", "message": "torch.optim.Adam with weight_decay=0.1 adds L2 decay"},
         {"code": "decay-all", "message": "weight decay 0.1 applies to norm gains, embeddings"})


def unlearned_run(tmp_path, argv=ARGV, checkpoints=()):
    """Learns to 7.0 by step 400, then climbs back to ln V: an Adam + coupled L2 run as its log has it."""
    ln_v = math.log(50257)
    losses = [ln_v, 9.0, 8.0, 7.0, 7.6, 8.6, 9.6, 10.4, 10.7, 10.8]
    events = scripted_run([198, 3, 2, 2, 1, 1, 1, 1, 1, 1], val_losses=losses, ln_vocab=ln_v, unigram_entropy=7.4)
    events[0] = dataclasses.replace(events[0], argv=argv, audit=AUDIT)
    return diagnosed(tmp_path / "2026-01-01T00-00-00_h256_lr1.5e-3_adam.jsonl", events, checkpoints)


def diagnosed(path, events, checkpoints=()):
    """Write ``events`` as a session log, read it back and diagnose it, as ``bitnet-tui diagnose`` does."""
    with SessionWriter(path) as w:
        for e in events:
            w(e)
    data = read_session(path)
    fold = RunFold()
    fold.apply(data.header)
    fold.apply_all(data.events)
    return diagnose(summarize(data, fold), fold, list(checkpoints))


def test_with_a_checkpoint_before_the_decline_the_fix_forks_from_it(tmp_path):
    d = unlearned_run(tmp_path, checkpoints=[200, 400, 900])
    assert d.causes[0].title.startswith("the optimizer: Adam with coupled L2")
    what, cmd = d.tries[0]
    assert "fork from step 400, before the decline (lowest held-out loss at step 400)" in what
    assert cmd == "bitnet-tui run --from 2026-01-01T00-00-00_h256_lr1.5e-3_adam@400 --optimizer adamw"


def test_without_one_it_says_so_and_starts_the_same_run_again_with_the_fix(tmp_path):
    d = unlearned_run(tmp_path, checkpoints=[900])
    what, cmd = d.tries[0]
    assert what.startswith("start the run again with decoupled decay (AdamW)")
    assert "the kept ones hold the decayed weights" in what and "before the decline after step 400" in what
    assert shlex.split(cmd) == ["bitnet-tui", "run", "--headless", "--hidden", "256", "--decay-all", "--lr",
                                "0.0015", "--optimizer", "adamw"]
    assert not any("train longer" in w for w, _ in d.tries)  # longer with the same optimizer is no fix


def test_a_users_loop_gets_words_not_a_command_it_cannot_run(tmp_path):
    d = unlearned_run(tmp_path, argv=("train.py", "--lr", "3e-3"))
    what, change = d.tries[0]
    assert what == "in your training script, decoupled decay (AdamW)" and change.startswith("torch.optim.AdamW(")
    assert not any("--" in c for _, c in d.tries)  # never our run flags in a user's loop


def test_same_run_with_drops_flags_with_their_values_and_keeps_the_rest():
    argv = ("python -m bitnet_tui/__main__.py", "run", "--optimizer=adam", "--decay-all", "--steps", "9",
            "--resume", "old", "--no-decay-all")
    assert same_run_with(argv, ["--no-decay-all"], ("--decay-all", "--no-decay-all")) == \
        "bitnet-tui run --optimizer=adam --steps 9 --no-decay-all"
    assert same_run_with(("pytest", "-q"), ["--optimizer", "adamw"], ("--optimizer",)) is None


def test_a_healthy_run_is_not_in_trouble_and_its_settings_are_not_called_causes(tmp_path):
    events = scripted_run([120, 30, 40, 50, 60, 70], val_losses=[8.3, 6.0, 5.2, 5.0, 4.9, 4.8])
    d = diagnosed(tmp_path / "h.jsonl", events)
    assert d.verdict == "healthy" and not d.trouble and d.headline() == "healthy"
    (tmp_path / "u").mkdir()
    assert unlearned_run(tmp_path / "u").trouble


def test_a_healthy_run_gets_an_a_b_suggestion_not_a_rescue_from_a_decline(tmp_path):
    events = scripted_run([120, 30, 40, 50, 60, 70], val_losses=[8.3, 6.0, 5.2, 5.0, 4.9, 4.8])
    events[0] = dataclasses.replace(events[0], argv=ARGV, audit=AUDIT[1:])
    d = diagnosed(tmp_path / "h.jsonl", events, [600])
    assert not d.trouble
    assert all("decline" not in what for what, _ in d.tries), d.tries
    assert d.tries[0][0] == "to see whether it matters, run it again with decay on 2-D weights only"
    assert d.tries[0][1].endswith("--optimizer adam --lr 0.0015 --no-decay-all")


def test_a_run_that_crashed_says_so_first_and_never_that_it_ended_well(tmp_path):
    """A healthy-looking run (losses below the unigram entropy, diverse samples) whose loop raised: the verdict
    leads with the failure the log recorded, then what the model was doing until then."""
    events = scripted_run([198, 40, 30, 35, 38], val_losses=[8.3, 6.0, 5.2, 4.9, 4.8], ln_vocab=math.log(4096),
                          unigram_entropy=6.5, end=None)
    last = events[-1].step
    events.append(RunEnded(step=last, time=events[-1].time + 1, reason="error",
                           error="RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"))
    d = diagnosed(tmp_path / "2026-01-01T00-00-00_h256_lr1.5e-3.jsonl", events)
    assert d.disease == "healthy" and not d.trouble
    assert d.failed == f"error at step {last}: RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert d.headline().startswith(f"the run failed (error at step {last}: RuntimeError: CUDA out of memory")
    assert d.headline().endswith("until then: healthy")
    assert d.headline(short=True) == f"error at step {last}; healthy"
    assert d.to_json()["failed"] == d.failed
    ok = diagnosed(tmp_path / "2026-01-01T00-00-01_h256_lr1.5e-3.jsonl", events[:-1] + [
        RunEnded(step=last, time=events[-1].time + 1, reason="stopped")])
    assert not ok.failed and ok.headline() == "healthy"


def test_without_a_held_out_loss_the_figures_say_the_state_rests_on_the_samples_alone(tmp_path):
    events = [dataclasses.replace(e, val_loss=None) if isinstance(e, EvalDone) else e  # a loop with no val_batches
              for e in scripted_run([198, 40, 30])]
    d = diagnosed(tmp_path / "2026-01-01T00-00-00_h64_lr1e-3.jsonl", events)
    figures = dict(d.figures)
    assert figures["held-out loss"].startswith("none measured: the state is read from the greedy samples alone")
    assert "held-out loss now" not in figures
