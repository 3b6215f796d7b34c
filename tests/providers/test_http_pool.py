"""providers.http.client's pool against raw servers (tests/support/raw_http.py): the cap on open
connections with its first-come-first-served wait, and which idle connections are reused."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest

from providers.http import connection as http_connection
from providers.http.client import HttpClient, Response
from providers.http.errors import PoolTimeout
from tests.support.raw_http import Peer, Serve, answer, get, ok, read_all


@pytest.fixture
async def capped() -> AsyncIterator[HttpClient]:
    """A client allowed one connection, waiting for it at most half a second."""
    client = HttpClient(connect_timeout=2, max_connections=1, pool_timeout=0.5)
    await client.start()
    yield client
    await client.close()


def waiting(client: HttpClient) -> int:
    return len(client._queue)


async def until_waiting(client: HttpClient, count: int) -> None:
    async with asyncio.timeout(1):
        while waiting(client) != count:
            await asyncio.sleep(0.001)


# ---- the cap -----------------------------------------------------------------------------------


async def test_concurrent_requests_over_the_cap_share_the_allowed_connections(serve: Serve) -> None:
    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            await asyncio.sleep(0.01)  # each answer takes a while: the requests pile up
            await peer.send(ok(b"answer"))

    server = await serve(handler)
    client = HttpClient(connect_timeout=2, max_connections=3, pool_timeout=5)
    await client.start()
    try:

        async def one() -> list[bytes]:
            return await read_all(await get(client, server.url()))

        results = await asyncio.gather(*(one() for _ in range(20)))
    finally:
        await client.close()
    assert results == [[b"answer"]] * 20
    assert server.accepted == 3  # never more sockets than the cap, each reused


async def test_a_waiter_gets_the_connection_released_first_come_first_served(
    serve: Serve, capped: HttpClient
) -> None:
    server = await serve(answer(ok(b"one"), ok(b"two"), ok(b"three")))
    first = await get(capped, server.url("/1"))  # its body unread: the connection stays in use
    second = asyncio.create_task(get(capped, server.url("/2")))
    await until_waiting(capped, 1)
    third = asyncio.create_task(get(capped, server.url("/3")))
    await until_waiting(capped, 2)
    assert await read_all(first) == [b"one"]  # read to the end: back to the pool, to the first waiter
    assert await read_all(await second) == [b"two"]
    assert await read_all(await third) == [b"three"]
    assert server.accepted == 1
    assert [r.target for r in server.peers[0].requests] == ["/1", "/2", "/3"]


async def test_a_waiter_gets_a_new_connection_when_one_is_dropped(serve: Serve, capped: HttpClient) -> None:
    server = await serve(answer(ok(b"one")))
    first = await get(capped, server.url())
    second = asyncio.create_task(get(capped, server.url()))
    await until_waiting(capped, 1)
    first.close()  # unread: the connection is dropped, its place freed
    assert await read_all(await second) == [b"one"]
    assert server.accepted == 2
    assert await server.peers[0].saw_hang_up()


async def test_the_wait_for_a_connection_is_bounded(serve: Serve, capped: HttpClient) -> None:
    server = await serve(answer(ok()))
    first = await get(capped, server.url())
    started = time.monotonic()
    with pytest.raises(PoolTimeout, match=r"none of the 1 connections came free in 0\.5 s"):
        await get(capped, server.url())
    assert 0.45 < time.monotonic() - started < 1.5
    assert waiting(capped) == 0
    assert await read_all(first) == [b"ok"]
    assert await read_all(await get(capped, server.url())) == [b"ok"]  # the pool still works
    assert server.accepted == 1


async def test_a_cancelled_waiter_leaves_no_trace(serve: Serve, capped: HttpClient) -> None:
    server = await serve(answer(ok()))
    first = await get(capped, server.url())
    cancelled = asyncio.create_task(get(capped, server.url()))
    await until_waiting(capped, 1)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert waiting(capped) == 0
    assert await read_all(first) == [b"ok"]
    assert await read_all(await get(capped, server.url())) == [b"ok"]
    assert server.accepted == 1
    assert len(capped._open) == 1


async def test_a_waiter_cancelled_once_handed_a_connection_gives_it_back(
    serve: Serve, capped: HttpClient
) -> None:
    server = await serve(answer(ok()))
    first = await get(capped, server.url())
    cancelled = asyncio.create_task(get(capped, server.url()))
    await until_waiting(capped, 1)
    assert await first.read_some() == b"ok"
    first.close()  # hands the connection to the waiter, whose task has not run yet...
    cancelled.cancel()  # ...and is cancelled before it does
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await read_all(await get(capped, server.url())) == [b"ok"]  # the same connection
    assert server.accepted == 1
    assert [r.target for r in server.peers[0].requests] == ["/", "/"]


async def test_an_idle_connection_of_another_origin_makes_room(serve: Serve, capped: HttpClient) -> None:
    one = await serve(answer(ok(b"from one")))
    two = await serve(answer(ok(b"from two")))
    assert await read_all(await get(capped, one.url())) == [b"from one"]  # idle in the pool
    assert await read_all(await get(capped, two.url())) == [b"from two"]
    assert await one.peers[0].saw_hang_up()  # closed to stay within the cap
    assert len(capped._open) == 1


async def test_a_waiter_for_another_origin_closes_a_released_connection(
    serve: Serve, capped: HttpClient
) -> None:
    one = await serve(answer(ok(b"from one")))
    two = await serve(answer(ok(b"from two")))
    first: Response = await get(capped, one.url())
    other = asyncio.create_task(get(capped, two.url()))
    await until_waiting(capped, 1)
    assert await read_all(first) == [b"from one"]
    assert await read_all(await other) == [b"from two"]
    assert await one.peers[0].saw_hang_up()


# ---- which idle connections are reused ---------------------------------------------------------


@pytest.fixture
def look_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle sockets are looked at however briefly idle (by default only after a second)."""
    monkeypatch.setattr(http_connection, "QUIET_REUSE_SECONDS", 0.0)


async def test_a_connection_reused_at_once_costs_no_look_at_its_socket(
    serve: Serve, client: HttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    looks: list[object] = []

    def readable(transport: object) -> bool:
        looks.append(transport)
        return False

    monkeypatch.setattr(http_connection, "_readable", readable)
    server = await serve(answer(ok(b"answer")))
    for _ in range(3):
        assert await read_all(await get(client, server.url())) == [b"answer"]
    assert server.accepted == 1
    assert looks == []  # reused within QUIET_REUSE_SECONDS: the loop has watched the socket
    monkeypatch.setattr(http_connection, "QUIET_REUSE_SECONDS", 0.0)
    assert await read_all(await get(client, server.url())) == [b"answer"]
    assert len(looks) == 1


def unseen_by_the_loop(peer: Peer, act: Callable[[socket.socket], object]) -> None:
    """``act`` on the server's socket, then block the loop while what it sent reaches the client's
    socket: no callback tells the client before its next request looks at the pool."""
    with peer.writer.get_extra_info("socket").dup() as sock:
        act(sock)
    time.sleep(0.05)  # blocking the loop is the point (called from a coroutine)


async def test_an_idle_connection_closed_before_the_loop_saw_it_is_not_reused(
    serve: Serve, client: HttpClient, look_at_once: None
) -> None:
    server = await serve(answer(ok(b"answer")))
    assert await read_all(await get(client, server.url())) == [b"answer"]
    unseen_by_the_loop(server.peers[0], lambda sock: sock.shutdown(socket.SHUT_WR))  # a FIN
    assert await read_all(await get(client, server.url())) == [b"answer"]  # no error: a new connection
    assert server.accepted == 2
    assert [len(peer.requests) for peer in server.peers] == [1, 1]  # nothing sent on the closed one


async def test_bytes_waiting_on_an_idle_connection_prevent_its_reuse(
    serve: Serve, client: HttpClient, look_at_once: None
) -> None:
    server = await serve(answer(ok(b"answer")))
    assert await read_all(await get(client, server.url())) == [b"answer"]
    unseen_by_the_loop(server.peers[0], lambda sock: sock.send(b"HTTP/1.1 200 OK\r\n"))  # unasked for
    assert await read_all(await get(client, server.url())) == [b"answer"]
    assert server.accepted == 2


async def test_an_idle_connection_the_server_closes_leaves_the_pool_at_once(
    serve: Serve, capped: HttpClient
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(ok(b"once"))  # keep-alive by its headers, then closed while idle

    server = await serve(handler)
    assert await read_all(await get(capped, server.url())) == [b"once"]
    async with asyncio.timeout(1):
        while capped._open:  # its place under the cap is free without a request to find out
            await asyncio.sleep(0.005)
    assert not any(capped._idle.values())


async def test_a_shorter_keep_alive_timeout_of_the_server_is_honoured(
    serve: Serve, client: HttpClient
) -> None:
    hinted = await serve(answer(ok(b"hinted", "keep-alive: timeout=1, max=100")))
    plain = await serve(answer(ok(b"plain")))
    for _ in range(2):
        assert await read_all(await get(client, hinted.url())) == [b"hinted"]
        assert await read_all(await get(client, plain.url())) == [b"plain"]
    assert (hinted.accepted, plain.accepted) == (1, 1)  # reused at once
    await asyncio.sleep(0.7)  # past the server's 1 s less the margin, well within our 15 s
    assert await read_all(await get(client, hinted.url())) == [b"hinted"]
    assert await read_all(await get(client, plain.url())) == [b"plain"]
    assert (hinted.accepted, plain.accepted) == (2, 1)
    assert await hinted.peers[0].saw_hang_up()  # the expired one was closed, not left open


async def test_our_keepalive_bounds_reuse(serve: Serve) -> None:
    server = await serve(answer(ok(b"answer", "keep-alive: timeout=60")))
    client = HttpClient(connect_timeout=2, keepalive=0.2)
    await client.start()
    try:
        assert await read_all(await get(client, server.url())) == [b"answer"]
        await asyncio.sleep(0.3)
        assert await read_all(await get(client, server.url())) == [b"answer"]
    finally:
        await client.close()
    assert server.accepted == 2
