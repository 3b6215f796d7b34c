"""Bounds on what one client may do: start rate, open sockets, and a socket that stops reading."""

from __future__ import annotations

import asyncio
import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import StartGateway
from tests.support.providers import ScriptedProvider
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


async def test_an_sse_client_that_stops_reading_is_dropped_and_its_stream_cancelled(
    start_gateway: StartGateway,
) -> None:
    upstream = ScriptedProvider(count=1_000_000, text="y" * 1000, incompressible=True)
    gw = start_gateway({"streaming": {"slow_client_timeout_seconds": 0.5, "buffer_size": 16384}}, [upstream])
    host, port = gw.http.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), limit=4096)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    body = b'{"provider":"scripted","prompt":"hi"}'
    writer.write(
        b"POST /v1/streams HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()
    await reader.readline()  # the status line; then not reading at all
    for _ in range(200):
        if upstream.closed:
            break
        await asyncio.sleep(0.05)
    assert upstream.closed == 1, "the stream should be cancelled upstream"
    assert upstream.finished == 0
    writer.close()
