"""The one error type a user can fix. Every module raises a subclass; the CLI turns it into one line."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix (a bad flag, a file that is not a session, a run that is gone).

    The message is one sentence, printed alone with no traceback; ``exit_code`` is what the command exits
    with (2: a usage or input error, the README's exit-code table).
    """

    exit_code = 2


class ConfigError(UserError, ValueError):
    """A configuration value is invalid. The message is one user-facing sentence."""


class SentenceOSError(OSError):
    """An OSError whose message is the sentence alone: ``str()`` is never Python's ``[Errno 28] ...`` prefix (the
    errno stays in ``.errno`` for code that branches on it)."""

    def __str__(self) -> str:
        return self.strerror if self.strerror else super().__str__()
