"""Every running stream of the gateway: global admission, the streams started over HTTP, and
what is recorded when a stream ends or a request is refused (metrics, the stream log line)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import msgspec

from protocol.errors import ErrorCode
from protocol.messages import Done, Error, StreamRequest
from providers.pricing import DEFAULT_PRICES, Rates, cost_usd
from providers.registry import ProviderRegistry
from server.config import Config
from server.edge.metrics import GatewayMetrics
from server.stores.base import ResumeStore, Source
from server.streams.failover import fallback_routes
from server.streams.resolve import Refusal, Resolved, resolve
from server.streams.runner import Stream, StreamSettings

log = logging.getLogger("tokenwire.stream")

KEY_BYTES = 24  # stream keys: 192 random bits, URL-safe base64


class StreamHub:
    def __init__(self, config: Config, registry: ProviderRegistry, store: ResumeStore) -> None:
        self.config = config
        self.registry = registry
        self.store = store
        self.running: set[Stream] = set()
        self.http_streams: dict[str, Stream] = {}  # streams started over HTTP, by id
        s = config.streaming
        self._settings = StreamSettings(
            stream_timeout=s.stream_timeout_seconds,
            first_token_timeout=s.first_token_timeout_seconds,
            idle_timeout=s.idle_timeout_seconds,
            buffer_size=s.buffer_size,
            streaming_enabled=s.enabled,
            retry_attempts=s.retry_attempts,
            retry_backoff=s.retry_backoff_seconds,
            retry_max_wait=s.retry_max_wait_seconds,
        )
        self._prices = {name: self._prices_for(name) for name in registry.names}
        self.draining = False  # shutting down: no new streams (server.lifecycle)
        self._background: set[asyncio.Task[None]] = set()
        self._grace_timers: dict[str, asyncio.TimerHandle] = {}  # by key: detached streams
        self.metrics = GatewayMetrics(registry.names, lambda: len(self.running))

    async def open(self, stream_id: str, request: StreamRequest) -> Stream | Refusal:
        """Resolve and admit a request, and start its stream (the ack is logged at once)."""
        if self.draining:
            return Refusal(ErrorCode.SHUTTING_DOWN, "the gateway is shutting down; try another instance")
        resolved = resolve(request, self.config, self.registry)
        if isinstance(resolved, Refusal):
            return resolved
        key = secrets.token_urlsafe(KEY_BYTES)
        if not await self.store.admit(key):
            return Refusal(ErrorCode.SERVER_BUSY, "the gateway is at its stream limit; try again shortly")
        return self._start(stream_id, key, resolved)

    async def open_http(self, request: StreamRequest) -> Stream | Refusal:
        """Like ``open``, for HTTP routes: ids are unique among running HTTP streams."""
        stream_id = request.id or "s-" + secrets.token_hex(8)
        if stream_id in self.http_streams:
            return Refusal(ErrorCode.DUPLICATE_STREAM, f"a stream with id `{stream_id}` is already running")
        stream = await self.open(stream_id, request)
        if isinstance(stream, Stream):
            self.http_streams[stream_id] = stream
            # Let the stream's task send its upstream request before the caller sets up the
            # response (Starlette's and uvicorn's work, ~0.1 ms): the provider starts meanwhile.
            await asyncio.sleep(0)
        return stream

    async def find_resumable(self, key: str, after_seq: int) -> tuple[Source | None, Refusal | None]:
        """The stream of ``key`` and, when it cannot be read after ``after_seq``, why not."""
        source = await self.store.find(key)
        if source is None:
            return None, Refusal(ErrorCode.STREAM_EXPIRED, "no stream with this key: unknown, or expired")
        last = len(source.log.entries) - 1
        # A cut log (stream_lost) did not end at `last`: a reader past it gets the error all the same.
        if source.ended and after_seq >= last and not source.log.cut:
            return source, Refusal(ErrorCode.BAD_MESSAGE, f"the stream ended at seq {last}: nothing after it")
        return source, None

    async def cancel_key(self, key: str) -> bool:
        """Cancel the stream of ``key`` wherever it runs; False when there is no such stream
        (one that ended but is kept for resuming is still a stream: nothing to cancel)."""
        return await self.store.cancel(key) or await self.store.find(key) is not None

    def detached(self, source: Source) -> None:
        """Its client went away: the stream runs on for ``resume_grace_seconds``, waiting for a
        resume, and is cancelled upstream if nobody reads it by then."""
        if source.ended:
            return
        grace = self.config.resume.resume_grace_seconds
        if grace <= 0:
            source.cancel()
            return
        earlier = self._grace_timers.pop(source.key, None)
        if earlier is not None:
            earlier.cancel()
        loop = asyncio.get_running_loop()
        self._grace_timers[source.key] = loop.call_later(grace, self._grace_over, source)

    def _grace_over(self, source: Source) -> None:
        self._grace_timers.pop(source.key, None)
        if not source.ended and not source.log.has_readers:
            task = asyncio.get_running_loop().create_task(self._cancel_unless_read_elsewhere(source))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _cancel_unless_read_elsewhere(self, source: Source) -> None:
        if source.log.has_readers or source.ended:
            return
        if await self.store.read_elsewhere(source.key):  # look again later: that reader may leave too
            self.detached(source)
        else:
            source.cancel()

    def _start(self, stream_id: str, key: str, resolved: Resolved) -> Stream:
        fallbacks = fallback_routes(resolved, self.config, self.registry)
        settings, cost = self._settings, self._cost
        stream = Stream(stream_id, resolved.provider, resolved.request, settings, cost, fallbacks, key)
        self.running.add(stream)
        self.store.started(stream)
        stream.start(self._ended)
        return stream

    def refused(self, code: ErrorCode) -> None:
        """Count an error sent to a client before any stream existed (a refusal)."""
        self.metrics.error(code)

    def _ended(self, stream: Stream) -> None:
        grace = self._grace_timers.pop(stream.key, None)
        if grace is not None:
            grace.cancel()  # the timer would hold the whole ended Stream until it fires
        self.running.discard(stream)
        self.store.ended(stream)
        over_http = self.http_streams.get(stream.id) is stream
        if over_http:
            del self.http_streams[stream.id]
        try:
            self._record(stream, "http" if over_http else "ws")
        except Exception:  # observability must never break the gateway
            log.exception("recording the end of stream %s failed", stream.id)

    def _record(self, stream: Stream, transport: str) -> None:
        """Metrics and one log line for an ended stream: its figures, never its text or keys."""
        terminal = stream.log.entries[-1]
        fields: dict[str, Any] = {
            "event": "stream_end",
            "stream_id": stream.id,
            "transport": transport,
            "provider": stream.provider.name,
            "model": stream.request.model,
        }
        if type(terminal) is Done:
            usage = terminal.usage
            fields.update(
                outcome="cancelled" if terminal.finish_reason == "cancelled" else "done",
                code=None,
                finish_reason=terminal.finish_reason,
                ttft_ms=terminal.metrics.ttft_ms,
                duration_ms=terminal.metrics.duration_ms,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                tokens_estimated=usage.estimated,
                cost_usd=terminal.metrics.estimated_cost_usd,
            )
        else:
            assert type(terminal) is Error, terminal  # every ended stream's last entry is terminal
            self.metrics.error(terminal.code)
            fields.update(
                outcome="error",
                code=terminal.code.value,
                finish_reason=None,
                ttft_ms=None,
                duration_ms=stream.elapsed_ms(),
                prompt_tokens=None,
                completion_tokens=None,
                upstream_status=terminal.status,
                retryable=terminal.retryable,
            )
        self.metrics.stream_ended(
            stream.provider.name,
            fields["outcome"],
            ttft_ms=fields["ttft_ms"],
            duration_ms=fields["duration_ms"],
            prompt_tokens=fields["prompt_tokens"],
            completion_tokens=fields["completion_tokens"],
        )
        if log.isEnabledFor(logging.INFO):
            log.info(msgspec.json.encode(fields).decode())

    def _cost(self, provider: str, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        return cost_usd(self._prices[provider], model, prompt_tokens, completion_tokens)

    def _prices_for(self, provider: str) -> dict[str, Rates]:
        prices = dict(DEFAULT_PRICES.get(provider, {}))
        configured = self.config.providers.get(provider)
        if configured is not None:
            prices.update({m: (p.input_per_mtok, p.output_per_mtok) for m, p in configured.prices.items()})
        return prices
