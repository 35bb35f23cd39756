"""Named configurations. ``seed-report`` reproduces the report's contrast on a 2-core CPU (see docs/seed-report.md)."""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    "seed-report": {
        "about": "the report's LR contrast (1.5e-3 vs 5e-4) and a higher one, same model and data; "
                 "measured in docs/seed-report.md",
        "knobs": {"hidden": 64, "steps": 600, "eval_every": 25},
        "sweep": {"lr": [5e-3, 1.5e-3, 5e-4]},
    },
}


def preset(name: str) -> dict[str, Any]:
    from bitnet_model.train.config import ConfigError

    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
