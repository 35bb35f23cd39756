"""The control protocol: JSON Lines requests to a run's socket, and the commands they become.

Each request is one object, ``{"cmd": "set_lr", "value": 1e-3}``; each gets one reply line,
``{"ok": true}`` or ``{"ok": false, "error": "..."}``. Any request may carry an ``id`` (1-64 letters, digits,
``.``, ``_``, ``:`` or ``-``): the run applies a command once per id, and answers a request whose id it has
already taken with ``{"ok": true, "duplicate": true}`` (a retry after no answer is never applied twice).
The commands, their wire names and their fields are declared once, in
:data:`bitnet_tui.session.control.commands.COMMANDS`; this module only checks a decoded request against that
table. ``ping`` is the protocol's own: the reply carries run, step and paused.
Anything else (unknown keys, wrong types, booleans for numbers, NaN) is refused with a reply saying why.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from bitnet_tui.session.control.commands import CHECKS, COMMANDS, OPTIONAL, Command
from bitnet_tui.session.errors import ConfigError
from bitnet_tui.session.text import safe_text

MAX_REQUEST_BYTES = 4096
"""A request line longer than this is refused and the connection closed."""
PING = "ping"
COMMAND_NAMES = (*COMMANDS, PING)
ID = "id"
"""The optional key naming a request, so that a retry of it is recognised."""
ID_CHARS = 64


def check_request_id(value: Any) -> str:
    """A request id: 1-64 letters, digits, '.', '_', ':' or '-'; ConfigError saying why not."""
    if not isinstance(value, str) or not 0 < len(value) <= ID_CHARS \
            or not all(c.isascii() and (c.isalnum() or c in "._:-") for c in value):
        raise ConfigError(f"id must be 1-{ID_CHARS} letters, digits, '.', '_', ':' or '-'")
    return value


def request_id(obj: dict[str, Any]) -> str | None:
    """The checked ``id`` of a decoded request (None: it has none); ValueError saying why it is unusable."""
    if ID not in obj:
        return None
    try:
        return check_request_id(obj[ID])
    except ConfigError as e:
        raise ValueError(str(e)) from None


def _fields(klass: type[Command]) -> list[str]:
    return [f.name for f in fields(klass) if f.name != "source"]


def parse_request(obj: Any, source: str = "remote") -> Command | None:
    """One decoded request to a command; None for ``ping``. Raises ValueError saying why not."""
    if not isinstance(obj, dict):
        raise ValueError("a request must be a JSON object")
    name = obj.get("cmd")
    if not isinstance(name, str) or name not in COMMAND_NAMES:
        raise ValueError(f"unknown cmd {safe_text(json.dumps(name), newlines=False, limit=40)}; "
                         f"known: {', '.join(COMMAND_NAMES)}")
    allowed = set() if name == PING else set(_fields(COMMANDS[name]))
    request_id(obj)
    extra = set(obj) - {"cmd", ID} - allowed
    if extra:
        raise ValueError(f"{name} does not take {', '.join(sorted(safe_text(k, limit=40) for k in extra))}")
    if name == PING:
        return None
    klass = COMMANDS[name]
    kwargs: dict[str, Any] = {}
    for f in _fields(klass):
        if f in obj:
            try:
                kwargs[f] = CHECKS[f](obj[f])
            except ConfigError as e:
                raise ValueError(str(e)) from None
        elif f not in OPTIONAL:
            raise ValueError(f"{name} needs {f}")
    return klass(source=source, **kwargs)


def command_request(cmd: Command) -> dict[str, Any]:
    """The request for a command object (the inverse of :func:`parse_request`)."""
    if type(cmd).wire not in COMMANDS:
        raise ValueError(f"{type(cmd).__name__} cannot be sent to a remote run")
    return {"cmd": type(cmd).wire, **cmd.args()}


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json`` hook: a key given twice (``{"cmd": "ping", "cmd": "stop"}``) makes the request malformed, never
    the last one wins."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"key {k[:40]!r} given twice")
        out[k] = v
    return out


def refuse_constant(name: str) -> Any:
    """``json`` hook: bare NaN/Infinity are not JSON, and never a number a run should take."""
    raise ValueError(f"bare {name} is not valid JSON")
