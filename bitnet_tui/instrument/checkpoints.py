"""A run's checkpoint directory: saved through the run's own ``save(path)``, newest few kept, asked-for ones pinned.

The directory sits beside the session log (``<name>.ckpt/``), is created 0700 and refused when it is not
safely the run's (:func:`bitnet_tui.session.safefs.private_dir`). Periodic checkpoints beyond the newest
``keep`` are deleted; the ones a person asked for (``c``, ``ctl checkpoint``) and the final one stay.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bitnet_tui.session.log.events import Alert, CheckpointSaved
from bitnet_tui.session.log.paths import list_checkpoints
from bitnet_tui.session.safefs import private_dir, remove_stale_tmp


class CheckpointStore:
    """Saves checkpoints with ``save(path)`` (which writes a file or a directory) and prunes old periodic ones."""

    def __init__(self, directory: str | os.PathLike[str], save: Callable[[Path], Any], *, keep: int = 3,
                 suffix: str = "") -> None:
        self.directory = Path(directory)
        self._save = save
        self.keep = keep
        """Periodic checkpoints kept (0: all)."""
        self.suffix = suffix
        self.pinned: set[Path] = set()

    def prepare(self) -> list[Path]:
        """Create (or check) the directory and remove a killed run's temporary files; returns those removed."""
        private_dir(self.directory)
        return remove_stale_tmp(self.directory)

    def path_for(self, step: int) -> Path:
        return self.directory / f"step{step:08d}{self.suffix}"

    def save(self, step: int, *, pinned: bool = False) -> tuple[Path, tuple[str, ...]]:
        """Save the checkpoint of ``step``; returns its path and the periodic checkpoints pruned. Raises whatever
        ``save`` raises (the caller alerts and pauses)."""
        private_dir(self.directory)  # (re)made if someone deleted it under the run; refused if not ours
        path = self.path_for(step)
        self._save(path)
        if pinned:
            self.pinned.add(path)
        return path, self._prune(keep_also=path)

    def _prune(self, keep_also: Path) -> tuple[str, ...]:
        if self.keep <= 0:
            return ()
        # The newest ``keep`` periodic ones stay; the one just saved counts among them unless it is pinned (asked
        # for, or the final one), so a pinned save never costs a periodic checkpoint.
        periodic = [p for _, p in list_checkpoints(self.directory) if p not in self.pinned]
        doomed = [p for p in periodic[: max(0, len(periodic) - self.keep)] if p != keep_also]
        removed = []
        for p in doomed:
            try:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
                removed.append(str(p))
            except OSError:
                continue
        return tuple(removed)


def _free(store: CheckpointStore) -> str:
    try:
        return f"; {shutil.disk_usage(store.directory.parent).free / 2**20:,.0f} MiB free on that disk"
    except OSError:
        return ""


def save_with_retry(store: CheckpointStore | None, step: int, *, pinned: bool, emit: Callable[[Any], None],
                    steering: Any, resume_after: bool = True) -> None:
    """Save the checkpoint of ``step``; when saving fails (a full disk) say so once, pause, and retry every few
    seconds until it works, or until a stop arrives (then the run ends without it). The partial file is gone
    already (:func:`bitnet_tui.session.safefs.atomic_write`)."""
    if store is None:
        emit(Alert(step=step, time=time.time(), level="warning", code="checkpoint",
                   message="this run has no save function; nothing was saved"))
        return
    failed = False
    while True:
        try:
            path, removed = store.save(step, pinned=pinned)
        except Exception as e:
            if not failed:
                emit(Alert(step=step, time=time.time(), level="error", code="checkpoint",
                           message=f"checkpoint failed ({type(e).__name__}: {str(e)[:300]}{_free(store)}); training "
                                   "is paused and the checkpoint is retried every 5 s until it succeeds (stop ends "
                                   "the run)"))
                failed = True
            steering.pause_by("auto: checkpoint failed")  # again, if someone resumed meanwhile
            if steering.take_stop(timeout=5.0):
                return
            continue
        emit(CheckpointSaved(step=step, time=time.time(), path=str(path), pinned=pinned, removed=removed))
        if failed and resume_after:
            steering.resume_by("auto: checkpoint saved")
        return


def kept_steps(store: CheckpointStore | None) -> list[int]:
    """The steps of the checkpoints a store holds now (none without a store)."""
    return [c for c, _ in list_checkpoints(store.directory)] if store is not None else []


def store_for(save: Callable[[Path], Any] | None, *, keep: int, suffix: str) -> CheckpointStore | None:
    """The store a Monitor saves through (its directory is set when the log is claimed), or None without ``save``."""
    return CheckpointStore(Path("."), save, keep=keep, suffix=suffix) if save is not None else None
