"""The fallbacks of a resolved request: ``[providers.X] fallbacks``, as routes the stream may take."""

from __future__ import annotations

import msgspec

from providers.registry import ProviderRegistry
from server.config import Config
from server.streams.resolve import Resolved
from server.streams.runner import Route


def fallback_routes(resolved: Resolved, config: Config, registry: ProviderRegistry) -> list[Route]:
    """Each configured fallback ("provider" or "provider/model") that can serve now, in order.
    Names were checked at start-up; a fallback without an API key is skipped."""
    configured = config.providers.get(resolved.provider.name)
    routes = []
    for fallback in configured.fallbacks if configured else ():
        name, _, model = fallback.partition("/")
        provider = registry.get(name)
        if provider is None or not provider.configured or provider is resolved.provider:
            continue
        request = msgspec.structs.replace(resolved.request, model=model or provider.default_model)
        if provider.unsupported(request) is not None:
            continue  # it could not take the request: no route
        routes.append(Route(provider, request))
    return routes
