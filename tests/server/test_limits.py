"""Bounds on what one client may do: start rate, open sockets, and a socket that stops reading."""

from __future__ import annotations

import asyncio
import itertools
import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import StartGateway
from tests.support.providers import ScriptedProvider
from tests.support.server_protocols import HTTP_PROTOCOLS, http_options
from tests.support.sseclient import events_of_response
from tests.support.wsclient import collect, recv, start


async def test_start_rate_is_bounded_per_connection(start_gateway: StartGateway) -> None:
    gw = start_gateway({"streaming": {"starts_per_second": 1, "starts_burst": 2}})
    async with connect(gw.ws) as ws:
        await recv(ws)
        for sid in ("a", "b", "c"):
            await start(ws, sid, prompt="hi")
        per_id, _ = await collect(ws, {"a", "b", "c"})
        (limited,) = per_id["c"]
        assert limited["code"] == "rate_limited"
        assert limited["retryable"] is True
        assert 0 < limited["retry_after_s"] <= 1
        assert "seq" not in limited
        assert per_id["a"][-1]["type"] == per_id["b"][-1]["type"] == "done"
        await asyncio.sleep(limited["retry_after_s"])
        await start(ws, "c", prompt="hi")
        per_id, _ = await collect(ws, {"c"})
    assert per_id["c"][-1]["type"] == "done"


async def test_other_connections_have_their_own_rate(start_gateway: StartGateway) -> None:
    gw = start_gateway({"streaming": {"starts_per_second": 0.1, "starts_burst": 1}})
    async with connect(gw.ws) as first, connect(gw.ws) as second:
        for ws in (first, second):
            await recv(ws)
            await start(ws, "a", prompt="hi")
            per_id, _ = await collect(ws, {"a"})
            assert per_id["a"][-1]["type"] == "done"


async def test_connections_beyond_the_limit_are_closed_with_1013(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"max_connections": 1}})
    async with connect(gw.ws) as first:
        assert (await recv(first))["type"] == "ready"
        async with connect(gw.ws) as second:
            with pytest.raises(ConnectionClosed) as closed:
                await recv(second)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1013
    async with connect(gw.ws) as again:  # the slot is free once the first socket went
        assert (await recv(again))["type"] == "ready"


async def test_a_client_that_stops_reading_is_dropped_and_its_streams_cancelled(
    start_gateway: StartGateway,
) -> None:
    upstream = ScriptedProvider(count=1_000_000, text="y" * 1000, incompressible=True)
    gw = start_gateway({"streaming": {"slow_client_timeout_seconds": 0.5, "buffer_size": 16384}}, [upstream])
    host, port = gw.ws.split("/")[2].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, set before connecting
    sock.connect((host, int(port)))
    async with connect(gw.ws, sock=sock, max_queue=1, max_size=None) as ws:
        await recv(ws)
        await start(ws, "a", provider="scripted", prompt="hi")
        for _ in range(200):  # not reading: the gateway's writes block, then it gives up on us
            if upstream.closed:
                break
            await asyncio.sleep(0.05)
        assert upstream.closed == 1, "the stream should be cancelled upstream"
        assert upstream.finished == 0
        for _ in range(100):
            if not gw.hub.running:
                break
            await asyncio.sleep(0.05)
        assert not gw.hub.running


async def test_a_client_that_reads_slowly_but_within_the_limit_loses_nothing(
    start_gateway: StartGateway,
) -> None:
    upstream = ScriptedProvider(count=2000, text="y" * 1000, incompressible=True)
    gw = start_gateway({"streaming": {"slow_client_timeout_seconds": 5, "buffer_size": 16384}}, [upstream])
    async with connect(gw.ws, max_queue=1, max_size=None) as ws:
        await recv(ws)
        await start(ws, "a", provider="scripted", prompt="hi")
        await asyncio.sleep(1.0)  # a pause shorter than the limit
        per_id, _ = await collect(ws, {"a"}, timeout=30)
    done = per_id["a"][-1]
    assert done["type"] == "done"
    assert done["content"] == "".join(upstream.emitted)


async def _sse_over_a_small_window(
    start_gateway: StartGateway, http_protocol: str, upstream: ScriptedProvider, slow_client_seconds: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A gateway serving ``upstream``, and a raw connection to it with a small receive buffer
    that has asked for a stream over SSE (``connection: close``: the server ends with EOF)."""
    gw = start_gateway(
        {"streaming": {"slow_client_timeout_seconds": slow_client_seconds, "buffer_size": 16384}},
        [upstream],
        uvicorn_options=http_options(http_protocol),
    )
    host, port = gw.http.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), limit=65536)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    body = b'{"provider":"scripted","prompt":"hi"}'
    writer.write(
        b"POST /v1/streams HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\n"
        + b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()
    return reader, writer


@HTTP_PROTOCOLS
async def test_an_sse_client_that_stops_reading_is_dropped_and_its_stream_cancelled(
    start_gateway: StartGateway, http_protocol: str
) -> None:
    upstream = ScriptedProvider(count=1_000_000, text="y" * 1000, incompressible=True)
    reader, writer = await _sse_over_a_small_window(start_gateway, http_protocol, upstream, 0.5)
    await reader.readline()  # the status line; then not reading at all
    for _ in range(200):
        if upstream.closed:
            break
        await asyncio.sleep(0.05)
    assert upstream.closed == 1, "the stream should be cancelled upstream"
    assert upstream.finished == 0
    writer.close()


@HTTP_PROTOCOLS
async def test_an_sse_client_that_reads_slowly_but_within_the_limit_loses_nothing(
    start_gateway: StartGateway, http_protocol: str
) -> None:
    # 16 MB, more than the socket buffers hold: the pause fills the transport, the gateway's
    # writes move to the response's task (which waits for the drain) and back to the direct
    # writes; nothing may be lost, repeated or reordered.
    upstream = ScriptedProvider(count=8000, text="y" * 1000, incompressible=True)
    reader, writer = await _sse_over_a_small_window(start_gateway, http_protocol, upstream, 5)
    await asyncio.sleep(1.0)  # not reading, for less than the limit
    async with asyncio.timeout(30):
        transcript = events_of_response(await reader.read())  # to the end: the server closes
    writer.close()
    events = transcript.events
    done = events[-1]
    assert done.event == "done"
    assert done.data["content"] == "".join(upstream.emitted)
    chunks = [e.data for e in events if e.event == "chunk"]
    assert "".join(c["content"] for c in chunks) == done.data["content"]
    covered = [(c.get("from_seq", c["seq"]), c["seq"]) for c in chunks]
    assert covered[0][0] == 1
    assert all(first == before_last + 1 for (_, before_last), (first, _) in itertools.pairwise(covered))
    assert done.data["seq"] == covered[-1][1] + 1
    assert any("from_seq" in c for c in chunks), "a slow reader should get merged chunks"
