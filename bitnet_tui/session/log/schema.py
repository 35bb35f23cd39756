"""Reading events back: one decoder rule for the whole schema.

Every field has one rule (:data:`RULES`): its type and its sane range. A value of the right type that is
not finite where it must be, or lies outside its range, is shown as missing (``None``), counted as damage
(:attr:`Decoded.damage`), and so never reaches a plot or a verdict. A value of the wrong type makes the
line malformed. Dicts taken from a file (a header's config) are bounded in depth and size, and numbers in
them that no consumer could format are replaced by text saying so. Non-finite losses are data (a run that
diverged), so losses and gradient norms keep NaN and infinities; everything else must be finite.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields
from typing import Any

from bitnet_tui.session.log.events import EVENT_TYPES, Event, LayerWeights

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
BIG = 1 << 53
"""Integers beyond this are not counts from a real run (and lose precision as floats)."""
MAX_DEPTH = 16
"""Nesting kept of a dict read from a log; deeper parts are replaced by a marker."""
MAX_ITEMS = 10_000
"""Items kept per list or dict read from a log."""


class EventFormatError(ValueError):
    """A dict does not describe an event of this schema."""


@dataclass(frozen=True)
class Rule:
    kind: str
    """float, int, str, bool, dict, strs, pairs, layers, metrics, strdict, scalar."""
    lo: float = -math.inf
    hi: float = math.inf
    nonfinite: bool = False
    """NaN and infinities are data here (losses), not damage."""
    limit: int = 100_000
    """Characters kept of a string."""


_F = Rule("float")
RULES: dict[str, Rule] = {
    "step": Rule("int", 0, BIG), "time": Rule("float", 0, 1e11), "schema": Rule("int", 0, 1000),
    "total_steps": Rule("int", 0, BIG), "params": Rule("int", 0, 1e15), "vocab_size": Rule("int", 1, 1 << 31),
    "stage": Rule("int", 0, 10), "unique_tokens": Rule("int", 0, 1e9), "generated_tokens": Rule("int", 0, 1e9),
    "report_unique": Rule("int", 0, 1e9), "report_prompts": Rule("int", 0, 1e9),
    "unigram_tokens": Rule("int", 0, 1e15),
    "loss": Rule("float", -1e6, 1e6, nonfinite=True), "val_loss": Rule("float", -1e6, 1e6, nonfinite=True),
    "grad_norm": Rule("float", 0, 1e30, nonfinite=True), "lr": Rule("float", 0, 100),
    "lr_spread": Rule("float", 0, 100),
    "weight_decay": Rule("float", 0, 1000), "tokens_per_s": Rule("float", 0, 1e13), "mfu": Rule("float", 0, 10),
    "peak_mem_mb": Rule("float", 0, 1e9), "ln_vocab": Rule("float", 0, 50), "unigram_entropy": Rule("float", 0, 50),
    "entropy": Rule("float", 0, 50), "kl_unigram": Rule("float", 0, 1e3), "distinct2": Rule("float", 0, 1),
    "top_share": Rule("float", 0, 1), "repetition": Rule("float", 0, 1),
    "neg": Rule("float", 0, 1), "zero": Rule("float", 0, 1), "pos": Rule("float", 0, 1),
    "flip_rate": Rule("float", 0, 1, nonfinite=True), "near_boundary": Rule("float", 0, 1),
    "scale": Rule("float", 0, 1e9), "update_ratio": Rule("float", 0, 1e9), "flip_back": Rule("float", 0, 1),
    "probes": Rule("dict"), "reduced": Rule("dict"),
    "rms": Rule("float", 0, 1e9), "norm_gain": Rule("float", 0, 1e9), "embed_norm": Rule("float", 0, 1e9),
    "run_name": Rule("str", limit=500), "device": Rule("str", limit=200), "level": Rule("str", limit=20),
    "code": Rule("str", limit=40), "message": Rule("str", limit=20_000), "state_from": Rule("str", limit=40),
    "state_to": Rule("str", limit=40), "state": Rule("str", limit=40), "sample": Rule("str", limit=5000),
    "action": Rule("str", limit=40), "source": Rule("str", limit=200), "path": Rule("str", limit=4096),
    "reason": Rule("str", limit=100), "error": Rule("str", limit=20_000), "name": Rule("str", limit=200),
    "pinned": Rule("bool"),
    "config": Rule("dict"), "corpus": Rule("dict"), "tokenizer": Rule("dict"), "versions": Rule("strdict"),
    "parent": Rule("dict"), "optimizer": Rule("dict"), "world": Rule("dict"), "data": Rule("dict"),
    "detector": Rule("dict"),
    "audit": Rule("dicts"), "argv": Rule("strs"), "samples": Rule("strs"), "prompts": Rule("strs"),
    "removed": Rule("strs"), "top_tokens": Rule("pairs"), "layers": Rule("layers"), "extra": Rule("metrics"),
    "old": Rule("scalar"), "new": Rule("scalar"),
    "cpu_percent": Rule("float", 0, 1e5), "cpus": Rule("int", 1, 1e6), "rss_mb": Rule("float", 0, 1e9),
    "threads": Rule("int", 0, 1e7), "load1": Rule("float", 0, 1e6), "gpu_util": Rule("float", 0, 100),
    "gpu_mem_mb": Rule("float", 0, 1e9), "gpu_mem_total_mb": Rule("float", 0, 1e9),
    "gpu_temp_c": Rule("float", -100, 300),
}


class Decoded:
    """Counts what a decode had to repair; one instance per line (or per read, to total them)."""

    __slots__ = ("damage",)

    def __init__(self) -> None:
        self.damage = 0


def _number(name: str, v: Any, rule: Rule, dmg: Decoded) -> float | None:
    if isinstance(v, str) and v in _NONFINITE:
        v = _NONFINITE[v]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise EventFormatError(f"{name} must be a number, got {type(v).__name__}")
    if isinstance(v, int) and not -BIG <= v <= BIG:
        dmg.damage += 1
        return None
    f = float(v)
    if not math.isfinite(f):
        if rule.nonfinite:
            return f
        dmg.damage += 1
        return None
    if not rule.lo <= f <= rule.hi:
        dmg.damage += 1
        return None
    return f


def clean(v: Any, dmg: Decoded, depth: int = 0) -> Any:
    """A JSON value from a file made safe for every consumer: bounded depth and size, numbers that format."""
    if depth > MAX_DEPTH:
        dmg.damage += 1
        return "… (nested too deeply)"
    if isinstance(v, dict):
        if len(v) > MAX_ITEMS:
            dmg.damage += 1
        return {str(k)[:1000]: clean(x, dmg, depth + 1) for k, x in list(v.items())[:MAX_ITEMS]}
    if isinstance(v, list):
        if len(v) > MAX_ITEMS:
            dmg.damage += 1
        return [clean(x, dmg, depth + 1) for x in v[:MAX_ITEMS]]
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        if -BIG <= v <= BIG:
            return v
        dmg.damage += 1
        return f"(an integer of {len(str(abs(v)))} digits)"
    if isinstance(v, float):
        if math.isfinite(v) and abs(v) < 1e300:
            return v
        dmg.damage += 1
        return "(a number out of range)"
    if isinstance(v, str):
        return v[:100_000]
    return str(v)[:1000]


def _value(name: str, v: Any, dmg: Decoded) -> Any:
    rule = RULES.get(name)
    if rule is None:
        return None
    k = rule.kind
    if v is None:
        return None
    if k == "float":
        return _number(name, v, rule, dmg)
    if k == "int":
        f = _number(name, v, rule, dmg)
        if f is None:
            return None
        if not float(f).is_integer():
            raise EventFormatError(f"{name} must be an integer")
        return int(f)
    if k == "str":
        if not isinstance(v, str):
            raise EventFormatError(f"{name} must be a string, got {type(v).__name__}")
        return v[:rule.limit]
    if k == "bool":
        if not isinstance(v, bool):
            raise EventFormatError(f"{name} must be true or false")
        return v
    if k in ("dict", "strdict"):
        if not isinstance(v, dict):
            raise EventFormatError(f"{name} must be an object")
        d = clean(v, dmg)
        return {key: str(x)[:200] for key, x in d.items()} if k == "strdict" else d
    if k in ("strs", "dicts", "pairs", "layers") and not isinstance(v, list):
        raise EventFormatError(f"{name} must be a list")
    if k == "strs":
        return tuple(_value("sample", x, dmg) or "" for x in v[:1000])
    if k == "dicts":
        return tuple(clean(x, dmg) for x in v[:100] if isinstance(x, dict))
    if k == "pairs":
        out = []
        for item in v[:1000]:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                raise EventFormatError(f"{name} items must be [text, count] pairs")
            count = _number(name, item[1], RULES["unique_tokens"], dmg)
            out.append((item[0][:1000], int(count) if count is not None else 0))
        return tuple(out)
    if k == "layers":
        return tuple(_layer(item, dmg) for item in v[:10_000])
    if k == "metrics":
        if not isinstance(v, dict):
            raise EventFormatError(f"{name} must be an object")
        out_m: dict[str, float] = {}
        for key, x in list(v.items())[:200]:
            f = _number(name, x, Rule("float", -1e30, 1e30, nonfinite=True), dmg) \
                if not isinstance(x, (str, dict, list)) or x in _NONFINITE else None
            if f is not None:
                out_m[str(key)[:100]] = f
        return out_m
    # scalar: old/new of an intervention
    if isinstance(v, str) and v in _NONFINITE:
        v = _NONFINITE[v]
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise EventFormatError(f"{name} must be a number or a string")
    if isinstance(v, str):
        return v[:1000]
    return _number(name, v, Rule("float", -1e30, 1e30), dmg)


def _layer(item: Any, dmg: Decoded) -> LayerWeights:
    if not isinstance(item, dict):
        raise EventFormatError("each layer must be an object")
    vals = {}
    for k in ("neg", "zero", "pos", "scale", "flip_rate", "near_boundary", "rms", "update_ratio", "flip_back"):
        x = item.get(k)
        vals[k] = _value(k, x, dmg) if x is not None else None
        if vals[k] is None and k not in ("rms", "update_ratio", "flip_back"):
            vals[k] = math.nan  # missing: shown as "-", never plotted
    return LayerWeights(name=_value("name", item.get("name", "?"), dmg) or "?", **vals)


def event_from_dict(d: Any, dmg: Decoded | None = None) -> Event:
    """Validate one decoded JSON object and build its event. Raises EventFormatError."""
    dmg = dmg if dmg is not None else Decoded()
    if not isinstance(d, dict):
        raise EventFormatError("an event must be a JSON object")
    kind = d.get("kind")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EventFormatError(f"unknown event kind {kind!r}"[:200])
    out: dict[str, Any] = {}
    try:
        for f in fields(cls):
            if f.name in d:
                value = _value(f.name, d[f.name], dmg)
                if d[f.name] is None and RULES[f.name].kind == "scalar":
                    out[f.name] = None  # old/new of a command that changes no value (checkpoint, eval)
                    continue
                if value is None and f.default is MISSING and f.default_factory is MISSING:  # type: ignore[misc]
                    if RULES[f.name].kind != "float" or f.name == "time":
                        raise EventFormatError(f"{kind} event has an unusable {f.name}")
                    value = math.nan  # a required measurement out of range: missing, never plotted
                if value is not None or f.default is None:
                    out[f.name] = value
    except EventFormatError:
        raise
    except (TypeError, ValueError, OverflowError) as e:
        raise EventFormatError(f"bad {kind} event: {e}"[:300]) from None
    try:
        return cls(**out)
    except TypeError:
        missing = [f.name for f in fields(cls) if f.name not in out and f.default is MISSING
                   and f.default_factory is MISSING]  # type: ignore[misc]
        raise EventFormatError(f"{cls.kind} event is missing {', '.join(missing)}"[:200]) from None


def fits_type(annotation: str, v: Any) -> bool:
    """Whether ``v`` is of the field's annotated type (``int | None``, ``float``, ``list[float]``...)."""
    if v is None:
        return "None" in annotation
    base = annotation.split("|")[0].strip()
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    if base == "int":
        return isinstance(v, int) and not isinstance(v, bool) and abs(v) < 1 << 53
    if base == "float":
        return number and math.isfinite(v)
    if base == "bool":
        return isinstance(v, bool)
    if base == "str":
        return isinstance(v, str) and len(v) <= 40
    if base == "list[float]":
        return isinstance(v, list) and len(v) <= 10_000 and all(fits_type("float", x) for x in v)
    return False
