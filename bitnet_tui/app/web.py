"""The dashboard in a browser: Textual's web serving (``textual-serve``, the ``serve`` extra), on 127.0.0.1 only.

Each browser tab that opens the page gets its own dashboard process (``replay``, ``watch`` or ``attach`` of the
session), whose terminal output textual-serve relays over a websocket. textual-serve itself checks no one: these
checks are ours, on every request (docs/security.md):

- the page and its websocket answer only a ``Host`` of ``127.0.0.1:PORT`` or ``localhost:PORT`` (a web page whose
  name an attacker points at 127.0.0.1, DNS rebinding, is refused), and the websocket only an ``Origin`` of this
  server (another site's page in the same browser cannot open it);
- with ``token`` (``serve --steer``), the page needs ``?token=`` (printed to the owner's terminal only, never in
  argv or the log) and sets it as an HttpOnly, SameSite=Strict cookie, and the websocket needs that cookie.
"""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web
from textual_serve.server import Server

COOKIE = "bitnet_tui_token"


class DashboardServer(Server):
    """textual-serve's server with the checks above."""

    def __init__(self, command: str, *, port: int, title: str, token: str | None) -> None:
        super().__init__(command, host="127.0.0.1", port=port, title=title)
        self.token = token
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}

    def refusal(self, request: web.Request, *, websocket: bool) -> str:
        """Why ``request`` is refused ("" when it is not)."""
        if request.host not in self.hosts:
            return "this server answers only http://127.0.0.1 on its own port"
        origin = request.headers.get("Origin")
        if websocket and origin is not None and origin.removeprefix("http://") not in self.hosts:
            return "the dashboard's websocket answers only its own page"
        if self.token is not None:
            given = request.query.get("token", "") if not websocket else ""
            given = given or request.cookies.get(COOKIE, "")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return "this dashboard steers a run: open the address with the token that serve printed"
        return ""

    async def handle_index(self, request: web.Request) -> Any:
        why = self.refusal(request, websocket=False)
        if why:
            raise web.HTTPForbidden(text=why)
        response = await super().handle_index(request)
        if self.token is not None:
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict", path="/")
        return response

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        why = self.refusal(request, websocket=True)
        if why:
            raise web.HTTPForbidden(text=why)
        return await super().handle_websocket(request)
