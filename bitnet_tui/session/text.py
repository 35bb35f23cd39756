"""Text from files and numbers for people: one escaping rule and one number format for every output.

Anything read from a log, a checkpoint, a data file or a socket is untrusted: :func:`safe_text` (and its
one-line form :func:`printable`) makes terminal control characters visible before Rich or the terminal
sees them; callers then put the result into ``rich.text.Text`` (never into markup). :func:`fmt_num` and
:func:`fmt_value` are the one way numbers are written (``1.5e-3``, ``0.1``).
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_CONTROL_NL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape_char(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def safe_text(value: Any, *, newlines: bool = True, limit: int | None = None) -> str:
    """``str(value)`` with terminal control characters made visible, ready to print literally.

    ESC and every other C0/C1 control (so ANSI CSI and OSC sequences), DEL,
    bidirectional overrides and lone surrogates become ``\\x1b``-style escapes;
    tab and newline are kept (newline too becomes ``\\x0a`` with ``newlines=False``,
    for one-line messages). Idempotent. It does not escape Rich markup: wrap the
    result in ``rich.text.Text`` or pass it through ``rich.markup.escape``.
    """
    s = value if isinstance(value, str) else str(value)
    if limit is not None and len(s) > limit:
        s = s[:limit] + "…"
    return (_CONTROL_RE if newlines else _CONTROL_NL_RE).sub(_escape_char, s)




def printable(text: Any, limit: int = 2000) -> str:
    """One line of untrusted text, safe to put in a Rich ``Text``: :func:`safe_text` with newlines escaped."""
    return safe_text(text, newlines=False, limit=limit)


def shown_path(path: str | os.PathLike[str], limit: int = 500) -> str:
    """A file name as it may be printed: one line, controls escaped."""
    return safe_text(os.fspath(path), newlines=False, limit=limit)


def fmt_num(v: float) -> str:
    """1.5e-3 -> "1.5e-3", 5e-4 -> "5e-4", 0.1 -> "0.1", 1.0 -> "1" (six significant digits at most)."""
    v = float(v)
    if not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if v != 0 and (abs(v) < 0.01 or abs(v) >= 1e4):
        mant, exp = f"{v:.6e}".split("e")
        mant = mant.rstrip("0").rstrip(".")
        return f"{mant}e{int(exp)}"
    return f"{v:.6g}"


def fmt_value(v: Any) -> str:
    """Compact text for a config or metric value: floats to four significant digits (``1.5e-3``, ``0.1``),
    booleans as yes/no, None as a dash, anything else through :func:`printable`."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "NaN" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        if v != 0 and (abs(v) < 0.01 or abs(v) >= 1e5):
            mant, exp = f"{v:.3e}".split("e")
            return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"
        return f"{v:.4g}"
    return printable(v)


def fmt_duration(seconds: float | None) -> str:
    """``45s``, ``3m07s``, ``2h05m``; ``--`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds > 1e9:
        return "--"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"
