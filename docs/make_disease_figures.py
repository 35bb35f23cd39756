"""Draw one picture per measured disease: each induced run of ``tests/diseases/scenarios.py`` (the runs the tests
check) trained for real on the tiny model, the disease's figure over steps, the rule's threshold dashed and the
step its alert entered dotted. Needs matplotlib (``pip install -e '.[plot]'``); a few minutes on two cores.

    .venv/bin/python docs/make_disease_figures.py [--out docs/diseases] [--only logit-z,flip-back]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bitnet_tui.session.analysis.diseases import CODES, DiseaseConfig  # noqa: E402
from bitnet_tui.session.log.events import Alert, EvalDone, Event, StepDone, WeightsSnapshot  # noqa: E402
from tests.diseases import scenarios as sc  # noqa: E402

Series = list[tuple[str, list[int], list[float]]]
"""(label, steps, values) per line of a picture."""
CFG = DiseaseConfig()
FLOOR = 1e-12
"""Where an exact 0 is drawn on a log axis."""


def steps_of(events: list[Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def loss(events: list[Event]) -> Series:
    s = steps_of(events, StepDone)
    return [("step loss", [e.step for e in s], [e.loss for e in s])]


def per_layer(events: list[Event], field: str) -> Series:
    snaps = [e for e in steps_of(events, WeightsSnapshot) if e.step > 0]
    names = [lw.name for lw in snaps[0].layers] if snaps else []
    out: Series = []
    for n in names:
        pts = [(e.step, getattr(lw, field)) for e in snaps for lw in e.layers if lw.name == n]
        pts = [(s, max(FLOOR, v)) for s, v in pts if v is not None]
        out.append((n, [s for s, _ in pts], [v for _, v in pts]))
    return out


def largest_ratio(events: list[Event]) -> Series:
    snaps = [(e.step, [lw.update_ratio for lw in e.layers if lw.update_ratio is not None])
             for e in steps_of(events, WeightsSnapshot)]
    snaps = [(s, r) for s, r in snaps if r]
    return [("largest update/weight ratio", [s for s, _ in snaps], [max(r) for _, r in snaps])]


def probe(events: list[Event], read: Callable[[dict], dict[str, float]]) -> Series:
    evals = [e for e in steps_of(events, EvalDone) if isinstance(e.probes, dict) and e.probes.get("act")]
    names = sorted({n for e in evals for n in read(e.probes)})
    return [(n, [e.step for e in evals if n in read(e.probes)], [read(e.probes)[n] for e in evals
                                                                  if n in read(e.probes)]) for n in names]


def log_z_drift(events: list[Event]) -> Series:
    z = [(e.step, e.probes["log_z"]) for e in steps_of(events, EvalDone) if "log_z" in (e.probes or {})]
    return [("|log Z - first|", [s for s, _ in z], [abs(v - z[0][1]) for _, v in z])]


def flip_back(events: list[Event]) -> Series:
    rows = [(e.step, [(lw.flip_back, lw.flip_rate) for lw in e.layers if lw.flip_back is not None])
            for e in steps_of(events, WeightsSnapshot)]
    rows = [(s, r) for s, r in rows if r]
    return [("flip-back share", [s for s, _ in rows], [statistics.fmean(b for b, _ in r) for _, r in rows]),
            ("flip rate", [s for s, _ in rows], [statistics.fmean(f for _, f in r) for _, r in rows])]


class Picture:
    """One disease: the run that induces it, its figure, the threshold lines and how the axis is scaled."""

    def __init__(self, code: str, what: str, run: Callable[[sc.Tiny], list[Event]],
                 figure: Callable[[list[Event]], Series], ylabel: str,
                 thresholds: Callable[[list[Event]], list[Line]], log: bool = False) -> None:
        self.code, self.what, self.run, self.figure, self.ylabel = code, what, run, figure, ylabel
        self.thresholds, self.log = thresholds, log


def enters(events: list[Event], code: str) -> list[Alert]:
    return [a for a in steps_of(events, Alert) if a.code == code and a.data.get("change") == "enter"]


Line = tuple[str, float, tuple[int, int] | None]
"""A threshold: label, value, and the steps it applies over (None: all)."""


def spike_line(events: list[Event]) -> list[Line]:
    return [(f"window mean + {CFG.spike_z:g} sd", a.data["mean"] + CFG.spike_z * a.data["sd"],
             (a.step - CFG.spike_window, a.step)) for a in enters(events, "loss-spike")[:1]]


def shock_line(events: list[Event]) -> list[Line]:
    return [(f"mean of the {CFG.shock_steps} before + {CFG.shock_rise:g} nat", a.data["before"] + CFG.shock_rise,
             (a.data["at"], a.step)) for a in enters(events, "quant-shock")[:1]]


def fixed(*lines: tuple[str, float]) -> Callable[[list[Event]], list[Line]]:
    return lambda _events: [(label, y, None) for label, y in lines]


@functools.cache
def attention_run(tiny: sc.Tiny) -> list[Event]:
    return sc.large_lr_no_warmup(tiny, steps=60, weights_every=None)


PICTURES = [
    Picture("loss-spike", "LR 3e-3 raised to 0.9 at step 70", lambda t: sc.lr_jump(t)[0], loss, "loss (nats)",
            spike_line),
    Picture("update-ratio", "LR 0.1 from step 1, no warmup", sc.large_lr_no_warmup, largest_ratio,
            "||dW|| / ||W|| in one step", fixed((f"enter {CFG.ratio_high:g}", CFG.ratio_high)), log=True),
    Picture("frozen-layer", "blocks.0.attn.v with requires_grad off", sc.frozen_layer,
            lambda ev: per_layer(ev, "update_ratio"), f"update/weight ratio (0 drawn at {FLOOR:g})",
            fixed((f"frozen <= {CFG.ratio_frozen:g}", CFG.ratio_frozen)), log=True),
    Picture("act-clip", "two embedding columns x300", sc.outlier_channels,
            lambda ev: probe(ev, lambda p: {n: f["zero"] for n, f in p.get("act", {}).items()}),
            "share of int8 values at 0", fixed((f"enter {CFG.clip_zero:g}", CFG.clip_zero))),
    Picture("attn-entropy", "LR 0.1 from step 1, no warmup", attention_run,
            lambda ev: probe(ev, lambda p: {n: statistics.fmean(f["entropy"]) for n, f in p.get("attn", {}).items()}),
            "attention entropy / ln(positions)", fixed((f"enter < {CFG.entropy_low:g}", CFG.entropy_low))),
    Picture("attn-logit", "LR 0.1 from step 1, no warmup", attention_run,
            lambda ev: probe(ev, lambda p: {n: f["max_logit"] for n, f in p.get("attn", {}).items()}),
            "largest q.k/sqrt(d)", fixed((f"enter {CFG.attn_logit_high:g}", CFG.attn_logit_high))),
    Picture("logit-z", "one batch repeated, LR 0.1, no weight decay", sc.memorised_logits, log_z_drift,
            "drift of mean log Z", fixed((f"enter {CFG.log_z_drift:g}", CFG.log_z_drift))),
    Picture("flip-back", "one batch repeated, Adam beta1 0, LR 3e-3", sc.oscillating_weights, flip_back,
            "share", fixed((f"flip-back enter {CFG.flip_back_high:g}", CFG.flip_back_high),
                           (f"flip rate at least {CFG.flip_min:g}", CFG.flip_min))),
    Picture("quant-shock", "float model made ternary at step 61", sc.float_then_ternary, loss, "loss (nats)",
            shock_line),
]


def draw(pic: Picture, events: list[Event], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 2.8), dpi=100, constrained_layout=True)
    for label, xs, ys in pic.figure(events):
        ax.plot(xs, ys, marker="o" if len(xs) < 12 else None, markersize=3, linewidth=1.2, label=label)
    for label, y, span in pic.thresholds(events):
        if span is None:
            ax.axhline(y, color="crimson", linestyle="--", linewidth=1, label=label)
        else:
            ax.hlines(y, max(0, span[0]), span[1], color="crimson", linestyle="--", linewidth=1, label=label)
    for i, a in enumerate(enters(events, pic.code)[:3]):
        ax.axvline(a.step, color="grey", linestyle=":", linewidth=1, label="alert enters" if i == 0 else None)
    if pic.log:
        ax.set_yscale("log")
    ax.set_title(f"{pic.code}: {pic.what}", fontsize=8)
    ax.set_xlabel("step", fontsize=7)
    ax.set_ylabel(pic.ylabel, fontsize=7)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=5.5, loc="best", framealpha=0.8)
    path = out / f"{pic.code}.png"
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "diseases"))
    ap.add_argument("--only", default="", help="comma-separated disease codes (default: every one)")
    args = ap.parse_args(argv)
    only = {c for c in args.only.split(",") if c}
    if only - set(CODES):
        print(f"error: unknown disease code(s): {', '.join(sorted(only - set(CODES)))}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from tests.conftest import tiny_config

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BITNET_TUI_SESSIONS"] = str(Path(tmp) / "sessions")
        tiny = functools.partial(tiny_config, str(Path(tmp) / "cache"))
        for pic in PICTURES:
            if only and pic.code not in only:
                continue
            events = pic.run(tiny)
            path = draw(pic, events, out)
            print(f"{path.name} ({path.stat().st_size // 1024} kB; alert entered at "
                  f"{[a.step for a in enters(events, pic.code)][:3] or 'no step'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
