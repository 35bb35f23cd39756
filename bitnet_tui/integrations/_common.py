"""What both trainer callbacks need: held-out batches on the model's device, and configs the log can hold."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from bitnet_tui.instrument.config import MonitorConfig
from bitnet_tui.instrument.sinks import open_session


def to_device(obj: Any, device: torch.device) -> Any:
    """``obj`` with every tensor in it (in tuples, lists and dicts, as batches come) moved to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


def plain(v: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of a trainer's settings: numbers, strings, booleans, lists and dicts of them; anything
    else (an enum, a dtype, a path, a non-finite float) as its text."""
    if depth > 8:
        return str(v)[:200]
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, Mapping):
        return {str(k): plain(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x, depth + 1) for x in v]
    return str(v)[:200]


def merged(base: dict[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` with ``override`` laid over it, dicts merged key by key (the user's config wins)."""
    out = dict(base)
    for k, v in (override or {}).items():
        out[k] = merged(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, Mapping) else v
    return out


def first_lr(optimizer: Any) -> float | None:
    groups = getattr(optimizer, "param_groups", None) or []
    return float(groups[0]["lr"]) if groups and "lr" in groups[0] else None


def monitor_options(user: Mapping[str, Any], **known: Any) -> MonitorConfig:
    """The Monitor's options: ``known`` (what the callback read from its trainer) with the user's keywords laid
    over it. An unknown keyword is a ``TypeError`` naming it, raised when the callback is made."""
    names = {f.name for f in fields(MonitorConfig)}
    bad = sorted(set(user) - names)
    if bad:
        raise TypeError(f"unknown Monitor option(s): {', '.join(bad)} (the fields of bitnet_tui.MonitorConfig)")
    return MonitorConfig(**{**known, **user})


class LogClaim:
    """A callback's session log, known before its trainer starts: the first read of :attr:`path` creates the file
    (named after ``run_name``, or ``default_name`` when none was given) and the next training run writes it; a
    run after that one gets a new file. On a rank other than 0 (``RANK``, as torchrun sets it) there is none."""

    def __init__(self, session_path: Any, sessions_dir: str | None, run_name: str | None, default_name: str) -> None:
        self._given = Path(session_path) if session_path is not None else None
        self._dir, self._name = sessions_dir, run_name or default_name
        self._claimed: Path | None = None

    def path(self) -> Path | None:
        """The log the next training run writes (created now if it was not yet)."""
        if os.environ.get("RANK", "0") != "0":
            return None
        if self._claimed is None:
            self._claimed = self._given if self._given is not None else open_session(None, self._dir, self._name)
        return self._claimed

    def take(self) -> Path | None:
        """The log claimed for this run, if one was (None: the Monitor names its own); the next run claims anew."""
        claimed, self._claimed = self._claimed, None
        return claimed
