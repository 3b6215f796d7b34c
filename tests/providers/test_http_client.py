"""providers.http.client (the HTTP client) against real sockets: raw servers (tests/support/raw_http.py)
that write the exact bytes of each case, and record what the client sent and whether it hung up.
Nothing of the client is mocked. TLS and proxies: test_http_client_tls_proxy.py.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Iterator

import pytest

from providers.http import client as client_module
from providers.http.client import HttpClient
from providers.http.connection import MAX_BUFFERED, Connection, State
from providers.http.errors import BadRequest, BodyCut, ConnectFailed, NoResponse, UnsupportedEncoding
from tests.support.raw_http import (
    CHUNKED_HEAD,
    Handler,
    Peer,
    Serve,
    answer,
    get,
    ok,
    read_all,
)

# ---- bodies ------------------------------------------------------------------------------------


async def test_content_length_body_is_read_whole(serve: Serve, client: HttpClient) -> None:
    server = await serve(answer(ok(b"hello, world")))
    response = await get(client, server.url("/a"))
    assert response.status == 200
    assert b"".join(await read_all(response)) == b"hello, world"
    assert await response.read_some() == b""  # the end stays the end


async def test_chunked_body_split_inside_size_lines_and_data(serve: Serve, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        writes = [b"1", b"0\r\n0123", b"456789abcdef", b"\r\n3\r", b"\nxyz\r", b"\n0\r\n", b"\r\n"]
        await peer.send(CHUNKED_HEAD, *writes, pause=0.02)
        await peer.until_gone()

    server = await serve(handler)
    response = await get(client, server.url())
    pieces = await read_all(response)
    assert b"".join(pieces) == b"0123456789abcdefxyz"
    assert len(pieces) > 1  # handed over as it arrived, not at the end
    assert await response.read_some() == b""  # the end stays the end


async def test_close_delimited_body_ends_with_the_connection(serve: Serve, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nhello ", b"world", pause=0.02)
        # returning closes the connection: the end of the body

    server = await serve(handler)
    response = await get(client, server.url())
    assert b"".join(await read_all(response)) == b"hello world"
    assert await response.read_some() == b""  # the end stays the end


async def test_read_stops_at_the_limit(serve: Serve, client: HttpClient) -> None:
    server = await serve(answer(ok(b"0123456789")))
    response = await get(client, server.url())
    assert await response.read(4) == b"0123"
    response.close()


# ---- heads -------------------------------------------------------------------------------------


async def test_response_header_names_lower_case_and_repeats_joined(serve: Serve, client: HttpClient) -> None:
    head = (
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Request-ID: req-1\r\n"
        b"Set-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 2\r\n\r\n{}"
    )
    server = await serve(answer(head))
    response = await get(client, server.url())
    assert response.status == 201
    assert dict(response.headers) == {
        "content-type": "application/json",
        "x-request-id": "req-1",
        "set-cookie": "a=1, b=2",
        "content-length": "2",
    }
    assert await response.read(100) == b"{}"


async def test_request_carries_host_length_headers_body_and_query(serve: Serve, client: HttpClient) -> None:
    server = await serve(answer(ok()))
    body = b'{"model":"m","stream":true}'
    headers = {"authorization": "Bearer sk-test", "content-type": "application/json"}
    response = await client.request("POST", server.url("/v1/chat?alt=sse&x=1"), headers, body)
    assert await response.read(10) == b"ok"
    [received] = server.peers[0].requests
    assert received.line == "POST /v1/chat?alt=sse&x=1 HTTP/1.1"
    assert received.headers["host"] == f"127.0.0.1:{server.port}"
    assert received.headers["content-length"] == str(len(body))
    assert received.headers["authorization"] == "Bearer sk-test"
    assert received.headers["content-type"] == "application/json"
    assert received.body == body
    assert received.head.lower().count(b"\r\nhost:") == 1


async def test_a_request_shape_sent_again_is_written_alike_and_never_stale(
    serve: Serve, client: HttpClient
) -> None:
    """The route and head of a (method, URL, proxy, headers) shape are worked out once: the same
    shape writes the same head, with this body's length; any other header value is its own shape."""
    server = await serve(answer(ok(), ok(), ok(), ok()))
    sends = [
        ({"authorization": "Bearer sk-one"}, b'{"n":1}'),
        ({"authorization": "Bearer sk-one"}, b'{"n":22}'),
        ({"authorization": "Bearer sk-two"}, b'{"n":333}'),
        ({"authorization": "Bearer sk-one", "x-extra": "1"}, b""),
    ]
    for headers, body in sends:
        response = await client.request("POST", server.url("/v1/chat?alt=sse"), headers, body)
        assert await response.read(10) == b"ok"
    received = server.peers[0].requests
    assert [r.headers["authorization"] for r in received] == [h["authorization"] for h, _ in sends]
    assert [r.headers.get("x-extra") for r in received] == [None, None, None, "1"]
    assert [r.body for r in received] == [body for _, body in sends]
    assert [r.headers["content-length"] for r in received] == ["7", "8", "9", "0"]
    assert received[0].head.replace(b"content-length: 7", b"content-length: 8") == received[1].head
    assert len(client._shapes) == 3


async def test_request_shapes_kept_are_bounded(
    serve: Serve, client: HttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "MAX_SHAPES", 4)
    server = await serve(answer(*(ok() for _ in range(10))))
    for n in range(10):
        response = await client.request("GET", server.url(f"/{n}"), {}, b"")
        assert await response.read(10) == b"ok"
        assert 1 <= len(client._shapes) <= 4
    assert [r.target for r in server.peers[0].requests] == [f"/{n}" for n in range(10)]


async def test_every_request_asks_for_an_unencoded_body(serve: Serve, client: HttpClient) -> None:
    server = await serve(answer(ok()))
    response = await client.request("GET", server.url(), {"Accept-Encoding": "gzip, br"}, b"")
    assert await response.read(10) == b"ok"
    [received] = server.peers[0].requests
    assert received.headers["accept-encoding"] == "identity"  # the caller's own is not sent
    assert received.head.lower().count(b"accept-encoding") == 1


@pytest.mark.parametrize("encoding", ["gzip", "br", "GZIP ", "identity, gzip"])
async def test_a_compressed_response_is_refused_not_parsed(
    serve: Serve, client: HttpClient, encoding: str
) -> None:
    gzipped = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
    server = await serve(answer(ok(gzipped, f"content-encoding: {encoding}")))
    with pytest.raises(UnsupportedEncoding, match="-encoded, not identity"):
        await get(client, server.url())
    assert await server.peers[0].saw_hang_up()  # its body unread: the connection is dropped


async def test_an_identity_encoded_response_is_read(serve: Serve, client: HttpClient) -> None:
    server = await serve(answer(ok(b"plain", "content-encoding: identity")))
    assert await read_all(await get(client, server.url())) == [b"plain"]


async def test_interim_100_continue_is_skipped(serve: Serve, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 100 Continue\r\n\r\n", ok(b"final", "x-final: yes"), pause=0.02)
        await peer.until_gone()

    server = await serve(handler)
    response = await get(client, server.url())
    assert response.status == 200
    assert response.headers["x-final"] == "yes"
    assert await response.read(100) == b"final"


# ---- keep-alive --------------------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection(serve: Serve, client: HttpClient) -> None:
    server = await serve(answer(ok(b"one"), ok(b"two")))
    first = await get(client, server.url("/1"))
    assert await read_all(first) == [b"one"]
    second = await get(client, server.url("/2"))
    assert await read_all(second) == [b"two"]
    assert server.accepted == 1
    assert [r.target for r in server.peers[0].requests] == ["/1", "/2"]


async def test_connection_close_response_is_not_reused(serve: Serve, client: HttpClient) -> None:
    server = await serve(answer(ok(b"one", "connection: close"), ok(b"two")))  # the server stays open
    first = await get(client, server.url())
    assert await read_all(first) == [b"one"]
    second = await get(client, server.url())
    assert await read_all(second) == [b"one"]  # the new connection's first answer
    assert server.accepted == 2
    assert await server.peers[0].saw_hang_up()  # the client dropped the first one


async def test_pooled_connection_closed_by_server_is_not_reused(serve: Serve, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(ok(b"once"))  # keep-alive by the headers, then closed while idle

    server = await serve(handler)
    assert await read_all(await get(client, server.url())) == [b"once"]
    await asyncio.sleep(0.1)
    assert await read_all(await get(client, server.url())) == [b"once"]
    assert server.accepted == 2


async def test_bytes_arriving_on_an_idle_connection_prevent_reuse(serve: Serve, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(ok(b"answer"))
            await asyncio.sleep(0.02)
            await peer.send(ok(b"stray"))  # unasked for: whatever it is, the connection is spoiled

    server = await serve(handler)
    assert await read_all(await get(client, server.url())) == [b"answer"]
    await asyncio.sleep(0.1)
    assert await read_all(await get(client, server.url())) == [b"answer"]
    assert server.accepted == 2


async def test_a_second_response_in_the_same_read_is_not_taken_as_body(
    serve: Serve, client: HttpClient
) -> None:
    server = await serve(answer(ok(b"one") + ok(b"two")))  # one write: nobody asked for the second
    assert await read_all(await get(client, server.url())) == [b"one"]
    assert await read_all(await get(client, server.url())) == [b"one"]  # on a new connection
    assert server.accepted == 2


# ---- connection states -------------------------------------------------------------------------


def state(conn: Connection) -> State:
    return conn.state  # read afresh: an await may have moved it (mypy narrows attributes)


async def test_a_connection_moves_through_its_states(serve: Serve, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab", b"cd", pause=0.05)

    server = await serve(handler)
    response = await get(client, server.url())
    conn = response._conn
    assert conn is not None
    assert state(conn) is State.BODY  # the head is read, the body is arriving
    assert await response.read_some() == b"ab"
    assert await response.read_some() == b"cd"
    assert state(conn) is State.DONE  # the body ended, not yet handed back
    assert await response.read_some() == b""
    assert state(conn) is State.IDLE  # back in the pool
    again = await get(client, server.url())
    assert again._conn is conn  # reused: HEAD, then BODY again
    assert state(conn) is State.BODY
    again.close()  # before the end: dropped
    assert state(conn) is State.CLOSED
    assert await server.peers[0].saw_hang_up()


def test_moves_outside_the_table_are_refused() -> None:
    conn = Connection(asyncio.new_event_loop(), lambda _: None)
    assert state(conn) is State.CONNECTING
    with pytest.raises(AssertionError, match=r"CONNECTING -> State\.IDLE"):
        conn.enter_idle(0.0, 0.0)  # a connection never carried a request: not for the pool
    conn.abort()
    assert state(conn) is State.CLOSED
    assert isinstance(conn.error, NoResponse)  # closed before a response: a failure to raise
    with pytest.raises(AssertionError):
        conn.tunnelled()  # CLOSED is the end
    conn.loop.close()


def test_a_request_is_written_before_its_response_is_set_up_for() -> None:
    """The request goes out first: a new parser for its response is built after, off the way to
    the upstream (nothing of the response can be handed over before ``send`` returns)."""

    class Transport:
        def __init__(self, conn: Connection) -> None:
            self.conn, self.seen = conn, (state(conn), conn.parser)

        def write(self, data: bytes) -> None:
            self.seen = (state(self.conn), self.conn.parser)

    loop = asyncio.new_event_loop()
    conn = Connection(loop, lambda _: None)
    transport = Transport(conn)
    conn.transport = transport  # type: ignore[assignment]  # what send uses of one
    old_parser = conn.parser
    conn.send(b"GET / HTTP/1.1\r\n\r\n")
    assert transport.seen == (State.CONNECTING, old_parser)
    assert state(conn) is State.HEAD
    assert conn.parser is not None
    assert conn.parser is not old_parser  # fresh for this response
    loop.close()


# ---- truncation and breakage -------------------------------------------------------------------


async def test_content_length_body_cut_by_close_raises_body_cut(serve: Serve, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b")

    server = await serve(handler)
    response = await get(client, server.url())
    assert await response.read_some() == b"only ten b"
    with pytest.raises(BodyCut, match="closed"):
        await response.read_some()
    with pytest.raises(BodyCut):  # and stays cut
        await response.read_some()


async def test_chunked_body_cut_mid_chunk_raises_body_cut(serve: Serve, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(CHUNKED_HEAD + b"5\r\nhello\r\n10\r\nhalf a ch")

    server = await serve(handler)
    response = await get(client, server.url())
    with pytest.raises(BodyCut):
        await read_all(response)


async def test_reset_mid_body_raises_body_cut(serve: Serve, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst")
        await asyncio.sleep(0.05)
        peer.reset()

    server = await serve(handler)
    response = await get(client, server.url())
    assert await response.read_some() == b"first"
    with pytest.raises(BodyCut, match="broke"):
        await response.read_some()


async def test_close_before_any_response_byte_raises_no_response(serve: Serve, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()  # then closed, unanswered

    server = await serve(handler)
    with pytest.raises(NoResponse):
        await get(client, server.url())
    assert server.accepted == 1  # a new connection's request is not sent again


def _second_request_closed(partial: bytes = b"") -> Handler:
    """Answers every request, except the first connection's second: it is closed as it arrives,
    after ``partial`` of a response."""
    accepted = 0

    async def handler(peer: Peer) -> None:
        nonlocal accepted
        accepted += 1
        first = accepted == 1
        while await peer.request() is not None:
            if first and len(peer.requests) == 2:
                await peer.send(partial)
                return
            await peer.send(ok(b"answer"))

    return handler


async def test_a_reused_connection_closed_unanswered_is_retried_once_on_a_new_one(
    serve: Serve, client: HttpClient
) -> None:
    server = await serve(_second_request_closed())
    assert await read_all(await get(client, server.url("/1"))) == [b"answer"]
    assert await read_all(await get(client, server.url("/2"))) == [b"answer"]  # no error
    assert server.accepted == 2
    assert [r.target for r in server.peers[0].requests] == ["/1", "/2"]
    assert [r.target for r in server.peers[1].requests] == ["/2"]


async def test_a_retry_closed_unanswered_too_raises_no_response(serve: Serve, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        if len(server.peers) == 1:
            await peer.request()
            await peer.send(ok(b"answer"))
        await peer.request()  # then closed, unanswered

    server = await serve(handler)
    assert await read_all(await get(client, server.url())) == [b"answer"]
    with pytest.raises(NoResponse):
        await get(client, server.url())
    assert server.accepted == 2  # retried only once


async def test_a_response_begun_on_a_reused_connection_is_not_retried(
    serve: Serve, client: HttpClient
) -> None:
    server = await serve(_second_request_closed(b"HTTP/1.1 200 OK\r\n"))
    assert await read_all(await get(client, server.url())) == [b"answer"]
    with pytest.raises(NoResponse):
        await get(client, server.url())
    assert server.accepted == 1


async def test_garbage_status_line_raises_no_response(serve: Serve, client: HttpClient) -> None:
    server = await serve(answer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"))
    with pytest.raises(NoResponse, match="malformed"):
        await get(client, server.url())
    assert await server.peers[0].saw_hang_up()


async def test_garbage_chunk_size_delivers_the_body_then_body_cut(serve: Serve, client: HttpClient) -> None:
    server = await serve(answer(CHUNKED_HEAD + b"5\r\nhello\r\nzz\r\nmore\r\n"))  # all in one write
    response = await get(client, server.url())
    assert await response.read_some() == b"hello"
    with pytest.raises(BodyCut, match="malformed"):
        await response.read_some()
    assert await server.peers[0].saw_hang_up()


async def test_response_headers_over_64_kib_raise_no_response(serve: Serve, client: HttpClient) -> None:
    padding = "".join(f"x-pad-{n}: {'a' * 1000}\r\n" for n in range(70)).encode()
    server = await serve(answer(b"HTTP/1.1 200 OK\r\n" + padding + b"content-length: 0\r\n\r\n"))
    with pytest.raises(NoResponse):
        await get(client, server.url())


async def test_a_status_line_that_never_ends_is_bounded(serve: Serve, client: HttpClient) -> None:
    server = await serve(answer(b"HTTP/1.1 200 " + b"x" * 100_000))  # no line end, ever
    with pytest.raises(NoResponse, match="too large"):
        await get(client, server.url())
    assert await server.peers[0].saw_hang_up()


async def test_a_large_body_in_the_same_read_as_the_head_is_no_oversized_head(
    serve: Serve, client: HttpClient
) -> None:
    body = b"y" * 200_000
    server = await serve(answer(ok(body)))  # one write: head and body arrive together
    response = await get(client, server.url())
    assert await response.read(len(body) + 1) == body


async def test_a_header_with_a_line_break_is_refused_before_sending(serve: Serve, client: HttpClient) -> None:
    server = await serve(answer(ok()))
    for _ in range(2):  # a refused shape is not kept: refused again
        with pytest.raises(BadRequest, match="authorization"):
            await client.request("POST", server.url(), {"authorization": "Bearer sk-x\r\nx-evil: 1"}, b"")
    assert server.peers == [] or server.peers[0].requests == []
    assert server.accepted == 0  # refused before a connection was taken: none is left open


@pytest.mark.parametrize(
    ("path", "headers", "problem"),
    [
        (
            "/v1",
            {"authorization": "Bearer sk-\u2019x"},
            "the request header 'authorization' contains a character",
        ),
        ("/v1/modèles", {}, "the request URL contains a character"),
    ],
    ids=["header", "url"],
)
async def test_what_is_not_ascii_is_refused_before_connecting(
    serve: Serve, client: HttpClient, path: str, headers: dict[str, str], problem: str
) -> None:
    server = await serve(answer(ok()))
    with pytest.raises(BadRequest, match=problem) as refused:
        await client.request("POST", server.url(path), headers, b"")
    assert "sk-" not in str(refused.value)  # the value itself is never shown
    assert server.accepted == 0


async def test_credentials_in_the_url_never_reach_the_host_header(serve: Serve, client: HttpClient) -> None:
    server = await serve(answer(ok()))
    response = await get(client, f"http://user:secret@127.0.0.1:{server.port}/v1")
    assert await response.read(10) == b"ok"
    [received] = server.peers[0].requests
    assert received.headers["host"] == f"127.0.0.1:{server.port}"
    assert b"secret" not in received.head


# ---- connecting --------------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound on 127.0.0.1 with nothing listening (held so nobody else takes it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def test_refused_connection_raises_connect_failed(client: HttpClient, closed_port: int) -> None:
    with pytest.raises(ConnectFailed):
        await get(client, f"http://127.0.0.1:{closed_port}/")


async def test_unsupported_scheme_raises_connect_failed(client: HttpClient) -> None:
    with pytest.raises(ConnectFailed, match="ftp"):
        await get(client, "ftp://127.0.0.1/file")


# ---- flow control and hanging up ---------------------------------------------------------------


async def test_slow_reader_backpressures_the_server_then_gets_every_byte(
    serve: Serve, client: HttpClient
) -> None:
    body = random.Random(7).randbytes(12 * 1024 * 1024)  # more than loopback socket buffers hold

    async def handler(peer: Peer) -> None:
        while await peer.request() is not None:
            peer.writer.write(ok(body))  # at once: what the socket will not take waits in the transport
            await peer.writer.drain()

    server = await serve(handler)
    response = await get(client, server.url())
    await asyncio.sleep(0.5)  # reading nothing
    conn = response._conn
    assert conn is not None
    assert conn.paused
    assert conn.buffered < 1024 * 1024
    assert server.peers[0].writer.transport.get_write_buffer_size() > 0  # the server's writes stalled
    received = bytearray()
    while data := await response.read_some():
        assert len(data) <= 2 * MAX_BUFFERED
        received += data
    assert received == body


async def test_closing_a_response_before_the_end_aborts_the_connection(
    serve: Serve, client: HttpClient
) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nsome")
        await peer.until_gone()

    server = await serve(handler)
    response = await get(client, server.url())
    assert await response.read_some() == b"some"
    response.close()
    assert await server.peers[0].saw_hang_up()


async def test_closing_a_response_read_to_the_end_keeps_the_connection(
    serve: Serve, client: HttpClient
) -> None:
    server = await serve(answer(ok(b"one"), ok(b"two")))
    first = await get(client, server.url())
    assert await first.read_some() == b"one"
    first.close()  # read_some did not see the end yet: close() hands the connection back
    second = await get(client, server.url())
    assert await read_all(second) == [b"two"]
    assert server.accepted == 1
    assert not server.peers[0].gone.is_set()


async def test_client_close_aborts_idle_and_in_use_connections(serve: Serve, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            if request.target == "/busy":
                await peer.send(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npart")
                await peer.until_gone()
            else:
                await peer.send(ok(b"done"))

    server = await serve(handler)
    busy = await get(client, server.url("/busy"))
    assert await busy.read_some() == b"part"
    assert await read_all(await get(client, server.url("/idle"))) == [b"done"]  # now idle in the pool
    assert server.accepted == 2
    await client.close()
    assert await server.peers[0].saw_hang_up()
    assert await server.peers[1].saw_hang_up()
    with pytest.raises(BodyCut):
        await busy.read_some()


async def test_cancelled_request_closes_the_connection(serve: Serve, client: HttpClient) -> None:
    arrived = asyncio.Event()

    async def handler(peer: Peer) -> None:
        await peer.request()
        arrived.set()
        await peer.until_gone()  # never answers

    server = await serve(handler)
    task = asyncio.create_task(get(client, server.url()))
    async with asyncio.timeout(1):
        await arrived.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await server.peers[0].saw_hang_up()
