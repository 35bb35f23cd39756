"""What a named preset runs, said before it runs: ``sweep --preset NAME --help`` lists its runs, their flags
and step counts, and how long it took where it was measured."""

from __future__ import annotations

import itertools
import shutil
import textwrap
from typing import Any

import typer
from typer.core import TyperCommand

from bitnet_model.train.presets import preset as get_preset
from bitnet_tui.app.cli.errors import fail
from bitnet_tui.session.errors import UserError
from bitnet_tui.session.knobs import flag_of, knob_fields


def preset_grid(p: dict[str, Any]) -> list[dict[str, Any]]:
    """A preset's points: its ``grid``, else every combination of its ``sweep``."""
    sweep = p.get("sweep", {})
    return list(p.get("grid") or [dict(zip(sweep, combo)) for combo in itertools.product(*sweep.values())])


def point_label(point: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in point.items()) or "run"


def _flags(knobs: dict[str, Any]) -> str:
    from bitnet_model.train.config import SECTIONS

    table = {name: k for klass in SECTIONS.values() for name, k, _ in knob_fields(klass)}
    out = []
    for name, value in knobs.items():
        k = table.get(name)
        flag = flag_of(name, k) if k is not None else "--" + name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else f"--no-{flag[2:]}")
        else:
            out.append(f"{flag} {value}")
    return " ".join(out)


def describe_preset(name: str) -> list[str]:
    """Lines saying what ``sweep --preset name`` runs: its runs (flags each), their steps, roughly how long."""
    p = get_preset(name)
    knobs = p.get("knobs", {})
    runs = [(point_label(pt), "") for pt in preset_grid(p)]
    runs += [(r["label"], " (with --autopilot)" if r.get("autopilot") else "") for r in p.get("runs", ())]
    steps = knobs.get("steps")
    each = f" of {steps:,} steps each" if isinstance(steps, int) and "steps" not in p.get("sweep", {}) else ""
    took = f" (measured: about {p['measured']})" if p.get("measured") else ""
    lines = [f"sweep --preset {name} runs {len(runs)} runs{each}{took}:"]
    lines += [f"  {label}{how}" for label, how in runs]
    lines.append(f"every run with: {_flags(knobs)}")
    if p.get("about"):
        lines.append(f"about: {p['about']}")
    lines.append("flags given on the command line override the preset's.")
    return lines


def _preset_in(args: list[str]) -> str | None:
    for i, a in enumerate(args):
        if a == "--preset" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--preset="):
            return a.split("=", 1)[1]
    return None


class PresetHelp(TyperCommand):
    """A command whose ``--help`` with ``--preset NAME`` (in either order) first says what the preset runs."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if any(a in ctx.help_option_names for a in args):
            ctx.meta["preset"] = _preset_in(args)
        return super().parse_args(ctx, args)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        name = ctx.meta.get("preset")
        if name is not None:
            try:
                lines = describe_preset(name)
            except UserError as e:
                fail(e)
            width = max(40, min(100, shutil.get_terminal_size().columns))
            wrapped = [textwrap.fill(ln, width, subsequent_indent="    ", break_on_hyphens=False) for ln in lines]
            typer.echo("\n".join(wrapped) + "\n")
        super().format_help(ctx, formatter)
