"""HttpProvider.relay, the path the runner takes: a stream's events pushed to a sink from the
connection's data callback. Against raw servers writing OpenAI's exact bytes; the events must be
those of ``stream``, the pull path of the provider contract, for any way the bytes are split.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from protocol.messages import ChatMessage
from providers.base import (
    Finish,
    GenerationRequest,
    Provider,
    StreamEvent,
    TextDelta,
    UpstreamProtocolError,
    UpstreamUnavailable,
    Usage,
)
from providers.dialect import ProviderSettings
from providers.dialects.openai import OpenAIDialect
from providers.http.client import HttpClient
from providers.http.provider import HttpProvider
from tests.support.openai_bytes import openai_chunk
from tests.support.raw_http import CHUNKED_HEAD, Handler, Peer, RawServer, Serve, answer, ok

REQUEST = GenerationRequest(model="gpt-4o-mini", messages=[ChatMessage(role="user", content="hi")])
USAGE = b'data: {"id":"chatcmpl-7Qx","object":"chat.completion.chunk","choices":[],' + (
    b'"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}\n\n'
)
BODY = b"".join(
    [
        openai_chunk("Hello"),
        openai_chunk(", w\u00f6rld \u2028 \U0001f600"),
        openai_chunk(None, finish="stop"),
        USAGE,
        b"data: [DONE]\n\n",
    ]
)
EXPECTED: list[StreamEvent] = [
    TextDelta("Hello"),
    TextDelta(", w\u00f6rld \u2028 \U0001f600"),
    Usage(9, 4),
    Finish("stop"),
]


class Sink:
    """Records what is pushed; ``behind`` makes every push ask the provider to stop reading."""

    def __init__(self, behind: bool = False, fail_at: int | None = None) -> None:
        self.events: list[StreamEvent] = []
        self.behind = behind
        self.fail_at = fail_at
        self.waits = 0

    def push(self, event: StreamEvent) -> bool:
        if len(self.events) == self.fail_at:
            raise RuntimeError("a bug in the sink")
        self.events.append(event)
        return self.behind

    async def caught_up(self) -> None:
        self.waits += 1
        await asyncio.sleep(0.005)


def chunked(body: bytes, sizes: list[int]) -> list[bytes]:
    """``body`` as chunked-encoding writes: one chunk per size, the last write ending the body."""
    writes, start = [], 0
    for size in sizes:
        piece = body[start : start + size]
        start += size
        if piece:
            writes.append(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    writes.append(b"0\r\n\r\n")
    return writes


def streaming(writes: list[bytes], *, then_hold: bool = False) -> Handler:
    """Answer every request on the connection with ``writes``, each a TCP write of its own."""

    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(CHUNKED_HEAD, *writes, pause=0.002)
            if then_hold:
                await peer.until_gone()
                return

    return handler


@pytest.fixture
async def provider(client: HttpClient) -> HttpProvider:
    return HttpProvider(OpenAIDialect(SETTINGS), client)


SETTINGS = ProviderSettings(api_key="sk-test", base_url="http://unused", default_model="gpt-4o-mini")


def pointed_at(provider: HttpProvider, server: RawServer) -> HttpProvider:
    settings = ProviderSettings(api_key="sk-test", base_url=server.url("/v1"), default_model="gpt-4o-mini")
    return HttpProvider(OpenAIDialect(settings), provider.client)


async def pulled(provider: HttpProvider) -> list[StreamEvent]:
    return [event async for event in provider.stream(REQUEST)]


def random_sizes(seed: int) -> list[int]:
    rng = random.Random(seed)
    sizes, total = [], 0
    while total < len(BODY):
        size = rng.choice([1, 2, 3, 7, 20, 64, 500])
        sizes.append(size)
        total += size
    return sizes


@pytest.mark.parametrize("seed", range(6))
async def test_relay_pushes_what_stream_yields_however_the_bytes_are_split(
    serve: Serve, provider: HttpProvider, seed: int
) -> None:
    server = await serve(streaming(chunked(BODY, random_sizes(seed))))
    upstream = pointed_at(provider, server)
    contract: Provider = upstream  # relay, as the runner calls it, type-checked against the contract
    sink = Sink()
    await contract.relay(REQUEST, sink)
    assert sink.events == EXPECTED
    assert await pulled(upstream) == EXPECTED
    assert server.accepted == 1  # both read to the end: the connection went back to the pool


async def test_a_sink_that_is_behind_holds_reading_and_loses_nothing(
    serve: Serve, provider: HttpProvider
) -> None:
    server = await serve(streaming(chunked(BODY, [len(BODY) // 5] * 6)))
    upstream = pointed_at(provider, server)
    sink = Sink(behind=True)
    await upstream.relay(REQUEST, sink)
    assert sink.events == EXPECTED
    assert sink.waits >= 3  # once per read that pushed something, at least
    again = Sink()
    async with asyncio.timeout(2):  # the pooled connection was resumed before it was handed back
        await upstream.relay(REQUEST, again)
    assert again.events == EXPECTED
    assert server.accepted == 1


async def test_a_malformed_chunk_fails_the_stream_and_hangs_up(serve: Serve, provider: HttpProvider) -> None:
    body = openai_chunk("kept") + b"data: {not json\n\n" + openai_chunk("never")
    server = await serve(streaming(chunked(body, [len(body)]), then_hold=True))
    sink = Sink()
    with pytest.raises(UpstreamProtocolError, match="malformed JSON"):
        await pointed_at(provider, server).relay(REQUEST, sink)
    assert sink.events == [TextDelta("kept")]
    assert await server.peers[0].saw_hang_up()


async def test_a_stream_cut_before_its_end_signal_is_a_protocol_failure(
    serve: Serve, provider: HttpProvider
) -> None:
    body = openai_chunk("half")
    server = await serve(streaming(chunked(body, [len(body)])))
    sink = Sink()
    with pytest.raises(UpstreamProtocolError, match=r"ended before \[DONE\]"):
        await pointed_at(provider, server).relay(REQUEST, sink)
    assert sink.events == [TextDelta("half")]


async def test_an_error_in_the_sink_is_raised_as_it_is_not_as_an_upstream_fault(
    serve: Serve, provider: HttpProvider
) -> None:
    server = await serve(streaming(chunked(BODY, [len(BODY)]), then_hold=True))
    with pytest.raises(RuntimeError, match="a bug in the sink"):
        await pointed_at(provider, server).relay(REQUEST, Sink(fail_at=1))
    assert await server.peers[0].saw_hang_up()


async def test_cancelling_relay_hangs_up_on_the_upstream(serve: Serve, provider: HttpProvider) -> None:
    first = openai_chunk("one")

    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(CHUNKED_HEAD, chunked(first, [len(first)])[0])
        await peer.until_gone()  # the rest never comes

    server = await serve(handler)
    sink = Sink()
    task = asyncio.create_task(pointed_at(provider, server).relay(REQUEST, sink))
    async with asyncio.timeout(2):
        while not sink.events:
            await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sink.events == [TextDelta("one")]
    assert await server.peers[0].saw_hang_up()


# ---- the client's failures as provider errors ----------------------------------------------------


async def test_a_compressed_stream_is_a_protocol_error_not_retried(
    serve: Serve, provider: HttpProvider
) -> None:
    server = await serve(answer(ok(b"\x1f\x8b\x08\x00", "content-encoding: gzip")))
    sink = Sink()
    with pytest.raises(UpstreamProtocolError, match="compressed response") as raised:
        await pointed_at(provider, server).relay(REQUEST, sink)
    assert raised.value.code == "upstream_protocol"
    assert raised.value.retryable is False  # the same answer would come again
    assert sink.events == []


async def test_no_connection_free_in_time_is_unavailable_and_retryable(serve: Serve) -> None:
    server = await serve(streaming(chunked(BODY, [len(BODY)]), then_hold=True))
    client = HttpClient(connect_timeout=2, max_connections=1, pool_timeout=0.1)
    await client.start()
    upstream = pointed_at(HttpProvider(OpenAIDialect(SETTINGS), client), server)
    try:
        held = await client.request("GET", server.url(), {}, b"")  # the one connection allowed
        with pytest.raises(UpstreamUnavailable, match="no connection to openai came free") as raised:
            await upstream.relay(REQUEST, Sink())
        assert raised.value.retryable is True
        held.close()
    finally:
        await client.close()
