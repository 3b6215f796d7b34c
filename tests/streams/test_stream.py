"""A Stream on the real event loop, without sockets: a scripted provider in, a reader's messages out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Literal

import pytest

from protocol.errors import ErrorCode
from protocol.messages import ChatMessage, Chunk, Done, Error, Notice, ServerMessage, StartAck
from protocol.messages import Usage as ProtocolUsage
from providers.base import (
    Completion,
    Failure,
    Finish,
    GenerationRequest,
    GeneratorProvider,
    ProviderError,
    StreamEvent,
    TextDelta,
    UpstreamAuthError,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamUnavailable,
    Usage,
)
from providers.tokens import estimate_tokens
from server.streams.eventlog import Subscription
from server.streams.runner import Route, Stream, StreamSettings

REQUEST = GenerationRequest(model="m", messages=[ChatMessage("user", "hi")])
HANG: Literal["hang"] = "hang"  # in a script: the upstream sends nothing more, and never finishes
Step = StreamEvent | ProviderError | Literal["hang"]


class ScriptedProvider(GeneratorProvider):
    """Plays one script per try: yields its events, raises its error, or hangs at HANG."""

    streaming: Literal["native", "simulated"] = "native"
    configured = True
    default_model = "m"

    def __init__(self, name: str, *tries: Sequence[Step]) -> None:
        self.name = name
        self.tries = tries
        self.calls = 0  # tries started
        self.closed = 0  # generators closed: how cancellation reaches the upstream
        self.yielded = 0

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        script = self.tries[self.calls]
        self.calls += 1
        try:
            for step in script:
                if step == HANG:
                    await asyncio.Event().wait()
                elif isinstance(step, ProviderError):
                    raise step
                else:
                    self.yielded += 1
                    yield step
        finally:
            self.closed += 1

    async def complete(self, request: GenerationRequest) -> Completion:
        raise AssertionError("streaming is on: complete is not called")


class Reader:
    """A stream's one reader: takes each message as soon as it is told while ``eager``, else
    only when ``take`` is called, like a client that stopped reading."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.eager = True
        self.messages: list[ServerMessage] = []
        self.ends = 0  # calls of the stream's on_end
        self._arrived = asyncio.Event()
        self.subscription = stream.log.subscribe(stream.id, self._notified)

    def _notified(self, subscription: Subscription) -> None:
        if self.eager:
            self.take()

    def take(self) -> None:
        self.messages += self.subscription.take()
        self._arrived.set()

    def on_end(self, _: Stream) -> None:
        self.ends += 1

    async def until(self, count: int) -> None:
        async with asyncio.timeout(2):
            while len(self.messages) < count:
                self._arrived.clear()
                await self._arrived.wait()


def cost(provider: str, model: str, prompt: int, completion: int) -> float:
    return (prompt + 10 * completion) / 1000


def start(provider: ScriptedProvider, *, fallbacks: Sequence[Route] = (), **settings: Any) -> Reader:
    """Start a stream of ``provider`` (retries 1 ms apart by default) with an eager reader."""
    defaults: dict[str, Any] = {
        "stream_timeout": 5.0,
        "first_token_timeout": 5.0,
        "idle_timeout": 5.0,
        "buffer_size": 1024,
        "retry_attempts": 2,
        "retry_backoff": 0.001,
        "retry_max_wait": 1.0,
    }
    stream = Stream("s", provider, REQUEST, StreamSettings(**defaults | settings), cost, fallbacks, key="k")
    reader = Reader(stream)
    stream.start(reader.on_end)
    return reader


async def finished(reader: Reader) -> list[ServerMessage]:
    """Every message of the stream, once it ended."""
    async with asyncio.timeout(2):
        await reader.stream.wait()
    assert reader.subscription.finished
    assert reader.ends == 1
    return reader.messages


def ack(provider: str = "p") -> StartAck:
    return StartAck(id="s", seq=0, provider=provider, model="m", key="k")


def chunk(seq: int, content: str) -> Chunk:
    return Chunk(id="s", seq=seq, content=content)


SHUT_DOWN = Error(
    id="s",
    seq=1,
    code=ErrorCode.SHUTTING_DOWN,
    message="the gateway is shutting down; start the stream again",
    retryable=True,
    provider="p",
)


# ---- a stream from start to end ------------------------------------------------------------------


async def test_a_stream_is_acked_then_streams_its_chunks_then_is_done_with_usage() -> None:
    provider = ScriptedProvider("p", [TextDelta("Hel"), TextDelta("lo"), Usage(3, 2), Finish("stop")])
    *events, done = await finished(start(provider))
    assert events == [ack(), chunk(1, "Hel"), chunk(2, "lo")]
    assert type(done) is Done
    assert (done.seq, done.finish_reason, done.content) == (3, "stop", "Hello")
    assert done.usage == ProtocolUsage(prompt_tokens=3, completion_tokens=2, total_tokens=5, estimated=False)
    assert (done.metrics.provider, done.metrics.model) == ("p", "m")
    assert done.metrics.estimated_cost_usd == cost("p", "m", 3, 2)
    assert done.metrics.ttft_ms is not None
    assert provider.closed == 1


async def test_without_usage_from_the_provider_the_tokens_are_estimated() -> None:
    provider = ScriptedProvider("p", [TextDelta("Hello, world"), Finish("length")])
    *_, done = await finished(start(provider))
    assert type(done) is Done
    assert done.finish_reason == "length"
    assert done.usage == ProtocolUsage(
        prompt_tokens=estimate_tokens("hi"),
        completion_tokens=estimate_tokens("Hello, world"),
        total_tokens=estimate_tokens("hi") + estimate_tokens("Hello, world"),
        estimated=True,
    )


# ---- stopped by the gateway ----------------------------------------------------------------------


async def test_cancel_closes_the_upstream_and_ends_with_done_cancelled() -> None:
    provider = ScriptedProvider("p", [TextDelta("Hel"), HANG])
    reader = start(provider)
    await reader.until(2)
    assert provider.closed == 0  # the upstream is open, waiting
    reader.stream.cancel()
    *events, done = await finished(reader)
    assert events == [ack(), chunk(1, "Hel")]
    assert type(done) is Done
    assert (done.seq, done.finish_reason, done.content) == (2, "cancelled", "Hel")
    assert provider.closed == 1
    reader.stream.cancel()  # once ended: nothing more
    await asyncio.sleep(0)
    assert len(reader.messages) == 3


async def test_shutting_down_ends_with_a_retryable_error() -> None:
    provider = ScriptedProvider("p", [HANG])
    reader = start(provider)
    await asyncio.sleep(0)  # the task runs: the upstream is asked and hangs
    assert provider.calls == 1
    reader.stream.shut_down()
    assert await finished(reader) == [ack(), SHUT_DOWN]
    assert provider.closed == 1


async def test_a_stream_stopped_before_its_task_ran_ends_and_can_be_waited_for() -> None:
    provider = ScriptedProvider("p", [HANG])
    reader = start(provider)
    reader.stream.shut_down()  # e.g. the gateway's shutdown, in the same loop turn as the start
    messages = await finished(reader)  # the stream's end, not a cancellation of the waiter
    assert messages == [ack(), SHUT_DOWN]
    assert provider.calls == 0


async def test_cancelling_a_waiter_leaves_the_stream_running() -> None:
    reader = start(ScriptedProvider("p", [TextDelta("a"), HANG]))
    waiter = asyncio.create_task(reader.stream.wait())
    await reader.until(2)
    waiter.cancel()
    await asyncio.wait([waiter])
    assert waiter.cancelled()
    assert not reader.stream.ended
    reader.stream.cancel()
    assert type((await finished(reader))[-1]) is Done


# ---- retry and failover --------------------------------------------------------------------------


async def test_a_retryable_failure_before_the_first_token_is_announced_then_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "tokenwire.stream")
    overloaded = UpstreamUnavailable("overloaded", status=503)
    provider = ScriptedProvider("p", [overloaded], [TextDelta("ok"), Finish("stop")])
    *events, done = await finished(start(provider))
    assert events == [
        ack(),
        Notice(
            id="s",
            code="retrying",
            message="p failed before the first token (upstream_unavailable); retrying in 0.001 s",
            provider="p",
            model="m",
            attempt=2,
            reason=ErrorCode.UPSTREAM_UNAVAILABLE,
            delay_s=0.001,
        ),
        chunk(1, "ok"),
    ]
    assert type(done) is Done
    assert (done.seq, done.content) == (2, "ok")
    assert (provider.calls, provider.closed) == (2, 2)
    line = '{"event":"stream_notice","stream_id":"s","code":"retrying","provider":"p","attempt":2,"reason":"upstream_unavailable"}'
    assert caplog.messages == [line]


async def test_a_failover_serves_the_stream_from_the_fallback() -> None:
    primary = ScriptedProvider("a", [UpstreamUnavailable("overloaded", status=503)])
    fallback = ScriptedProvider("b", [TextDelta("ok"), Finish("stop")])
    route = Route(fallback, GenerationRequest(model="bm", messages=REQUEST.messages))
    *events, done = await finished(start(primary, fallbacks=[route], retry_attempts=0))
    assert events == [
        ack("a"),  # the ack keeps naming the first choice
        Notice(
            id="s",
            code="failover",
            message="a failed before the first token (upstream_unavailable); trying b",
            provider="b",
            model="bm",
            attempt=2,
            reason=ErrorCode.UPSTREAM_UNAVAILABLE,
        ),
        chunk(1, "ok"),
    ]
    assert type(done) is Done
    assert (done.metrics.provider, done.metrics.model) == ("b", "bm")


async def test_when_the_retries_are_spent_the_last_failure_ends_the_stream() -> None:
    limited = UpstreamRateLimited("slow down", status=429, retry_after=0.002)
    provider = ScriptedProvider("p", [UpstreamUnavailable("overloaded", status=503)], [limited])
    *events, error = await finished(start(provider, retry_attempts=1))
    assert [type(e) for e in events] == [StartAck, Notice]
    assert error == Error(
        id="s",
        seq=1,
        code=ErrorCode.UPSTREAM_RATE_LIMITED,
        message="slow down",
        retryable=True,
        retry_after_s=0.002,
        provider="p",
        status=429,
    )
    assert provider.calls == 2


async def test_a_final_failure_is_not_retried() -> None:
    provider = ScriptedProvider("p", [UpstreamAuthError("bad key", status=401)], [TextDelta("ok")])
    assert await finished(start(provider)) == [
        ack(),
        Error(
            id="s",
            seq=1,
            code=ErrorCode.UPSTREAM_AUTH,
            message="bad key",
            retryable=False,
            provider="p",
            status=401,
        ),
    ]
    assert provider.calls == 1


async def test_a_failure_after_the_first_token_ends_the_stream_with_its_error() -> None:
    cut = Failure(UpstreamProtocolError("the upstream stream was cut"))
    provider = ScriptedProvider("p", [TextDelta("Hel"), cut], [TextDelta("Hello"), Finish("stop")])
    assert await finished(start(provider)) == [
        ack(),
        chunk(1, "Hel"),
        Error(
            id="s",
            seq=2,
            code=ErrorCode.UPSTREAM_PROTOCOL,
            message="the upstream stream was cut",
            retryable=True,
            provider="p",
        ),
    ]
    assert (provider.calls, provider.closed) == (1, 1)


# ---- timeouts ------------------------------------------------------------------------------------


def timed_out(seq: int, message: str) -> Error:
    return Error(id="s", seq=seq, code=ErrorCode.TIMEOUT, message=message, retryable=True, provider="p")


async def test_no_first_token_in_time_ends_the_stream() -> None:
    provider = ScriptedProvider("p", [HANG])
    messages = await finished(start(provider, first_token_timeout=0.05))
    assert messages == [ack(), timed_out(1, "no first token within 0.05 s")]
    assert provider.closed == 1


async def test_the_first_token_timeout_runs_on_during_a_retry_wait() -> None:
    provider = ScriptedProvider("p", [UpstreamRateLimited("slow down", status=429, retry_after=1.0)])
    *events, error = await finished(start(provider, first_token_timeout=0.05))
    assert [type(e) for e in events] == [StartAck, Notice]
    assert error == timed_out(1, "no first token within 0.05 s")
    assert provider.calls == 1


async def test_an_upstream_idle_after_the_first_token_ends_the_stream() -> None:
    provider = ScriptedProvider("p", [TextDelta("Hel"), HANG])
    messages = await finished(start(provider, idle_timeout=0.05))
    assert messages == [ack(), chunk(1, "Hel"), timed_out(2, "no data from upstream for 0.05 s")]


async def test_a_slow_reader_holds_the_upstream_back_without_an_idle_timeout() -> None:
    provider = ScriptedProvider("p", [*[TextDelta("xx")] * 10, Finish("stop")])
    reader = start(provider, buffer_size=4, idle_timeout=0.05)
    reader.eager = False  # the reader stops reading
    await asyncio.sleep(0.2)  # four idle timeouts
    assert provider.yielded == 3  # 6 characters waiting: over the buffer, so no more is read
    reader.eager = True
    reader.take()
    messages = await finished(reader)
    assert messages[:2] == [ack(), Chunk(id="s", seq=3, content="xxxxxx", from_seq=1)]
    done = messages[-1]
    assert type(done) is Done
    assert (done.finish_reason, done.content) == ("stop", "xx" * 10)
