"""Building a planned run (torch): data, model, the parent's checkpoint, the log, the Monitor.

:func:`build_run` loads data and model (errors surface here, before any log exists unless a parent process
claimed one) and returns a :class:`~bitnet_tui.app.runs.local.LocalRun`, not started.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bitnet_model.train.checkpoint import CheckpointError
from bitnet_model.train.config import RunConfig
from bitnet_model.train.trainer import Trainer
from bitnet_tui.app.runs.local import LocalRun
from bitnet_tui.app.runs.plan import RunPlan, claim_session, plan_run
from bitnet_tui.instrument.for_trainer import monitor_for
from bitnet_tui.session.log.paths import SUFFIX


def build_run(plan: RunPlan, *, session_file: str | Path | None = None, argv: list[str] | None = None,
              checkpoint_every: int = 0, keep_checkpoints: int = 3, on_nonfinite: str = "pause",
              control: bool = False, tensorboard: str | None = None, autopilot: bool = False) -> Any:
    """Load data and model (and the parent's checkpoint, falling back to older ones that load), then claim the
    log (unless ``session_file`` was claimed by a parent process) and attach the Monitor."""
    argv = argv if argv is not None else sys.argv
    tried: list[str] = []
    for ck in plan.checkpoints or [None]:
        parent = dict(plan.parent, checkpoint=str(ck)) if plan.parent else None
        trainer = Trainer(plan.cfg, argv=argv, parent=parent, init_from=ck, on_nonfinite=on_nonfinite)
        try:
            trainer.setup()
        except CheckpointError as e:
            if ck is None or ck == plan.checkpoints[-1]:
                raise
            tried.append(f"{Path(ck).name} does not load ({e})")
            continue
        if parent is not None:
            parent["step"] = trainer.loaded_step
        break
    if tried:
        plan.notes.append("; ".join(tried) + f"; continuing from {Path(ck).name}")  # type: ignore[arg-type]
    if session_file:
        path: Path | None = Path(session_file)
    else:
        path = claim_session(plan) if trainer.rank == 0 else None  # rank 0 alone writes the log
    trainer.run_name = path.name.removesuffix(SUFFIX) if path else plan.label
    mon = monitor_for(trainer, path, control=control, checkpoint_every=checkpoint_every,
                      keep_checkpoints=keep_checkpoints, tensorboard=tensorboard, autopilot=autopilot)
    try:
        mon.prepare()  # the run's other files, claimed before anything starts
    except Exception:
        if path is not None and not session_file and path.exists() and path.stat().st_size == 0:
            path.unlink()
        raise
    return LocalRun(trainer, plan, path, options={
        "checkpoint_every": checkpoint_every, "keep_checkpoints": keep_checkpoints, "on_nonfinite": on_nonfinite,
        "control": control, "tensorboard": tensorboard, "autopilot": autopilot}, forker=fork_run)


def fork_run(run: LocalRun, step: int, lr: float) -> LocalRun:
    """A new run continuing ``run`` from its checkpoint at ``step`` with peak LR ``lr`` (a linked session)."""
    path = run.session_path
    assert path is not None
    plan = plan_run({"lr": lr}, sessions=str(path.parent), fork=f"{path}@{step}")
    prog = list(run.trainer.argv[:1]) or ["bitnet-tui"]
    argv = [*prog, "run", "--from", f"{run.run_name}@{step}", "--lr", repr(lr)]
    return build_run(plan, argv=argv, **run.options)


def prepare_run(knobs: dict[str, Any], *, sessions: str | None = None, resume: str | None = None,
                fork: str | None = None, base: RunConfig | None = None, **build: Any) -> Any:
    """:func:`plan_run` then :func:`build_run`: a LocalRun, not started."""
    return build_run(plan_run(knobs, sessions=sessions, resume=resume, fork=fork, base=base), **build)
