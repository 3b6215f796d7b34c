"""Access control in front of every route: API tokens and an origin allowlist (off by default).

Tokens are accepted as ``Authorization: Bearer <token>`` or, for browser WebSockets that cannot
set headers, as a ``token`` query parameter. Only the API (``/v1/``, ``/api/``) is guarded: the
dashboard page and the JavaScript client hold no secrets, and a browser cannot add a token to
the module imports of a page.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

GUARDED_PREFIXES = ("/v1/", "/api/")


class AccessControl:
    def __init__(self, app: ASGIApp, tokens: list[str], allowed_origins: list[str]) -> None:
        self.app = app
        self.tokens = [t.encode() for t in tokens]
        self.origins = frozenset(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not scope["path"].startswith(GUARDED_PREFIXES):
            await self.app(scope, receive, send)
            return
        problem = self._problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1008, "reason": problem[1]})  # policy violation
        else:
            status, message = problem
            body = {"error": {"code": "unauthorized", "message": message, "retryable": False}}
            await JSONResponse(body, status_code=status)(scope, receive, send)

    def _problem(self, scope: Scope) -> tuple[int, str] | None:
        """(HTTP status, message) when the request may not pass."""
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if self.origins and origin is not None and origin not in self.origins:
            return (403, f"origin {origin} is not allowed")
        if self.tokens and not self._token_ok(headers, scope):
            return (401, "a valid API token is required")
        return None

    def _token_ok(self, headers: Headers, scope: Scope) -> bool:
        auth = headers.get("authorization", "")
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        if given is None:
            given = parse_qs(scope.get("query_string", b"").decode()).get("token", [None])[0]
        if not given:
            return False
        candidate = given.encode()
        return any(hmac.compare_digest(candidate, token) for token in self.tokens)
