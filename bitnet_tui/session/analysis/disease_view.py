"""The measured diseases as rows: for ``export`` (one figure a row) and the dashboard's diseases panel.

Everything here reads the fold (the last eval's ``probes``, the last weight snapshot, the timeline's disease
alerts), so the panel, the export and ``diagnose`` say the same thing. No torch.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from bitnet_tui.session.analysis.diseases import CODES, ONE_OFF, DiseaseConfig
from bitnet_tui.session.text import printable

PROBE_COLS = ("step", "where", "figure", "value")
"""The columns of ``export``'s probes.csv."""


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


def probe_rows(probes: Any) -> list[tuple[str, str, float]]:
    """(where, figure, value) of every finite figure of an eval's ``probes``, in a stable order."""
    if not isinstance(probes, dict):
        return []
    out: list[tuple[str, str, float]] = []
    for name, f in sorted(_dict(probes.get("act")).items()):
        for k in ("zero", "sat", "crest", "crest_max"):
            v = _finite(f.get(k)) if isinstance(f, dict) else None
            if v is not None:
                out.append((printable(name, 200), f"act_{k}", v))
    for name, f in sorted(_dict(probes.get("attn")).items()):
        if not isinstance(f, dict):
            continue
        ents = [x for x in (_finite(e) for e in _list(f.get("entropy"))) if x is not None]
        for i, e in enumerate(ents):
            out.append((printable(name, 200), f"attn_entropy_h{i}", e))
        v = _finite(f.get("max_logit"))
        if v is not None:
            out.append((printable(name, 200), "attn_max_logit", v))
    for k in ("log_z", "logit_max"):
        v = _finite(probes.get(k))
        if v is not None:
            out.append(("output", k, v))
    return out


def disease_states(fold: Any) -> dict[str, tuple[bool, int, str]]:
    """Per disease code seen in the timeline: (on now, step of its last alert, that alert's text). A code is on
    while some layer's alert has not been cleared (each rule clears what it raised, per layer)."""
    out: dict[str, tuple[bool, int, str]] = {}
    open_: dict[str, int] = {}
    for item in getattr(fold, "timeline", []):
        if item.kind == "alert" and item.code in CODES:
            open_[item.code] = max(0, open_.get(item.code, 0) + (1 if item.level != "info" else -1))
            out[item.code] = (open_[item.code] > 0, item.step, item.text)
    return out


def disease_rows(fold: Any, cfg: DiseaseConfig | None = None) -> list[tuple[str, str, str, str]]:
    """(disease, figure now, threshold, state) for every disease: the figures from the last eval and snapshot."""
    c = cfg or DiseaseConfig()
    probes = fold.last_eval.probes if getattr(fold, "last_eval", None) is not None else {}
    probes = probes if isinstance(probes, dict) else {}
    w = getattr(fold, "last_weights", None)
    layers = w.layers if w is not None else ()
    ratios = [lw.update_ratio for lw in layers if _finite(lw.update_ratio) is not None]
    act = [(n, _finite(f.get("zero"))) for n, f in _dict(probes.get("act")).items() if isinstance(f, dict)]
    act = [(n, z) for n, z in act if z is not None]
    attn = [(n, f) for n, f in _dict(probes.get("attn")).items() if isinstance(f, dict)]
    ents = [statistics.fmean(e) for _, f in attn if (e := [x for x in map(_finite, _list(f.get("entropy")))
                                                            if x is not None])]
    logits = [v for _, f in attn if (v := _finite(f.get("max_logit"))) is not None]
    backs = [lw.flip_back for lw in layers if _finite(lw.flip_back) is not None]
    loss = getattr(fold, "loss", math.nan)

    def fig(vals: list[float], fmt: str, pick: Any = max) -> str:
        return format(pick(vals), fmt) if vals else "not measured"

    figures = {
        "loss-spike": (f"loss {loss:.3f}" if _finite(loss) is not None else "no step yet", f"z >= {c.spike_z:g} sd"),
        "update-ratio": (fig(ratios, ".3g") + (" (largest)" if ratios else ""), f">= {c.ratio_high:g} per step"),
        "frozen-layer": (f"{sum(1 for r in ratios if r <= c.ratio_frozen)} of {len(ratios)} layers still"
                         if ratios else "not measured", f"ratio <= {c.ratio_frozen:g}"),
        "act-clip": (fig([z for _, z in act], ".0%") + (" at 0 (worst)" if act else ""), f">= {c.clip_zero:.0%}"),
        "attn-entropy": (fig(ents, ".2f", min) + (" (lowest layer)" if ents else ""), f"< {c.entropy_low:g}"),
        "attn-logit": (fig(logits, ".1f"), f">= {c.attn_logit_high:g}"),
        "logit-z": (f"log Z {v:.2f}" if (v := _finite(probes.get("log_z"))) is not None else "not measured",
                    f"drift >= {c.log_z_drift:g}"),
        "flip-back": (fig(backs, ".0%", statistics.fmean), f">= {c.flip_back_high:.0%}"),
        "quant-shock": ("at a stage change", f"rise >= {c.shock_rise:g} nats"),
    }
    states = disease_states(fold)
    out = []
    for code, name in CODES.items():
        figure, threshold = figures[code]
        st = states.get(code)
        if st is None:
            state = "ok"
        elif code in ONE_OFF:
            state = f"seen (step {st[1]})"
        else:
            state = f"ALERT (step {st[1]})" if st[0] else f"cleared (step {st[1]})"
        out.append((name, figure, threshold, state))
    return out


def attention_rows(probes: Any) -> list[tuple[str, list[float], float | None]]:
    """(layer, per-head normalised entropy, max q.k/sqrt(d)) of an eval's probes."""
    out = []
    for name, f in sorted(_dict(_dict(probes).get("attn")).items()):
        if isinstance(f, dict):
            ents = [x for x in map(_finite, _list(f.get("entropy"))) if x is not None]
            out.append((printable(name, 80), ents, _finite(f.get("max_logit"))))
    return out
