"""The event stream: the only way the trainer tells the world what it does.

Events are frozen dataclasses holding plain values (floats, ints, strings,
tuples): never tensors, never shared mutable containers, so they may cross
threads freely. Every consumer (session log, dashboard, headless display,
tests) sees the same objects. ``to_dict``/``event_from_dict`` give the JSON
shape written to session logs; non-finite floats become the strings "NaN",
"Infinity" and "-Infinity" so every line stays valid JSON.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Event:
    """Base class. ``kind`` names the event in the log; ``step`` is the last completed optimizer step."""

    kind: ClassVar[str] = "event"
    step: int
    time: float
    """Wall-clock seconds since the epoch when the event was made."""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            d[f.name] = _jsonable(getattr(self, f.name))
        return d


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    """First event of every run: everything needed to understand and reproduce it."""

    kind: ClassVar[str] = "run_started"
    schema: int
    run_name: str
    config: dict[str, Any]
    """RunConfig.to_dict(), with the LR resolved."""
    corpus: dict[str, Any]
    """name, source, sha256, characters, train/val tokens."""
    tokenizer: dict[str, Any]
    """kind, vocab_size, sha256, path."""
    versions: dict[str, str]
    argv: tuple[str, ...]
    device: str
    params: int
    """Parameters, embeddings included."""
    ln_vocab: float
    """Loss of a model that predicts uniformly over the vocabulary."""
    unigram_entropy: float
    """Loss of a model that predicts only token frequencies (nats)."""
    total_steps: int
    parent: dict[str, Any] | None = None
    """For a forked or resumed session: {"session": path, "step": fork step}."""


@dataclass(frozen=True, slots=True)
class StepDone(Event):
    """One optimizer step."""

    kind: ClassVar[str] = "step"
    loss: float
    lr: float
    weight_decay: float
    grad_norm: float
    """Global gradient norm before clipping."""
    tokens_per_s: float
    stage: int
    """1 or 2 (two-stage schedule); 1 for the others."""


@dataclass(frozen=True, slots=True)
class EvalDone(Event):
    """Held-out loss and what greedy decoding looks like right now."""

    kind: ClassVar[str] = "eval"
    val_loss: float
    unique_tokens: int
    """Distinct token ids across all greedy continuations."""
    generated_tokens: int
    distinct2: float
    """Distinct bigrams / bigrams, across continuations."""
    top_share: float
    """Share of generated tokens taken by the most frequent one."""
    top_tokens: tuple[tuple[str, int], ...]
    """Most frequent generated tokens (text, count), most frequent first."""
    entropy: float
    """Mean predictive entropy (nats) on held-out text."""
    samples: tuple[str, ...]
    """Greedy continuations, decoded; untrusted text (escape before display)."""
    prompts: tuple[str, ...] = ()
    state: str = ""
    """Collapse detector state after this eval."""


@dataclass(frozen=True, slots=True)
class LayerWeights:
    """Ternary weight statistics of one BitLinear layer."""

    name: str
    neg: float
    zero: float
    pos: float
    scale: float
    """absmean scale of the latent weights."""
    flip_rate: float
    """Share of ternary values that changed since the previous snapshot (NaN at the first)."""
    near_boundary: float
    """Share of latent weights within 5% of a rounding boundary (|w/scale| near 0.5)."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class WeightsSnapshot(Event):
    kind: ClassVar[str] = "weights"
    layers: tuple[LayerWeights, ...]


@dataclass(frozen=True, slots=True)
class Alert(Event):
    """A detector state change, a non-finite loss, a write failure, a crash."""

    kind: ClassVar[str] = "alert"
    level: str
    """info, warning or error."""
    code: str
    """detector, nonfinite, io, crash."""
    message: str
    state_from: str = ""
    state_to: str = ""
    unique_tokens: int | None = None
    val_loss: float | None = None
    top_tokens: tuple[tuple[str, int], ...] = ()
    sample: str = ""


@dataclass(frozen=True, slots=True)
class Intervention(Event):
    """A command the trainer applied: what changed, old -> new, who asked."""

    kind: ClassVar[str] = "intervention"
    action: str
    """set_lr, scale_lr, undo_lr, pause, resume, stop, checkpoint, eval."""
    old: float | str | None
    new: float | str | None
    source: str
    """dashboard, cli, api, detector, ..."""


@dataclass(frozen=True, slots=True)
class CheckpointSaved(Event):
    kind: ClassVar[str] = "checkpoint"
    path: str


@dataclass(frozen=True, slots=True)
class RunEnded(Event):
    """Last event of a run that ended on its own terms. A log without one crashed (or is still running)."""

    kind: ClassVar[str] = "run_ended"
    reason: str
    """finished, stopped, interrupted, hangup, error."""
    error: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    c.kind: c for c in (RunStarted, StepDone, EvalDone, WeightsSnapshot, Alert, Intervention, CheckpointSaved, RunEnded)
}


def _jsonable(v: Any) -> Any:
    if isinstance(v, float):
        if math.isfinite(v):
            return v
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, (tuple, list)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, LayerWeights):
        return v.to_dict()
    return v


_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class EventFormatError(ValueError):
    """A dict does not describe an event of this schema."""


def _as_float(name: str, v: Any) -> float:
    if isinstance(v, str) and v in _NONFINITE:
        return _NONFINITE[v]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise EventFormatError(f"{name} must be a number, got {type(v).__name__}")
    return float(v)


_INT_LIMIT = 1 << 62
"""Counts beyond this are not from a real run (and would overflow float conversion downstream)."""


def _as_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise EventFormatError(f"{name} must be an integer, got {type(v).__name__}")
    if not -_INT_LIMIT < v < _INT_LIMIT:
        raise EventFormatError(f"{name} is out of range")
    return v


def _as_str(name: str, v: Any, limit: int = 100_000) -> str:
    if not isinstance(v, str):
        raise EventFormatError(f"{name} must be a string, got {type(v).__name__}")
    return v[:limit]


def _as_pairs(name: str, v: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(v, list):
        raise EventFormatError(f"{name} must be a list")
    out = []
    for item in v[:1000]:
        if not (isinstance(item, list) and len(item) == 2):
            raise EventFormatError(f"{name} items must be [text, count] pairs")
        out.append((_as_str(name, item[0], 1000), _as_int(name, item[1])))
    return tuple(out)


def _as_strs(name: str, v: Any) -> tuple[str, ...]:
    if not isinstance(v, list):
        raise EventFormatError(f"{name} must be a list")
    return tuple(_as_str(name, x) for x in v[:1000])


_LAYER_FLOATS = ("neg", "zero", "pos", "scale", "flip_rate", "near_boundary")


def event_from_dict(d: Any) -> Event:
    """Validate one decoded JSON object and build its event. Raises EventFormatError."""
    if not isinstance(d, dict):
        raise EventFormatError("an event must be a JSON object")
    kind = d.get("kind")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EventFormatError(f"unknown event kind {kind!r}"[:200])
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in d:
            kwargs[f.name] = d[f.name]
    try:
        return _coerce(cls, kwargs)
    except EventFormatError:
        raise
    except (TypeError, ValueError) as e:
        raise EventFormatError(f"bad {kind} event: {e}"[:300]) from None


_FLOATS = {
    "time", "loss", "lr", "weight_decay", "grad_norm", "tokens_per_s", "val_loss", "distinct2", "top_share",
    "entropy", "ln_vocab", "unigram_entropy",
}
_INTS = {"step", "stage", "unique_tokens", "generated_tokens", "schema", "params", "total_steps"}
_STRS = {"run_name", "device", "level", "code", "message", "state_from", "state_to", "sample", "action", "source",
         "path", "reason", "error", "state"}
_DICTS = {"config", "corpus", "tokenizer", "versions"}


def _coerce(cls: type[Event], kw: dict[str, Any]) -> Event:
    out: dict[str, Any] = {}
    for name, v in kw.items():
        if v is None and name in ("val_loss", "unique_tokens", "parent", "old", "new"):
            out[name] = None
        elif name in _FLOATS:
            out[name] = _as_float(name, v)
        elif name in _INTS:
            out[name] = _as_int(name, v)
        elif name in _STRS:
            out[name] = _as_str(name, v)
        elif name in _DICTS or name == "parent":
            if not isinstance(v, dict):
                raise EventFormatError(f"{name} must be an object")
            out[name] = v
        elif name == "top_tokens":
            out[name] = _as_pairs(name, v)
        elif name in ("samples", "prompts", "argv"):
            out[name] = _as_strs(name, v)
        elif name in ("old", "new"):
            if isinstance(v, str) and v in _NONFINITE:
                v = _NONFINITE[v]
            if not isinstance(v, (int, float, str)) or isinstance(v, bool):
                raise EventFormatError(f"{name} must be a number or a string")
            out[name] = v[:1000] if isinstance(v, str) else float(v)
        elif name == "layers":
            if not isinstance(v, list):
                raise EventFormatError("layers must be a list")
            layers = []
            for item in v[:10_000]:
                if not isinstance(item, dict):
                    raise EventFormatError("each layer must be an object")
                layers.append(
                    LayerWeights(
                        name=_as_str("name", item.get("name"), 200),
                        **{k: _as_float(k, item.get(k)) for k in _LAYER_FLOATS},
                    )
                )
            out[name] = tuple(layers)
    try:
        return cls(**out)
    except TypeError:
        missing = [f.name for f in fields(cls) if f.name not in out and f.default is MISSING]
        raise EventFormatError(f"{cls.kind} event is missing {', '.join(missing)}"[:200]) from None
