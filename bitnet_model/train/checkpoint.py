"""Checkpoints: plain tensors and Python scalars, saved atomically, loaded without unpickling code.

``torch.load(..., weights_only=True)`` refuses any pickle that would build an
object other than tensors, dicts, lists, tuples, strings and numbers, so a
malicious checkpoint cannot run code; it is refused with a clear error. Only a
regular file is opened (a FIFO or a device never blocks the load), and the
fields a run reads back (step, config, the Monitor's state) are checked here, so
a checkpoint that loads but holds the wrong things is refused like a corrupt one.
"""

from __future__ import annotations

import math
import pickle
import re
import warnings
import zipfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from bitnet_model.train.config import MAX_STEPS, RunConfig
from bitnet_tui.session.analysis.detector import CollapseDetector
from bitnet_tui.session.control.commands import check_lr
from bitnet_tui.session.errors import ConfigError, UserError
from bitnet_tui.session.log.errors import SessionError
from bitnet_tui.session.log.reader import open_regular
from bitnet_tui.session.safefs import atomic_write

FORMAT = "bitnet-tui-checkpoint"
VERSION = 2
READABLE = (1, 2)
"""Version 1 (before the Monitor) still loads: its weights, optimizer and data order; LR changes restart."""


class CheckpointError(UserError, ValueError):
    """A checkpoint is missing, corrupt, unsafe or from something else. One user-facing sentence."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically: a fresh temporary file (never through a planted symlink), fsync,
    rename, fsync the directory (:func:`bitnet_tui.session.safefs.atomic_write`). Any failure (``torch.save`` raises
    ``RuntimeError`` on a full disk) removes the partial file and is re-raised."""
    return atomic_write(path, lambda f: torch.save({"format": FORMAT, "version": VERSION, **state}, f))


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory")
    try:
        f = open_regular(path)  # a FIFO or a device is refused here instead of blocking the load
    except SessionError as e:
        raise CheckpointError(f"checkpoint {e}") from None
    try:  # torch warns (two lines, on stderr) about a raw pickle's protocol before refusing it: our sentence says it
        with f, warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            ck = torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's own words advise loading it unsafely: only the reason it gives is quoted
        why = str(e).partition("WeightsUnpickler error:")[2].partition("Check the documentation")[0]
        why = " ".join(why.split())[:120]
        raise CheckpointError(f"{path} was refused: it holds objects other than tensors and plain data, or is not "
                              f"a torch checkpoint (loading it could run code){f'; {why}' if why else ''}") from None
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
    try:
        RunConfig.from_dict(ck["config"])
    except (ConfigError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path} has an unusable config ({str(e)[:160]})") from None
    why = _monitor_problem(ck.get("monitor", {}))
    if why:
        raise CheckpointError(f"{path} has an unusable monitor state ({why})")
    named = re.fullmatch(r"step0*(\d+)\.pt", Path(path).name)
    saved = ck.get("monitor", {}).get("step", step)
    if saved != step or (named and int(named.group(1)) != step):
        raise CheckpointError(f"{path} disagrees with itself about its step (step {step}, the Monitor's state "
                              f"{str(saved)[:20]}, the file name {Path(path).name[:40]!r})")
    return ck


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_KINDS = {"str": lambda v: isinstance(v, str), "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "bool": lambda v: isinstance(v, bool), "float": _is_number,
          "list[float]": lambda v: isinstance(v, list) and all(_is_number(x) for x in v)}
_DETECTOR = {f.name: str(f.type) for f in fields(CollapseDetector) if f.name != "cfg"}
"""The detector's saved fields and their declared types ("int | None", ...), checked before it loads them."""


def _monitor_problem(m: Any) -> str:
    """What is wrong with a checkpoint's Monitor state (what Monitor.load_state_dict reads), or ""."""
    if not isinstance(m, dict):
        return "not a mapping"
    step = m.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEPS:
        return f"step {str(step)[:40]!r}"
    lr = m.get("lr", {})
    if not isinstance(lr, dict) or not isinstance(lr.get("rules", []), list):
        return "LR rules"
    for rule in lr.get("rules", []):
        if not (isinstance(rule, (list, tuple)) and len(rule) == 2 and _is_number(rule[0])
                and (rule[1] is None or _is_number(rule[1]) and math.isfinite(rule[1]) and rule[1] >= 0)):
            return f"LR rule {str(rule)[:40]!r}"
        try:
            check_lr(rule[0])
        except ConfigError as e:
            return str(e)
    sched = lr.get("scheduled")
    if sched is not None and not (_is_number(sched) and math.isfinite(sched) and sched >= 0):
        return f"scheduled LR {str(sched)[:40]!r}"
    det = m.get("detector", {})
    if not isinstance(det, dict):
        return "detector state"
    for name, value in det.items():
        kind = _DETECTOR.get(name)
        if kind is None:
            continue  # ignored when loaded
        options = kind.split(" | ")
        if not ((value is None and "None" in options) or any(_KINDS.get(o, lambda v: True)(value) for o in options
                                                              if o != "None")):
            return f"detector {name} {str(value)[:40]!r}"
    watcher = m.get("watcher", {})
    if not isinstance(watcher, dict) or not all(isinstance(v, torch.Tensor) for v in watcher.values()):
        return "weight snapshot state"
    return ""
