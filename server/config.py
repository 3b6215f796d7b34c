"""``tokenwire.toml`` decoded into typed, frozen structs, with ``TOKENWIRE_*`` environment overrides."""

from __future__ import annotations

import copy
import os
import re
import tomllib
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta

from protocol.messages import STREAM_ID_PATTERN, Options

T = TypeVar("T")
AgentId = Annotated[str, Meta(pattern=STREAM_ID_PATTERN)]
Seconds = Annotated[float, Meta(gt=0)]


class ConfigError(Exception):
    """The configuration is unreadable or invalid; the message names the offending key."""


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 8000
    auth_tokens: list[Annotated[str, Meta(min_length=1)]] = []
    allowed_origins: list[str] = []
    max_message_bytes: Annotated[int, Meta(ge=1024, le=16 * 1024 * 1024)] = (
        1_048_576  # long chat histories fit
    )
    max_connections: Annotated[int, Meta(ge=1)] = 10000  # open WebSockets; more are closed with 1013
    # What the gateway's own replies (pong, errors) may hold for one client that does not read
    # them; past either, that client's socket is not read until they are written.
    max_queued_messages: Annotated[int, Meta(ge=16, le=100_000)] = 256
    max_queued_bytes: Annotated[int, Meta(ge=65536, le=64 * 1024 * 1024)] = 1_048_576
    # Every open TCP connection (HTTP, SSE and WebSocket, idle ones too); one more is answered 503
    # and closed at once, before it holds a descriptor. Keep it below the process's `ulimit -n`.
    max_open_connections: Annotated[int, Meta(ge=1)] = 12000
    # A request head (request line and headers, WebSocket handshakes too): larger ones get 431.
    max_head_bytes: Annotated[int, Meta(ge=1024, le=1024 * 1024)] = 65536
    max_head_lines: Annotated[int, Meta(ge=8, le=10000)] = 100
    # A connection without a complete request head this long after it opened, or after its next
    # request began, is closed (uvicorn's keep-alive timeout covers only the wait between requests).
    head_timeout_seconds: Annotated[float, Meta(gt=0, le=600)] = 10.0
    # Per WebSocket: a token bucket of ping and pong frames; past it the socket is closed with 1008.
    control_frames_per_second: Annotated[float, Meta(gt=0)] = 10.0
    control_frames_burst: Annotated[int, Meta(ge=1)] = 20
    # The log's threshold (`tokenwire serve`); below INFO only uvicorn and websockets log more.
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    # On SIGTERM: how long running streams may go on before they end with `shutting_down`.
    shutdown_grace_seconds: Annotated[float, Meta(ge=0)] = 10.0


class StreamingConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    enabled: bool = True
    default_provider: str = "rulebased"
    max_concurrent_streams: Annotated[int, Meta(ge=1)] = 1000
    max_streams_per_connection: Annotated[int, Meta(ge=1)] = 16
    stream_timeout_seconds: Seconds = 600.0
    first_token_timeout_seconds: Seconds = 60.0
    idle_timeout_seconds: Seconds = 60.0
    # Characters of text waiting for one slow client before its stream stops reading upstream.
    buffer_size: Annotated[int, Meta(ge=1024)] = 262144
    keepalive_seconds: Seconds = 15.0  # SSE comment interval
    # Per connection: a token bucket of `start` messages (refused with `rate_limited` when empty).
    starts_per_second: Annotated[float, Meta(gt=0)] = 20.0
    starts_burst: Annotated[int, Meta(ge=1)] = 40
    # A WebSocket whose client has not taken a frame for this long is closed and its streams cancelled.
    slow_client_timeout_seconds: Seconds = 30.0
    # Before the first token only: extra tries of a retryable upstream failure, with exponential
    # backoff from retry_backoff_seconds; a retry-after longer than retry_max_wait_seconds is not waited.
    retry_attempts: Annotated[int, Meta(ge=0, le=10)] = 2
    retry_backoff_seconds: Annotated[float, Meta(ge=0, le=60)] = 0.25
    retry_max_wait_seconds: Annotated[float, Meta(ge=0, le=600)] = 5.0


class ResumeConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    store: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # A stream whose client went away runs this long waiting for a resume, then is cancelled.
    resume_grace_seconds: Annotated[float, Meta(ge=0, le=3600)] = 30.0
    # An ended stream's events stay resumable this long.
    retention_seconds: Annotated[float, Meta(ge=0, le=86400)] = 300.0
    # Bytes of events kept per stream (longer ones are not kept after they end) and in total
    # (memory store: the oldest ended streams are evicted first).
    max_stream_bytes: Annotated[int, Meta(ge=1024)] = 4 * 1024 * 1024
    max_total_bytes: Annotated[int, Meta(ge=1024)] = 256 * 1024 * 1024
    # Redis store: the longest a start's admission, a resume's look-up or a cancel by key waits on
    # one Redis round trip before it falls back as if Redis were down (docs/scale-out.md).
    redis_timeout_seconds: Annotated[float, Meta(gt=0, le=10)] = 0.2


class UpstreamConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The HTTP client that reaches the providers (providers/http/client.py)."""

    # Open connections to all providers together; a request beyond them waits for one to free up,
    # at most pool_timeout_seconds (then `upstream_unavailable`, retryable).
    max_connections: Annotated[int, Meta(ge=1, le=100_000)] = 1000
    pool_timeout_seconds: Annotated[float, Meta(gt=0, le=600)] = 10.0
    # An idle connection is reused this long (less when the provider's Keep-Alive says so).
    keepalive_seconds: Annotated[float, Meta(gt=0, le=3600)] = 15.0
    connect_timeout_seconds: Annotated[float, Meta(gt=0, le=600)] = 10.0


class Price(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """USD per million tokens."""

    input_per_mtok: Annotated[float, Meta(ge=0)]
    output_per_mtok: Annotated[float, Meta(ge=0)]


class ProviderConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    api_key: str | None = None  # else the provider's usual environment variable
    base_url: str | None = None
    api_version: str | None = None  # azure_openai only
    default_model: str | None = None
    prices: dict[str, Price] = {}  # model name -> price; "*" applies to any model
    chunk_delay_ms: Annotated[float, Meta(ge=0, le=60000)] | None = None  # rulebased only
    # Tried in order, before the first token, once this provider's retries are spent:
    # "provider" (its default model) or "provider/model".
    fallbacks: list[Annotated[str, Meta(min_length=1, max_length=200)]] = []


class AgentConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    provider: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    options: Options = Options()


# Used when the file has no [agents] table; environment overrides adjust these rather than replace them.
DEFAULT_AGENTS: dict[str, dict[str, Any]] = {
    "assistant": {"provider": "rulebased", "system_prompt": "You are a helpful assistant."}
}


def _default_agents() -> dict[str, AgentConfig]:
    return {name: msgspec.convert(agent, AgentConfig) for name, agent in DEFAULT_AGENTS.items()}


class Config(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    server: ServerConfig = ServerConfig()
    streaming: StreamingConfig = StreamingConfig()
    resume: ResumeConfig = ResumeConfig()
    upstream: UpstreamConfig = UpstreamConfig()
    providers: dict[str, ProviderConfig] = {}
    agents: dict[AgentId, AgentConfig] = msgspec.field(default_factory=_default_agents)


def load_config(path: str | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (or ``$TOKENWIRE_CONFIG``; neither means all defaults), then apply env overrides."""
    environ = os.environ if environ is None else environ
    source = ""
    if path is None and environ.get("TOKENWIRE_CONFIG"):
        path, source = environ["TOKENWIRE_CONFIG"], " (from TOKENWIRE_CONFIG)"
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except OSError as e:
            raise ConfigError(f"config: cannot read {path}{source}: {e.strerror or e}") from None
        except ValueError as e:  # TOMLDecodeError, or bytes that are not UTF-8
            raise ConfigError(f"config: {path}{source} is not valid TOML: {e}") from None
    if "agents" not in raw:
        raw["agents"] = copy.deepcopy(DEFAULT_AGENTS)
    origins = _apply_env(raw, environ)
    return _decode(raw, origins)


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Merge ``TOKENWIRE_A__B__C=value`` into ``raw``; return dotted key -> variable name.

    Only names with ``__`` are overrides, so ``TOKENWIRE_CONFIG`` and other plain settings are left alone.
    """
    origins: dict[str, str] = {}
    for name, value in sorted(environ.items()):
        lowered = name.lower()
        if not lowered.startswith("tokenwire_") or "__" not in lowered:
            continue
        parts = lowered.removeprefix("tokenwire_").split("__")
        node = raw
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                key = ".".join(parts[: i + 1])
                raise ConfigError(f"config: {name} overrides inside `{key}`, which is not a table")
        node[parts[-1]] = _parse_value(value)
        origins[".".join(parts)] = name
    return origins


def _parse_value(text: str) -> Any:
    """A TOML value (``false``, ``9000``, ``["a"]``), or else the text itself as a plain string."""
    try:
        parsed = tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        return text
    return parsed["v"] if len(parsed) == 1 else text  # a newline in the value must not add keys


def _decode(raw: dict[str, Any], origins: dict[str, str]) -> Config:
    # msgspec reports a dict entry's path as `[...]`, hiding the provider/agent name. Converting each
    # named entry on its own lets errors name it; msgspec then passes the finished structs through.
    raw = dict(raw)
    if isinstance(providers := raw.get("providers"), dict):
        raw["providers"] = {n: _provider(v, f"providers.{n}", origins) for n, v in providers.items()}
    if isinstance(agents := raw.get("agents"), dict):
        raw["agents"] = {n: _agent(n, v, origins) for n, v in agents.items()}
    return _convert(raw, Config, "", origins)


def _provider(value: Any, key: str, origins: dict[str, str]) -> ProviderConfig:
    if isinstance(value, dict) and isinstance(prices := value.get("prices"), dict):
        converted = {m: _convert(p, Price, f"{key}.prices.{m}", origins) for m, p in prices.items()}
        value = {**value, "prices": converted}
    return _convert(value, ProviderConfig, key, origins)


def _agent(agent_id: str, value: Any, origins: dict[str, str]) -> AgentConfig:
    key = f"agents.{agent_id}"
    if not re.fullmatch(STREAM_ID_PATTERN, agent_id):
        raise _error(key, "agent id must be 1-64 characters of A-Za-z0-9._:-", origins)
    # protocol's Options ignores unknown fields (it is wire-facing); in a config file they are typos.
    if isinstance(value, dict) and isinstance(options := value.get("options"), dict):
        for name in options:
            if name not in Options.__struct_fields__:
                raise _error(f"{key}.options.{name}", None, origins)
    return _convert(value, AgentConfig, key, origins)


def _convert(value: Any, typ: type[T], key: str, origins: dict[str, str]) -> T:
    try:
        return msgspec.convert(value, typ)
    except msgspec.ValidationError as e:
        text, _, at = str(e).partition(" - at `$")  # "Expected `int`, got `str` - at `$.server.port`"
        key = f"{key}{at.rstrip('`')}".lstrip(".")
        if unknown := re.fullmatch(r"Object contains unknown field `(.*)`", text):
            raise _error(f"{key}.{unknown[1]}".lstrip("."), None, origins) from None
        raise _error(key, text, origins) from None


def _error(key: str, problem: str | None, origins: dict[str, str]) -> ConfigError:
    """``problem`` None means ``key`` is unknown. Names the environment variable the value came from."""
    message = f"config: unknown key `{key}`" if problem is None else f"config: `{key}`: {problem}"
    for override, name in origins.items():
        if key == override or key.startswith((f"{override}.", f"{override}[")):
            return ConfigError(f"{message} (from environment variable {name})")
    return ConfigError(message)
