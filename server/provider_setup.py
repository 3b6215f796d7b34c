"""Building the providers from config and each provider's usual environment variables.

A value in ``[providers.<name>]`` wins; otherwise the variable the provider's own SDK reads is
used, so existing deployments work unchanged. A provider without its key is listed with
``configured: false`` and refuses streams with ``provider_not_configured``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from providers.base import Provider
from providers.dialect import Dialect, ProviderSettings
from providers.dialects import anthropic, azure_openai, gemini, ollama, openai
from providers.http.client import HttpClient
from providers.http.errors import UnsupportedProxy
from providers.http.provider import HttpProvider
from providers.http.wire import check_proxy
from providers.offline import rulebased
from providers.offline.rulebased import RuleBasedProvider
from providers.registry import ProviderRegistry
from server.config import Config, ConfigError, ProviderConfig


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    dialect: Callable[[ProviderSettings], Dialect]
    key_env: tuple[str, ...]  # the first one set wins
    base_env: str
    default_base: str
    default_model: str
    version_env: str | None = None


SPECS: dict[str, ProviderSpec] = {
    "openai": ProviderSpec(
        openai.OpenAIDialect,
        ("OPENAI_API_KEY",),
        "OPENAI_BASE_URL",
        openai.DEFAULT_BASE_URL,
        openai.DEFAULT_MODEL,
    ),
    "azure_openai": ProviderSpec(
        azure_openai.AzureOpenAIDialect,
        ("AZURE_OPENAI_API_KEY",),
        "AZURE_OPENAI_ENDPOINT",
        "",
        azure_openai.DEFAULT_MODEL,
        version_env="OPENAI_API_VERSION",
    ),
    "anthropic": ProviderSpec(
        anthropic.AnthropicDialect,
        ("ANTHROPIC_API_KEY",),
        "ANTHROPIC_BASE_URL",
        anthropic.DEFAULT_BASE_URL,
        anthropic.DEFAULT_MODEL,
    ),
    "gemini": ProviderSpec(
        gemini.GeminiDialect,
        ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        "GEMINI_BASE_URL",
        gemini.DEFAULT_BASE_URL,
        gemini.DEFAULT_MODEL,
    ),
    "ollama": ProviderSpec(
        ollama.OllamaDialect,
        ("OLLAMA_API_KEY",),
        "OLLAMA_HOST",
        ollama.DEFAULT_BASE_URL,
        ollama.DEFAULT_MODEL,
    ),
}
RULEBASED_DELAY_MS = 50.0


def settings_for(name: str, config: ProviderConfig | None, environ: Mapping[str, str]) -> ProviderSettings:
    spec = SPECS[name]
    config = config or ProviderConfig()
    key = config.api_key or next((environ[k] for k in spec.key_env if environ.get(k)), None)
    version = config.api_version or (environ.get(spec.version_env) if spec.version_env else None)
    return ProviderSettings(
        api_key=key,
        base_url=config.base_url or environ.get(spec.base_env) or spec.default_base,
        default_model=config.default_model or spec.default_model,
        api_version=version or None,
    )


def build_registry(
    config: Config, client: HttpClient, environ: Mapping[str, str], extra: Sequence[Provider] = ()
) -> ProviderRegistry:
    providers: list[Provider] = [_rulebased(config.providers.get("rulebased") or ProviderConfig())]
    for name, spec in SPECS.items():
        dialect = spec.dialect(settings_for(name, config.providers.get(name), environ))
        providers.append(_checked_proxy(HttpProvider(dialect, client)))
    registry = ProviderRegistry([*providers, *extra])
    _check_names(config, registry)
    return registry


def _checked_proxy(provider: HttpProvider) -> HttpProvider:
    """A proxy the client cannot use stops start-up, rather than failing every request."""
    if provider.configured and provider.proxy is not None:
        try:
            check_proxy(provider.proxy)
        except UnsupportedProxy as exc:
            where = "HTTPS_PROXY, HTTP_PROXY or ALL_PROXY"
            raise ConfigError(f"config: the proxy for provider `{provider.name}` ({where}): {exc}") from None
    return provider


def _rulebased(config: ProviderConfig) -> RuleBasedProvider:
    delay = RULEBASED_DELAY_MS if config.chunk_delay_ms is None else config.chunk_delay_ms
    return RuleBasedProvider(
        sleep=asyncio.sleep,
        chunk_delay_ms=delay,
        default_model=config.default_model or rulebased.DEFAULT_MODEL,
    )


def _check_names(config: Config, registry: ProviderRegistry) -> None:
    known = ", ".join(registry.names)
    for name in config.providers:
        if registry.get(name) is None:
            raise ConfigError(f"config: unknown provider `providers.{name}` (known: {known})")
    named = [("streaming.default_provider", config.streaming.default_provider)]
    named += [
        (f"agents.{a}.provider", agent.provider) for a, agent in config.agents.items() if agent.provider
    ]
    named += [
        (f"providers.{p}.fallbacks", fallback.partition("/")[0])
        for p, provider in config.providers.items()
        for fallback in provider.fallbacks
    ]
    for key, name in named:
        if registry.get(name) is None:
            raise ConfigError(f"config: `{key}` names unknown provider `{name}` (known: {known})")
