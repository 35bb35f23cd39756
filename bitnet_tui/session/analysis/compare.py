"""The compare table (the report's Phase 4 table): what differs between runs, and what their decoding did.

Parents and children line up by step: sessions are ordered by the step they start at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bitnet_tui.session.analysis.summary import KEY_CONFIG, Summary
from bitnet_tui.session.log.events import jsonable

SHORT_NAMES = {
    "model.hidden": "hidden", "train.lr": "lr", "train.label_smoothing": "ls", "train.grad_clip": "clip",
    "train.schedule": "schedule", "model.quant": "quant", "train.steps": "steps", "train.seed": "seed",
    "model.layers": "layers", "model.heads": "heads", "model.ffn": "ffn", "model.context": "context",
    "train.batch_size": "batch", "train.weight_decay": "wd", "data.data": "data", "train.optimizer": "optimizer",
    "train.decay_all": "decay all", "model.ffn_act": "ffn act", "train.warmup_steps": "warmup",
    "model.vocab_size": "vocab",
}



def flatten_config(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-3}}`` -> ``{"train.lr": 1e-3}``."""
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten_config(v, key + "."))
        else:
            out[key] = v
    return out


_MISSING = object()


def differing_keys(configs: Sequence[dict[str, Any]]) -> list[str]:
    """Dotted config keys whose values are not the same in all ``configs`` (a missing key differs).

    Keys that only locate files on the machine (``data.cache_dir``) are left out.
    Sorted with the settings the report varied first.
    """
    if len(configs) < 2:
        return []
    flat = [flatten_config(c) for c in configs]
    keys: set[str] = set().union(*flat)
    keys.discard("data.cache_dir")
    out = [k for k in keys if len({repr(f.get(k, _MISSING)) for f in flat}) > 1]
    order = {f"{a}.{b}": i for i, (_, (a, b)) in enumerate(KEY_CONFIG)}
    return sorted(out, key=lambda k: (order.get(k, len(order)), k))


def short_key(key: str) -> str:
    return SHORT_NAMES.get(key, key)


@dataclass(frozen=True)
class CompareRow:
    name: str
    path: str
    status: str
    differs: dict[str, Any]
    """The differing keys' values for this session, by dotted key."""
    min_unique: int | None
    min_unique_step: int | None
    collapse_step: int | None
    recovery_step: int | None
    final_unique: int | None
    final_loss: float | None
    final_val_loss: float | None
    last_step: int
    verdict: str
    parent: str | None = None
    first_step: int = 0


@dataclass(frozen=True)
class CompareTable:
    keys: list[str]
    """Config keys that differ across the sessions (dotted), in display order."""
    rows: list[CompareRow]

    def to_json(self) -> dict[str, Any]:
        return jsonable({"differing_keys": self.keys, "sessions": [asdict(r) for r in self.rows]})


def compare(summaries: Sequence[Summary]) -> CompareTable:
    """One row per session, showing only the configuration that differs among them.

    Parents and children line up by step: sessions are ordered by the step they start at, so a fork
    sits below its parent, and its collapse and recovery steps are on the parent's step axis.
    """
    keys = differing_keys([s.config for s in summaries])
    rows = []
    for s in sorted(summaries, key=lambda s: (s.first_step, s.started)):
        flat = flatten_config(s.config)
        rows.append(
            CompareRow(
                name=s.name, path=s.path, status=s.status, differs={k: flat.get(k) for k in keys},
                min_unique=s.min_unique, min_unique_step=s.min_unique_step, collapse_step=s.collapse_step,
                recovery_step=s.recovery_step, final_unique=s.last_unique, final_loss=s.last_loss,
                final_val_loss=s.last_val_loss, last_step=s.last_step, verdict=s.verdict,
                parent=s.parent, first_step=s.first_step,
            )
        )
    return CompareTable(keys=keys, rows=rows)

