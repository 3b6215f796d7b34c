"""Access control in front of every route: API tokens, an origin allowlist and CORS (off by default).

Tokens are accepted as ``Authorization: Bearer <token>``, as ``x-api-key: <token>`` (how the
Anthropic SDKs send their key: the gateway token, never a provider key), or, for browser
WebSockets that cannot set headers, as a ``token`` query parameter or a ``tokenwire_token``
cookie (which the browser sends on the handshake of a same-site page, so the token stays out of
URLs and logs). Only the API (``/v1/``, ``/api/``) and ``/metrics`` are guarded: the dashboard
page and the JavaScript client hold no secrets, and a browser cannot add a token to the module
imports of a page.

``allowed_origins`` does two things: a request that carries an ``Origin`` not on the list is
refused (403, or WebSocket close 1008), which stops cross-site WebSocket hijacking; and the HTTP
routes answer CORS for the origins on it, so pages served elsewhere may call the SSE fallback.
``"*"`` allows every origin.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from protocol.errors import ErrorCode
from server.edge.log_filter import refusing_handshake

GUARDED_PREFIXES = ("/v1/", "/api/", "/metrics")
TOKEN_COOKIE = "tokenwire_token"

CORS_MAX_AGE = "600"
# Any request header from an allowed origin ("*": the official SDKs add their own, x-stainless-*
# and anthropic-dangerous-direct-browser-access, and new ones with releases); "*" never covers
# `authorization`, which is named. No credentials mode is allowed, so "*" is the wildcard.
CORS_ALLOW_HEADERS = "*, authorization, content-type, last-event-id, x-api-key, anthropic-version"
CORS_EXPOSE_HEADERS = "retry-after"

# A route family with an error shape of its own (the OpenAI-compatible API) answers its 401/403
# refusals through one of these: (status, message) -> the response.
RefusalResponse = Callable[[int, str], Response]


class AccessControl:
    def __init__(
        self,
        app: ASGIApp,
        tokens: list[str],
        allowed_origins: list[str],
        refusals: Mapping[str, RefusalResponse] | None = None,  # by path prefix
        on_refused: Callable[[ErrorCode], None] = lambda _: None,  # counts each refusal
    ) -> None:
        self.app = app
        self.on_refused = on_refused
        self.refusals = tuple((refusals or {}).items())
        self.tokens = [t.encode() for t in tokens]
        self.any_origin = "*" in allowed_origins
        self.origins = frozenset(o for o in allowed_origins if o != "*")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not scope["path"].startswith(GUARDED_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is not None and not self._origin_ok(origin):
            await self._refuse(scope, receive, send, 403, f"origin {origin} is not allowed")
            return
        cors = origin is not None and scope["type"] == "http" and (self.any_origin or bool(self.origins))
        if cors and scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await _preflight(origin)(scope, receive, send)  # browsers send no credentials here
            return
        if self.tokens and not self._token_ok(headers, scope):
            send = _with_cors(send, origin) if cors else send
            await self._refuse(scope, receive, send, 401, "a valid API token is required")
            return
        await self.app(scope, receive, _with_cors(send, origin) if cors else send)

    def _origin_ok(self, origin: str) -> bool:
        return self.any_origin or not self.origins or origin in self.origins

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
        self.on_refused(ErrorCode.UNAUTHORIZED)
        if scope["type"] == "websocket":
            # Accepted to be closed, so that a browser sees the code and reason (a refused
            # handshake would show it only 1006); logged as refused (server.edge.log_filter).
            await receive()  # websocket.connect
            with refusing_handshake(1008, message):
                await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1008, "reason": message})  # policy violation
            return
        for prefix, respond in self.refusals:
            if scope["path"].startswith(prefix):
                await respond(status, message)(scope, receive, send)
                return
        body = {"error": {"code": "unauthorized", "message": message, "retryable": False}}
        await JSONResponse(body, status_code=status)(scope, receive, send)

    def _token_ok(self, headers: Headers, scope: Scope) -> bool:
        auth = headers.get("authorization", "")
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else headers.get("x-api-key")
        if given is None:
            given = parse_qs(scope.get("query_string", b"").decode()).get("token", [None])[0]
        if given is None and "cookie" in headers:
            given = cookie_parser(headers["cookie"]).get(TOKEN_COOKIE)
        if not given:
            return False
        candidate = given.encode()
        return any(hmac.compare_digest(candidate, token) for token in self.tokens)


def _preflight(origin: str | None) -> Response:
    return Response(
        status_code=204,
        headers={
            "access-control-allow-origin": origin or "",
            "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
            "access-control-allow-headers": CORS_ALLOW_HEADERS,
            "access-control-max-age": CORS_MAX_AGE,
            "vary": "origin",
        },
    )


def _with_cors(send: Send, origin: str | None) -> Send:
    """``send`` that adds the CORS headers to the response start (the body passes untouched)."""
    extra = [
        (b"access-control-allow-origin", (origin or "").encode("latin-1")),
        (b"access-control-expose-headers", CORS_EXPOSE_HEADERS.encode()),
        (b"vary", b"origin"),
    ]

    async def cors_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return cors_send
