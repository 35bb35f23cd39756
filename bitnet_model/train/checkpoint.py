"""Checkpoints: plain tensors and Python scalars, saved atomically, loaded without unpickling code.

``torch.load(..., weights_only=True)`` refuses any pickle that would build an
object other than tensors, dicts, lists, tuples, strings and numbers, so a
malicious checkpoint cannot run code; it is refused with a clear error.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from bitnet_model.errors import UserError

FORMAT = "bitnet-tui-checkpoint"
VERSION = 1


class CheckpointError(UserError, ValueError):
    """A checkpoint is missing, corrupt, unsafe or from something else. One user-facing sentence."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temp file + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save({"format": FORMAT, "version": VERSION, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


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
    if ck.get("version") != VERSION:
        raise CheckpointError(f"{path} is checkpoint version {ck.get('version')!r}; this bitnet-tui reads {VERSION}")
    return ck


def list_checkpoints(ckpt_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoints in a run's checkpoint directory, by step."""
    d = Path(ckpt_dir)
    out = []
    if d.is_dir():
        for p in d.glob("step*.pt"):
            try:
                out.append((int(p.stem[4:]), p))
            except ValueError:
                continue
    return sorted(out)
