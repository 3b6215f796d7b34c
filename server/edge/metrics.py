"""The gateway's Prometheus metrics, in a registry of each app's own (never the global default).

Everything is updated once per event that ends something (a stream, a refusal, a connection),
never per chunk. Label values are bounded: provider names come from the provider registry and
error codes from ``ErrorCode``; nothing a client types (models, ids, prompts) becomes a label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from protocol.errors import ErrorCode
from server.edge.guard import REASONS

OUTCOMES = ("done", "cancelled", "error")
TRANSPORTS = ("ws", "sse")
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass(frozen=True, slots=True)
class _ProviderSeries:
    streams: dict[str, Counter]  # by outcome
    ttft: Histogram
    duration: Histogram
    prompt_tokens: Counter
    completion_tokens: Counter


class GatewayMetrics:
    """The metric families of one app. ``active_streams`` is read at scrape time."""

    def __init__(self, providers: Iterable[str], active_streams: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge(
            "tokenwire_active_connections",
            "Open client connections: WebSockets (ws) and Server-Sent Events responses (sse).",
            ["transport"],
            registry=r,
        )
        self.active_streams = Gauge("tokenwire_active_streams", "Streams running now.", registry=r)
        self.active_streams.set_function(active_streams)
        self.streams = Counter(
            "tokenwire_streams",
            "Streams ended, by provider and outcome (done, cancelled, error).",
            ["provider", "outcome"],
            registry=r,
        )
        self.errors = Counter(
            "tokenwire_errors",
            "Errors sent to clients, by code: stream errors and refusals.",
            ["code"],
            registry=r,
        )
        self.ttft = Histogram(
            "tokenwire_ttft_seconds",
            "Time from accepting a stream to its first token.",
            ["provider"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "tokenwire_stream_duration_seconds",
            "Time from accepting a stream to its terminal event, whatever the outcome.",
            ["provider"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.connections_refused = Counter(
            "tokenwire_connections_refused",
            "Connections the server closed before the app saw a request, by reason.",
            ["reason"],
            registry=r,
        )
        self.tokens = Counter(
            "tokenwire_tokens",
            "Tokens of ended streams (reported by the provider, else estimated).",
            ["provider", "kind"],
            registry=r,
        )
        self.reads_paused = Counter(
            "tokenwire_reads_paused",
            "Times a client's socket stopped being read: its unread replies reached their bound.",
            registry=r,
        )
        # Every series exists from the start (at 0), so rate() sees the first increment.
        self.ws_connections = self.connections.labels("ws")
        self.sse_connections = self.connections.labels("sse")
        self._errors = {code: self.errors.labels(code.value) for code in ErrorCode}
        self._refusals = {reason: self.connections_refused.labels(reason) for reason in REASONS}
        self._per_provider = {provider: self._series(provider) for provider in providers}

    def _series(self, provider: str) -> _ProviderSeries:
        """One provider's labelled series, looked up once: ``labels()`` per stream end profiled
        as a visible share of a short stream's cost."""
        return _ProviderSeries(
            streams={outcome: self.streams.labels(provider, outcome) for outcome in OUTCOMES},
            ttft=self.ttft.labels(provider),
            duration=self.duration.labels(provider),
            prompt_tokens=self.tokens.labels(provider, "prompt"),
            completion_tokens=self.tokens.labels(provider, "completion"),
        )

    def error(self, code: ErrorCode) -> None:
        self._errors[code].inc()

    def connection_refused(self, reason: str) -> None:
        self._refusals[reason].inc()

    def stream_ended(
        self,
        provider: str,
        outcome: str,
        *,
        ttft_ms: float | None,
        duration_ms: float | None,
        prompt_tokens: int | None,
        completion_tokens: int | None,
    ) -> None:
        series = self._per_provider[provider]  # every provider of the registry, fixed at start
        series.streams[outcome].inc()
        if ttft_ms is not None:
            series.ttft.observe(ttft_ms / 1000)
        if duration_ms is not None:
            series.duration.observe(duration_ms / 1000)
        if prompt_tokens:
            series.prompt_tokens.inc(prompt_tokens)
        if completion_tokens:
            series.completion_tokens.inc(completion_tokens)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``: the app's registry in the Prometheus text format."""
    metrics: GatewayMetrics = request.app.state.hub.metrics
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
