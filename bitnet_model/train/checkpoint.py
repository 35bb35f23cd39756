"""Checkpoints: plain tensors and Python scalars, saved atomically, loaded without unpickling code.

``torch.load(..., weights_only=True)`` refuses any pickle that would build an
object other than tensors, dicts, lists, tuples, strings and numbers, so a
malicious checkpoint cannot run code; it is refused with a clear error.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from bitnet_model.errors import UserError
from bitnet_model.safefs import atomic_write
from bitnet_model.train.config import MAX_STEPS

FORMAT = "bitnet-tui-checkpoint"
VERSION = 2
READABLE = (1, 2)
"""Version 1 (before the Monitor) still loads: its weights, optimizer and data order; LR changes restart."""


class CheckpointError(UserError, ValueError):
    """A checkpoint is missing, corrupt, unsafe or from something else. One user-facing sentence."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically: a fresh temporary file (never through a planted symlink), fsync,
    rename, fsync the directory (:func:`bitnet_model.safefs.atomic_write`). Any failure (``torch.save`` raises
    ``RuntimeError`` on a full disk) removes the partial file and is re-raised."""
    return atomic_write(path, lambda f: torch.save({"format": FORMAT, "version": VERSION, **state}, f))


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path} was refused: it holds objects other than tensors and plain data "
                              f"({str(e).splitlines()[0][:160]})") from None
    except (zipfile.BadZipFile, RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__}: {str(e)[:160]})") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a bitnet-tui checkpoint")
    if ck.get("version") not in READABLE:
        raise CheckpointError(f"{path} is checkpoint version {str(ck.get('version'))[:20]!r}; this bitnet-tui reads "
                              f"{', '.join(map(str, READABLE))}")
    step = ck.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEPS:
        raise CheckpointError(f"{path} has an unusable step ({str(step)[:40]!r})")
    for key, kind in (("config", dict), ("model", dict), ("optimizer", dict)):
        if not isinstance(ck.get(key), kind):
            raise CheckpointError(f"{path} has no usable {key}")
    return ck
