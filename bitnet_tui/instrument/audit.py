"""The optimizer audit at start: settings known to hurt ternary training, each with what to change.

Absmean ternary quantisation is scale-invariant: nothing in the loss resists the latent weights shrinking.
So L2 decay coupled into Adam's gradient (``torch.optim.Adam(weight_decay>0)``, which Adam then normalises
into a fixed-size pull toward zero on every weight) can shrink the ternary scales until the model unlearns
(docs/seed-report.md measures it). Decay on norm gains and embeddings removes the scale the network keeps
outside the ternary layers. These are findings about the configuration, shown as warnings with a fix; the
run's own figures (ternary scale, held-out loss) say whether they hurt this run.
"""

from __future__ import annotations

import time
from typing import Any

import torch.nn as nn

from bitnet_tui.instrument.unigram import HELD_OUT
from bitnet_tui.instrument.weights import unwrap
from bitnet_tui.session.log.events import Alert


def _finding(code: str, message: str, fix: str, level: str = "warning") -> dict[str, Any]:
    return {"code": code, "level": level, "message": message, "fix": fix}


def param_kinds(model: Any) -> dict[int, str]:
    """id(parameter) -> "norm", "embedding", "bias" or "weight"."""
    kinds: dict[int, str] = {}
    for m in unwrap(model).modules():
        for pname, p in m.named_parameters(recurse=False):
            if isinstance(m, nn.Embedding):
                kinds[id(p)] = "embedding"
            elif "Norm" in type(m).__name__:
                kinds[id(p)] = "norm"
            elif pname == "bias" or p.dim() < 2:
                kinds[id(p)] = "bias"
            else:
                kinds[id(p)] = "weight"
    return kinds


def describe(optimizer: Any, model: Any) -> dict[str, Any]:
    """What the header records of an optimizer: its class, LR, betas, weight decay and where decay applies."""
    opt = getattr(optimizer, "optimizer", optimizer)  # accelerate / HF wrappers hold the real one
    groups = getattr(opt, "param_groups", [])
    kinds = param_kinds(model)
    decayed: set[str] = set()
    for g in groups:
        if float(g.get("weight_decay", 0) or 0) > 0:
            decayed |= {kinds.get(id(p), "other") for p in g["params"]}
    g0 = groups[0] if groups else {}
    coupled = type(opt).__name__ == "Adam" and not g0.get("decoupled_weight_decay", False)
    return {
        "name": type(opt).__name__,
        "lr": float(g0["lr"]) if "lr" in g0 else None,
        "betas": list(g0["betas"]) if "betas" in g0 else None,
        "weight_decay": max((float(g.get("weight_decay", 0) or 0) for g in groups), default=0.0),
        "decay": "coupled L2 (added to the gradient)" if coupled else "decoupled",
        "decay_on": sorted(decayed),
        "fused": bool(g0.get("fused", False)),
    }


def audit(optimizer: Any, model: Any, *, peak_lr: float | None = None, hidden: int | None = None,
          schedule: str | None = None) -> list[dict[str, Any]]:
    """Findings about an optimizer (and, for bitnet-tui's own runs, the schedule): {code, level, message, fix}."""
    from bitnet_model.train.config import auto_lr

    d = describe(optimizer, model)
    out = []
    if d["name"] == "Adam" and d["weight_decay"] > 0 and d["decay"].startswith("coupled"):
        out.append(_finding(
            "coupled-l2",
            f"torch.optim.Adam with weight_decay={d['weight_decay']:g} adds L2 decay to the gradient, which Adam "
            "normalises into a steady pull toward zero on every weight; ternary quantisation is scale-invariant, "
            "so nothing resists it and the ternary scales can shrink until the model unlearns",
            "use AdamW (decoupled weight decay): --optimizer adamw, or torch.optim.AdamW in your loop"))
    bad = [k for k in ("norm", "embedding", "bias") if k in d["decay_on"]]
    if bad and d["weight_decay"] > 0:
        what = {"norm": "norm gains", "embedding": "embeddings", "bias": "biases"}
        out.append(_finding(
            "decay-all",
            f"weight decay {d['weight_decay']:g} applies to {', '.join(what[k] for k in bad)}: these carry the scale "
            "the network keeps outside its ternary layers",
            "decay 2-D weights only (bitnet-tui's default; drop --decay-all), as LLaMA and the BitNet FAQ do"))
    lr = peak_lr if peak_lr is not None else d["lr"]
    if lr and hidden:
        faq = auto_lr(hidden)
        if lr > 3 * faq or lr < faq / 10:
            out.append(_finding(
                "lr-far", f"peak LR {lr:g} is far from the BitNet FAQ's {faq:g} for a model of width {hidden}",
                f"try --lr {faq:g} (the FAQ's table); the FAQ measures models from 700M parameters up", level="info"))
    if schedule is not None and schedule not in ("two-stage",):
        out.append(_finding(
            "schedule", f"schedule {schedule} is not the BitNet FAQ's two-stage recipe",
            "--schedule two-stage (warmup, linear decay, a lower second stage without weight decay)", level="info"))
    return out


def audit_findings(optimizer: Any, model: Any, inputs: dict[str, Any] | bool) -> list[dict[str, Any]]:
    """The audit of ``optimizer`` (none without one, or with ``inputs`` False); ``inputs``: the audit's keywords."""
    if optimizer is None or inputs is False:
        return []
    return audit(optimizer, model, **(inputs if isinstance(inputs, dict) else {}))


def start_alerts(step: int, findings: list[dict[str, Any]], unigram_warning: str, layers: int) -> list[Alert]:
    """The alerts a run starts with: each audit finding with its fix, the unigram figure's warning, and a warning
    when no ternary layer was found (``layers``: how many were)."""
    out = [Alert(step=step, time=time.time(), level=f["level"], code="audit",
                 message=f"{f['message']}; fix: {f['fix']}", data=dict(f)) for f in findings]
    if not layers:
        out.append(Alert(step=step, time=time.time(), level="warning", code="no-layers",
                         message="no ternary layers found (a class named like BitLinear, or an nn.Linear subclass "
                                 "with its own forward): the ternary scales, zero shares and flip rates are not "
                                 "measured, so decaying weights cannot be seen; pass MonitorConfig(layers=[...])"))
    if unigram_warning:
        out.append(Alert(step=step, time=time.time(), level="warning", code="unigram", message=unigram_warning,
                         data={"source": HELD_OUT}))
    return out
