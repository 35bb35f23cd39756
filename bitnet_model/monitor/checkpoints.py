"""A run's checkpoint directory: saved through the run's own ``save(path)``, newest few kept, asked-for ones pinned.

The directory sits beside the session log (``<name>.ckpt/``), is created 0700 and refused when it is not
safely the run's (:func:`bitnet_model.safefs.private_dir`). Periodic checkpoints beyond the newest
``keep`` are deleted; the ones a person asked for (``c``, ``ctl checkpoint``) and the final one stay.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bitnet_model.safefs import private_dir, remove_stale_tmp


def list_checkpoints(ckpt_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoints in a run's checkpoint directory (``stepNNNNNNNN*``), by step."""
    d = Path(ckpt_dir)
    out = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(d):
            name = entry.name
            if not name.startswith("step") or name.endswith(".tmp") or entry.is_symlink():
                continue
            digits = name[4:12]
            if digits.isdigit():
                out.append((int(digits), Path(entry.path)))
    return sorted(out)


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
        self._ready = False

    def prepare(self) -> list[Path]:
        """Create (or check) the directory and remove a killed run's temporary files; returns those removed."""
        private_dir(self.directory)
        self._ready = True
        return remove_stale_tmp(self.directory)

    def path_for(self, step: int) -> Path:
        return self.directory / f"step{step:08d}{self.suffix}"

    def save(self, step: int, *, pinned: bool = False) -> tuple[Path, tuple[str, ...]]:
        """Save the checkpoint of ``step``; returns its path and the periodic checkpoints pruned. Raises whatever
        ``save`` raises (the caller alerts and pauses)."""
        if not self._ready:
            self.prepare()
        path = self.path_for(step)
        self._save(path)
        if pinned:
            self.pinned.add(path)
        return path, self._prune(keep_also=path)

    def _prune(self, keep_also: Path) -> tuple[str, ...]:
        if self.keep <= 0:
            return ()
        periodic = [p for _, p in list_checkpoints(self.directory) if p not in self.pinned and p != keep_also]
        doomed = periodic[: max(0, len(periodic) - (self.keep - 1))]
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
