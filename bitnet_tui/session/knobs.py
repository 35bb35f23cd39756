"""The run's knobs, declared once: a field of a config dataclass marked with :func:`knob`.

A knob's declaration carries its help text, its range (or choices), whether a sweep can vary it, and what
its default means when the default is "derived". From that one declaration come: the validation of the
config (:func:`check_knobs`, run on every construction, so the CLI, a checkpoint's config and a log's
header all meet the same range), ``run``'s and ``sweep``'s command-line options
(:mod:`bitnet_tui.app.cli.options`), and the argv a parent gives a child process (:func:`knob_argv`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from bitnet_tui.session.errors import ConfigError


@dataclass(frozen=True)
class Knob:
    """What a command-line user sees of a config field, and the range every path into the config shares."""

    kind: type
    """int, float, str or bool."""
    help: str
    lo: float | None = None
    """Smallest allowed value (inclusive)."""
    hi: float | None = None
    """Largest allowed value (inclusive unless ``hi_open``)."""
    hi_open: bool = False
    choices: tuple[str, ...] = ()
    sweep: bool = False
    """``sweep`` may take a comma-separated list of values for it."""
    shown_default: str = ""
    """What the default means when it is derived (e.g. "by width"); else the default itself is shown."""
    flag: str = ""
    """The option's name when it is not the field's (``--warmup`` for ``warmup_steps``)."""
    special: tuple[Any, ...] = ()
    """Values allowed besides the range (e.g. "auto" for the LR)."""


def knob(default: Any = MISSING, help: str = "", *, default_factory: Any = MISSING, **kw: Any) -> Any:
    """A dataclass field that is a run knob (see :class:`Knob` for the keyword arguments)."""
    kind = kw.pop("kind")
    meta = {"knob": Knob(kind=kind, help=help, **kw)}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def knob_fields(klass: type) -> Iterator[tuple[str, Knob, Any]]:
    """(name, knob, default) of every knob of a config dataclass, in declaration order."""
    for f in fields(klass):
        k = f.metadata.get("knob")
        if k is not None:
            yield f.name, k, f.default


def flag_of(name: str, k: Knob) -> str:
    return "--" + (k.flag or name).replace("_", "-")


def _range_text(k: Knob) -> str:
    if k.choices:
        return "one of " + ", ".join(k.choices)
    if k.lo is not None and k.hi is not None:
        return f"between {k.lo:g} and {k.hi:g}" + (" (exclusive)" if k.hi_open else "")
    if k.lo is not None:
        return f"at least {k.lo:g}"
    return "a number"


def check_value(name: str, k: Knob, value: Any) -> Any:
    """``value`` if it fits the knob's type and range (ints may stand for floats), else ConfigError."""
    if value in k.special and not isinstance(value, bool):
        return value
    what = f"{name} must be {_range_text(k)}"
    if k.kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {str(value)[:40]!r}")
        return value
    if k.kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be text, got {str(value)[:40]!r}")
        if k.choices and value not in k.choices:
            raise ConfigError(f"{what}; got {value[:40]!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {str(value)[:40]!r}")
    if k.kind is int and not isinstance(value, int):
        if not (isinstance(value, float) and value.is_integer() and abs(value) < 2**53):
            raise ConfigError(f"{name} must be a whole number, got {str(value)[:40]!r}")
        value = int(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    too_high = k.hi is not None and (value >= k.hi if k.hi_open else value > k.hi)
    if (k.lo is not None and value < k.lo) or too_high:
        raise ConfigError(f"{what}; got {str(value)[:40]}")
    return float(value) if k.kind is float else value


def check_knobs(obj: Any) -> None:
    """Validate (and normalise: 2 -> 2.0 for floats) every knob of a frozen config dataclass instance."""
    for name, k, _ in knob_fields(type(obj)):
        value = getattr(obj, name)
        if value is None:
            continue  # derived later, or optional
        object.__setattr__(obj, name, check_value(name, k, value))


def knob_argv(knobs: dict[str, Any], sections: tuple[type, ...]) -> list[str]:
    """Command-line options that reproduce ``knobs`` (field names -> values; None is left out)."""
    table = {name: k for klass in sections for name, k, _ in knob_fields(klass)}
    out: list[str] = []
    for name, value in knobs.items():
        if value is None:
            continue
        k = table.get(name)
        if k is None:
            raise ConfigError(f"unknown setting {name}")
        flag = flag_of(name, k)
        if k.kind is bool:
            out.append(flag if value else "--no-" + flag[2:])
        else:
            out += [flag, repr(value) if isinstance(value, float) else str(value)]
    return out
