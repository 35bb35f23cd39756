"""Named configurations. ``seed-report`` runs the report's own configuration (see docs/seed-report.md).

A preset is fixed ``knobs`` plus either ``sweep`` (knob -> values, every combination) or ``grid`` (the
points themselves), and optionally ``runs``: more runs with their own knobs and run options (``autopilot``).
``run --preset`` takes the first point; ``sweep --preset`` runs them all. ``measured``: how long that took,
where it was measured (``sweep --preset NAME --help`` says so).
"""

from __future__ import annotations

from typing import Any

from bitnet_tui.session.errors import ConfigError

PRESETS: dict[str, dict[str, Any]] = {
    "seed-report": {
        "about": "the report's configuration (width 256, 4 layers, 4 heads, ReLU² FFN 2x width, batch 4 x 32, "
                 "decay 0.1 on every parameter, vocabulary 50,257, warmup 375) at its two LRs, with PyTorch's Adam "
                 "(coupled L2, as the report trained) and with AdamW, for the first 1,000 steps of its 30,000-step "
                 "schedule (warmup, then the LR stays within 3% of the peak: run here as warmup + constant); "
                 "measured in docs/seed-report.md",
        "knobs": {"hidden": 256, "layers": 4, "heads": 4, "ffn": 512, "ffn_act": "relu2", "batch_size": 4,
                  "context": 32, "vocab_size": 50257, "decay_all": True, "weight_decay": 0.1, "steps": 1000,
                  "warmup_steps": 375, "eval_every": 50, "schedule": "constant"},
        "sweep": {"optimizer": ["adam", "adamw"], "lr": [1.5e-3, 5e-4]},
        "runs": [{"label": "optimizer=adam lr=0.0015 autopilot (decouple live)",
                  "knobs": {"optimizer": "adam", "lr": 1.5e-3}, "autopilot": True}],
        "measured": "8 min 2 s for the five runs, two at a time (--jobs 2), on a 2-core AMD EPYC (docs/seed-report.md)",
    },
}


def preset(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name[:40]!r}; known: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
