"""The Starlette application factory."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from providers.base import Provider
from providers.registry import ProviderRegistry
from providers.rulebased import RuleBasedProvider
from server import http_routes as routes
from server.access import AccessControl
from server.config import Config, ConfigError
from server.hub import StreamHub
from server.ws import websocket_endpoint

STATIC = Path(__file__).parent / "static"
CLIENTS_JS = Path(__file__).resolve().parent.parent / "clients" / "js"


def build_providers(config: Config, extra: Sequence[Provider] = ()) -> ProviderRegistry:
    rulebased = config.providers.get("rulebased")
    delay = rulebased.chunk_delay_ms if rulebased and rulebased.chunk_delay_ms is not None else 50.0
    providers: list[Provider] = [RuleBasedProvider(sleep=asyncio.sleep, chunk_delay_ms=delay), *extra]
    registry = ProviderRegistry(providers)
    _check_names(config, registry)
    return registry


def _check_names(config: Config, registry: ProviderRegistry) -> None:
    known = ", ".join(registry.names)
    for name in config.providers:
        if registry.get(name) is None:
            raise ConfigError(f"config: unknown provider `providers.{name}` (known: {known})")
    named = [("streaming.default_provider", config.streaming.default_provider)]
    named += [
        (f"agents.{a}.provider", agent.provider) for a, agent in config.agents.items() if agent.provider
    ]
    for key, name in named:
        if registry.get(name) is None:
            raise ConfigError(f"config: `{key}` names unknown provider `{name}` (known: {known})")


async def _http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, routes.HttpProblem)
    return routes.error_response(exc)


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    body = {"error": {"code": "not_found", "message": f"no route {request.url.path}", "retryable": False}}
    return JSONResponse(body, status_code=404)


def create_app(config: Config | None = None, extra_providers: Sequence[Provider] = ()) -> Starlette:
    """The gateway. ``extra_providers`` serve beside the built-in ones (embedding, tests)."""
    config = config or Config()
    hub = StreamHub(config, build_providers(config, extra_providers))
    app = Starlette(
        routes=[
            WebSocketRoute("/v1/ws", websocket_endpoint),
            Route("/v1/streams", routes.post_stream, methods=["POST"]),
            Route("/v1/streams/{stream_id}", routes.delete_stream, methods=["DELETE"]),
            Route("/v1/completions", routes.post_completion, methods=["POST"]),
            Route("/api/scripts/generate-stream", routes.post_script_stream, methods=["POST"]),
            Route("/api/agents/{agent_id}/chat/stream", routes.post_agent_chat, methods=["POST"]),
            Route("/healthz", routes.healthz),
            Mount("/clients/js", StaticFiles(directory=CLIENTS_JS, check_dir=False), name="clients-js"),
            Mount("/", StaticFiles(directory=STATIC, html=True, check_dir=False), name="static"),
        ],
        middleware=[Middleware(AccessControl, config.server.auth_tokens, config.server.allowed_origins)],
        exception_handlers={routes.HttpProblem: _http_problem, 404: _not_found},
    )
    app.state.hub = hub
    return app
