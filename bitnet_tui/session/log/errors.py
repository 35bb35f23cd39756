"""The two ways a session log can fail: it cannot be used (read side) or cannot be written (write side)."""

from __future__ import annotations

from bitnet_tui.session.errors import SentenceOSError, UserError


class SessionError(UserError, ValueError):
    """A file cannot be used as a session log. The message is one user-facing sentence."""


class LogReplaced(SessionError):
    """The log being followed is no longer the file it was (a new file at its path, or one shorter than what was
    read): what follows belongs to another run, so it is never read on from the old offset."""


class SessionWriteError(SentenceOSError):
    """Writing the session log failed (disk full, permissions, a vanished disk)."""
