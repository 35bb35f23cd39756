"""A scrolled panel whose whole body is one renderable of the feed, redrawn when its part of the feed changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import RenderableType
from textual.containers import VerticalScroll
from textual.widgets import Static


class BodyPanel(VerticalScroll):
    """Subclasses name their part of ``Feed.versions`` (``part``) and the function that draws it (``draw``)."""

    part = ""
    draw: Callable[[Any], RenderableType] = staticmethod(lambda feed: "")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._drawn: tuple[int, int] = (-1, -1)
        self._body = Static()

    def compose(self) -> Any:
        yield self._body

    def update_from(self, feed: Any, force: bool = False) -> bool:
        key = (id(feed), feed.versions[self.part])
        if key == self._drawn and not force:
            return False
        self._drawn = key
        self._body.update(self.draw(feed))
        return True
