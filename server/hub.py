"""Every running stream of the gateway: global admission, and the streams started over HTTP."""

from __future__ import annotations

import secrets
from functools import partial

from protocol.errors import ErrorCode
from protocol.messages import StreamRequest
from providers.pricing import DEFAULT_PRICES, Rates, cost_usd
from providers.registry import ProviderRegistry
from server.config import Config
from server.resolve import Refusal, Resolved, resolve
from server.runner import Stream, StreamSettings


class StreamHub:
    def __init__(self, config: Config, registry: ProviderRegistry) -> None:
        self.config = config
        self.registry = registry
        self.running: set[Stream] = set()
        self.http_streams: dict[str, Stream] = {}  # streams started over HTTP, by id
        s = config.streaming
        self._settings = StreamSettings(
            stream_timeout=s.stream_timeout_seconds,
            first_token_timeout=s.first_token_timeout_seconds,
            idle_timeout=s.idle_timeout_seconds,
            buffer_size=s.buffer_size,
            streaming_enabled=s.enabled,
        )
        self._prices = {name: self._prices_for(name) for name in registry.names}

    def open(self, stream_id: str, request: StreamRequest) -> Stream | Refusal:
        """Resolve and admit a request, and start its stream (the ack is logged at once)."""
        resolved = resolve(request, self.config, self.registry)
        if isinstance(resolved, Refusal):
            return resolved
        if len(self.running) >= self.config.streaming.max_concurrent_streams:
            return Refusal(ErrorCode.SERVER_BUSY, "the gateway is at its stream limit; try again shortly")
        return self._start(stream_id, resolved)

    def open_http(self, request: StreamRequest) -> Stream | Refusal:
        """Like ``open``, for HTTP routes: ids are unique among running HTTP streams."""
        stream_id = request.id or "s-" + secrets.token_hex(8)
        if stream_id in self.http_streams:
            return Refusal(ErrorCode.DUPLICATE_STREAM, f"a stream with id `{stream_id}` is already running")
        stream = self.open(stream_id, request)
        if isinstance(stream, Stream):
            self.http_streams[stream_id] = stream
        return stream

    def _start(self, stream_id: str, resolved: Resolved) -> Stream:
        prices = self._prices[resolved.provider.name]
        stream = Stream(
            stream_id, resolved.provider, resolved.request, self._settings, partial(cost_usd, prices)
        )
        self.running.add(stream)
        stream.start(self._ended)
        return stream

    def _ended(self, stream: Stream) -> None:
        self.running.discard(stream)
        if self.http_streams.get(stream.id) is stream:
            del self.http_streams[stream.id]

    def _prices_for(self, provider: str) -> dict[str, Rates]:
        prices = dict(DEFAULT_PRICES.get(provider, {}))
        configured = self.config.providers.get(provider)
        if configured is not None:
            prices.update({m: (p.input_per_mtok, p.output_per_mtok) for m, p in configured.prices.items()})
        return prices
