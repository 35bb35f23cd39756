"""Command-line arguments shared by several commands, and the run's knobs as options, declared once.

:func:`with_knobs` turns every knob of the run configuration (:mod:`bitnet_tui.session.knobs`: help, range,
default) into a typed option of a command, grouped by section in ``--help``, and hands the command the
values as one ``knobs`` dict. ``run`` takes one value per knob; ``sweep`` takes comma-separated lists for
the knobs a sweep can vary.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from bitnet_model.train.config import SECTIONS
from bitnet_tui.session.analysis.detector import DetectorConfig
from bitnet_tui.session.errors import UserError
from bitnet_tui.session.knobs import Knob, flag_of, knob_fields
from bitnet_tui.session.log.paths import resolve_session, sessions_dir

SessionArg = Annotated[
    str,
    typer.Argument(
        help="A session log: a path, a name in the sessions directory (with or without .jsonl), "
        "a unique prefix of one, or 'latest'.",
        show_default=False,
    ),
]
SessionsDirOption = Annotated[
    Optional[str],
    typer.Option(
        "--sessions-dir",
        help="Where session logs live. Default: $BITNET_TUI_SESSIONS, else ./sessions.",
        show_default=False,
    ),
]


def parse_speed(raw: str) -> float:
    """'1', '10', '100', '2.5' or 'max'; positive and finite unless 'max'."""
    if raw.strip().lower() in ("max", "inf"):
        return math.inf
    try:
        v = float(raw)
    except ValueError:
        raise typer.BadParameter(f"{raw[:40]!r} is not a number or 'max'") from None
    if not math.isfinite(v) or v <= 0:
        raise typer.BadParameter("speed must be a positive number or 'max'")
    return v


def resolve_sessions(args: list[str] | tuple[str, ...], sessions_dir_opt: str | None) -> list[Path]:
    """Each argument as a session path. With one argument its error is the command's; with several, one that
    cannot be found is a warning and the rest go on."""
    from bitnet_tui.app.cli.errors import warn

    d = sessions_dir(sessions_dir_opt)
    if len(args) == 1:
        return [resolve_session(args[0], d)]
    paths: list[Path] = []
    for arg in args:
        try:
            paths.append(resolve_session(arg, d))
        except UserError as e:
            warn(e)
    return paths


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]

PANELS = {"model": "Model", "train": "Training", "diag": "Diagnostics", "data": "Data", "detector": "Detector"}


def knob_table() -> list[tuple[str, str, Knob, Any]]:
    """(parameter name, section, knob, default) of every run knob, in ``--help`` order."""
    out = [(name, section, k, d) for section, klass in SECTIONS.items() for name, k, d in knob_fields(klass)]
    out += [(f"detector_{name}", "detector", k, d) for name, k, d in knob_fields(DetectorConfig)]
    return out


def _flag(pname: str, section: str, k: Knob) -> str:
    return "--" + pname.replace("_", "-") if section == "detector" else flag_of(pname, k)


def _shown(k: Knob, default: Any) -> str | bool:
    if k.shown_default:
        return k.shown_default
    if default is None:
        return False
    if isinstance(default, bool):
        return "yes" if default else "no"
    return str(default)


BOTH = "_both"
"""``sweep --decay-all-both``: the parameter of a yes/no knob that sweeps both of its values."""


def knob_parameters(sweep: bool) -> list[inspect.Parameter]:
    """The knobs as options. A yes/no knob is a flag in ``run`` and ``sweep`` alike (``--decay-all``,
    ``--no-decay-all``); ``sweep`` sweeps both of its values with ``--decay-all-both``."""
    params = []
    for pname, section, k, default in knob_table():
        flag = _flag(pname, section, k)
        listed = sweep and k.sweep and k.kind is not bool
        if k.kind is bool:
            decl = f"{flag}/--no-{flag[2:]}"
            kind: type = bool
        else:
            decl, kind = flag, (str if listed or k.special else k.kind)
        help_text = k.help + (" Comma-separated values sweep it." if listed else "")
        ann = Annotated[Optional[kind], typer.Option(decl, help=help_text, show_default=_shown(k, default),
                                                     rich_help_panel=PANELS[section])]
        params.append(inspect.Parameter(pname, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ann))
        if sweep and k.sweep and k.kind is bool:
            both = Annotated[bool, typer.Option(f"{flag}-both", help=f"Sweep both: runs with {flag} and with "
                                                f"--no-{flag[2:]}.", rich_help_panel=PANELS[section])]
            params.append(inspect.Parameter(pname + BOTH, inspect.Parameter.KEYWORD_ONLY, default=False,
                                            annotation=both))
    return params


def _both(knobs: dict[str, Any], both: dict[str, bool]) -> dict[str, Any]:
    """``--decay-all-both`` as the comma list a sweep reads (``no,yes``); with ``--decay-all`` too, an error."""
    for name, on in both.items():
        if not on:
            continue
        knob = name.removesuffix(BOTH)
        if knobs.get(knob) is not None:
            flag = "--" + knob.replace("_", "-")
            raise UserError(f"{flag}-both sweeps both values of {flag}: give one of {flag}-both, {flag} and "
                            f"--no-{flag[2:]}")
        knobs[knob] = "no,yes"
    return knobs


def with_knobs(*, sweep: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command every run knob as an option; it receives them as ``knobs={name: value or None}``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn, eval_str=True)
        base = [p for p in sig.parameters.values() if p.name != "knobs"]
        extra = knob_parameters(sweep)
        names = [p.name for p in extra]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            both = {n: bool(kwargs.pop(n, False)) for n in names if n.endswith(BOTH)}
            knobs = _both({n: kwargs.pop(n, None) for n in names if not n.endswith(BOTH)}, both)
            return fn(*args, knobs=knobs, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=[  # type: ignore[attr-defined]
            *[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.kind is p.POSITIONAL_OR_KEYWORD else p
              for p in base], *extra])
        return wrapper

    return deco
