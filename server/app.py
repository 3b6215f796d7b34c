"""The Starlette application factory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from providers.base import Provider
from providers.http.client import HttpClient
from server.config import Config
from server.edge.access import AccessControl
from server.edge.access_log import AccessLog, Level
from server.edge.metrics import metrics_endpoint
from server.hub import StreamHub
from server.lifecycle import Shutdown
from server.provider_setup import build_registry
from server.stores import make_store
from server.transports import anthropic_routes, openai_routes, responses_routes, ui_routes
from server.transports import http_routes as routes
from server.transports.ui_ws import UIConnection
from server.transports.ws import Connection, WebSocketEndpoint

STATIC = Path(__file__).parent / "static"
CLIENTS_JS = Path(__file__).resolve().parent.parent / "clients" / "js"


async def _http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, routes.HttpProblem)
    hub: StreamHub = request.app.state.hub
    hub.refused(exc.code)  # every HTTP refusal passes here: counted once, in tokenwire_errors_total
    return routes.error_response(exc)


async def _not_found(request: Request, exc: Exception) -> Response:
    return openai_routes.not_found(request.url.path)


class StaticFallback:
    """Where a request no route matched goes: a static file for GET and HEAD, else 404. Not a
    Mount at "/", which matches every path: it would take the 405 a route's wrong method is owed,
    and answer an unknown path POSTed to with StaticFiles' 405, where the OpenAI SDKs need a 404
    to raise NotFoundError."""

    def __init__(self, static: ASGIApp, not_found: ASGIApp) -> None:
        self.static = static
        self.not_found = not_found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            await self.static(scope, receive, send)
        else:
            await self.not_found(scope, receive, send)


class CountedConnections:
    """Wraps an ASGI app to keep a gauge of the connections it is serving (``/v1/ws``)."""

    def __init__(self, app: ASGIApp, gauge: Level) -> None:
        self.app = app
        self.gauge = gauge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.gauge.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.gauge.dec()


class TokenwireApp:
    """The ASGI app. The WebSocket routes (``GET /v1/ws``) are reached directly, outside
    Starlette's middleware stack, whose per-message send wrapper profiled at a fifth of the
    WebSocket sender's time; every other route is the Starlette app."""

    def __init__(
        self, http: Starlette, websocket: ASGIApp, websocket_paths: Iterable[str], shutdown: Shutdown
    ) -> None:
        self.http = http
        self.websocket_paths = frozenset(websocket_paths)
        self.websocket = websocket
        self.state = http.state
        self.shutdown = shutdown  # run by server.cli.GatewayServer on SIGTERM

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] in self.websocket_paths:
            await self.websocket(scope, receive, send)
        else:
            await self.http(scope, receive, send)


def create_app(
    config: Config | None = None,
    extra_providers: Sequence[Provider] = (),
    environ: Mapping[str, str] | None = None,
) -> TokenwireApp:
    """The gateway. ``extra_providers`` serve beside the built-in ones (embedding, tests);
    provider keys and URLs not in ``config`` come from ``environ`` (default: os.environ)."""
    config = config or Config()
    upstream = config.upstream
    client = HttpClient(
        connect_timeout=upstream.connect_timeout_seconds,
        max_connections=upstream.max_connections,
        pool_timeout=upstream.pool_timeout_seconds,
        keepalive=upstream.keepalive_seconds,
    )
    registry = build_registry(config, client, os.environ if environ is None else environ, extra_providers)
    hub = StreamHub(config, registry, make_store(config))
    endpoint = WebSocketEndpoint(hub, {"/v1/ws": Connection, "/v1/ui/ws": UIConnection})
    shutdown = Shutdown(hub, endpoint, config.server.shutdown_grace_seconds)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.store.start()  # first: when Redis is unreachable, nothing else was opened
        await client.start()
        try:
            yield
        finally:
            shutdown.end_streams()  # served without GatewayServer: no grace period was given
            await hub.store.close()
            await client.close()

    app = Starlette(
        lifespan=lifespan,
        routes=[
            Route("/v1/streams", routes.post_stream, methods=["POST"]),
            Route("/v1/streams/{key}", routes.get_stream, methods=["GET"]),
            Route("/v1/streams/{key}", routes.delete_stream, methods=["DELETE"]),
            Route("/v1/completions", routes.post_completion, methods=["POST"]),
            Route("/v1/ui/chat", ui_routes.post_chat, methods=["POST"]),
            Route("/v1/ui/chat/{chat_id}/stream", ui_routes.get_chat_stream, methods=["GET"]),
            Route("/v1/chat/completions", openai_routes.chat_completions, methods=["POST"]),
            Route("/v1/messages", anthropic_routes.messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", anthropic_routes.count_tokens, methods=["POST"]),
            Route("/v1/responses", responses_routes.responses, methods=["POST"]),
            Route("/v1/models", openai_routes.list_models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", openai_routes.retrieve_model, methods=["GET"]),
            Route("/api/scripts/generate-stream", routes.post_script_stream, methods=["POST"]),
            Route("/api/agents/{agent_id}/chat/stream", routes.post_agent_chat, methods=["POST"]),
            Route("/healthz", routes.healthz),
            Route("/metrics", metrics_endpoint),  # guarded like the API when tokens are set
            # Only the client's sources and examples: not its tests, package files or node_modules.
            Mount("/clients/js/src", StaticFiles(directory=CLIENTS_JS / "src", check_dir=False)),
            Mount("/clients/js/examples", StaticFiles(directory=CLIENTS_JS / "examples", check_dir=False)),
        ],
        middleware=[
            Middleware(AccessLog, hub.metrics.sse_connections),  # outermost: logs refusals too
            Middleware(
                AccessControl,
                config.server.auth_tokens,
                config.server.allowed_origins,
                # OpenAI's and Anthropic's error shapes on their routes
                refusals=openai_routes.REFUSALS | anthropic_routes.REFUSALS,
                on_refused=hub.refused,
            ),
        ],
        exception_handlers={routes.HttpProblem: _http_problem, 404: _not_found},
    )
    static = StaticFiles(directory=STATIC, html=True, check_dir=False)
    app.router.default = StaticFallback(static, app.router.not_found)
    app.state.hub = hub
    access = (config.server.auth_tokens, config.server.allowed_origins)
    websocket = CountedConnections(endpoint, hub.metrics.ws_connections)
    guarded = AccessControl(websocket, *access, on_refused=hub.refused)
    return TokenwireApp(app, guarded, endpoint.routes, shutdown)
