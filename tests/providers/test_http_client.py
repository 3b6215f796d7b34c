"""providers.http (the HTTP client) against real sockets: raw asyncio servers on 127.0.0.1 that write the
exact bytes of each case (framing split across writes, truncations, resets, garbage, a TLS origin
with a throwaway CA, a tiny forward proxy), and record what the client sent and whether it hung
up. Nothing of the client is mocked.

A server runs one *handler* per accepted connection, ``async def handler(peer: Peer) -> None``;
the connection is closed when the handler returns. ``Peer.request()`` reads one request (None
when the client closed), ``Peer.until_gone()`` waits for the client to close, and
``Peer.saw_hang_up()`` tells a test whether the client closed within a second.
"""

from __future__ import annotations

import asyncio
import base64
import random
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import pytest
import trustme

from providers.http import (
    MAX_BUFFERED,
    BadRequest,
    BodyCut,
    ConnectFailed,
    HttpClient,
    NoResponse,
    Response,
)

# ---- tiny servers ------------------------------------------------------------------------------


@dataclass
class Received:
    """One request as the server read it."""

    line: str  # the request line
    method: str
    target: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    head: bytes  # the raw head, through the blank line


@dataclass
class Peer:
    """The server's side of one accepted connection."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    requests: list[Received] = field(default_factory=list)
    gone: asyncio.Event = field(default_factory=asyncio.Event)  # the client closed (FIN or RST)

    async def request(self) -> Received | None:
        """The next request, or None when the client closed the connection."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.gone.set()
            return None
        line, *fields = head.decode("latin-1").split("\r\n")[:-2]
        method, target, _ = line.split(" ")
        headers: dict[str, str] = {}
        for text in fields:
            name, _, value = text.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        received = Received(line, method, target, headers, body, head)
        self.requests.append(received)
        return received

    async def send(self, *parts: bytes, pause: float = 0.0) -> None:
        """Write each part as a TCP write of its own, ``pause`` seconds apart."""
        for index, part in enumerate(parts):
            if index and pause:
                await asyncio.sleep(pause)
            self.writer.write(part)
            await self.writer.drain()

    async def until_gone(self) -> None:
        """Discard what the client sends until it closes the connection."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass
        self.gone.set()

    async def saw_hang_up(self, within: float = 1.0) -> bool:
        """Whether the client closes the connection within ``within`` seconds (the handler must
        be reading: ``request()`` or ``until_gone()``)."""
        try:
            async with asyncio.timeout(within):
                await self.gone.wait()
        except TimeoutError:
            return False
        return True

    def reset(self) -> None:
        """Abort with a TCP RST (SO_LINGER 0)."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


Handler = Callable[[Peer], Awaitable[None]]


class RawServer:
    """A TCP (or TLS) server on 127.0.0.1 running ``handler`` for each accepted connection."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.peers: list[Peer] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def accepted(self) -> int:
        return len(self.peers)

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every connection; re-raise what a handler raised."""
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        for result in results:
            if isinstance(result, Exception):
                raise result

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.append(task)
        peer = Peer(reader, writer)
        self.peers.append(peer)
        try:
            await self.handler(peer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away or the test ended
        finally:
            writer.close()


class Serve(Protocol):
    async def __call__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> RawServer: ...


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start servers: ``await serve(handler, tls=None)``; stopped after the test."""
    started: list[RawServer] = []

    async def start(handler: Handler, tls: ssl.SSLContext | None = None) -> RawServer:
        server = RawServer(handler, tls)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    client = HttpClient(connect_timeout=2)
    await client.start()
    yield client
    await client.close()


def ok(body: bytes = b"ok", *headers: str, status: str = "200 OK") -> bytes:
    """A whole response with a content-length."""
    lines = [f"HTTP/1.1 {status}", *headers, f"content-length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"


def answer(*responses: bytes) -> Handler:
    """Answer the requests on each connection with ``responses`` in turn (the last one repeats),
    keeping the connection open until the client closes it."""

    async def handler(peer: Peer) -> None:
        count = 0
        while await peer.request() is not None:
            await peer.send(responses[min(count, len(responses) - 1)])
            count += 1

    return handler


async def read_all(response: Response) -> list[bytes]:
    """Every non-empty piece ``read_some`` returns, until b"" (the end)."""
    pieces = []
    while data := await response.read_some():
        pieces.append(data)
    return pieces


async def get(client: HttpClient, url: str, **kwargs: str) -> Response:
    return await client.request("GET", url, {}, b"", **kwargs)


# ---- bodies ------------------------------------------------------------------------------------


async def test_content_length_body_is_read_whole(serve: Serve, client: HttpClient) -> None:
    server = await serve(answer(ok(b"hello, world")))
    response = await get(client, server.url("/a"))
    assert response.status == 200
    assert b"".join(await read_all(response)) == b"hello, world"
    assert response.at_eof


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
    assert response.at_eof


async def test_close_delimited_body_ends_with_the_connection(serve: Serve, client: HttpClient) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nhello ", b"world", pause=0.02)
        # returning closes the connection: the end of the body

    server = await serve(handler)
    response = await get(client, server.url())
    assert b"".join(await read_all(response)) == b"hello world"
    assert response.at_eof


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
    assert not response.at_eof


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
    with pytest.raises(BadRequest, match="authorization"):
        await client.request("POST", server.url(), {"authorization": "Bearer sk-x\r\nx-evil: 1"}, b"")
    assert server.peers == [] or server.peers[0].requests == []


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
    assert first.at_eof
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


# ---- TLS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext  # trusts the CA that signed the server's certificate


@pytest.fixture(scope="module")
def tls() -> Tls:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Tls(server, client)


@pytest.fixture
async def tls_client(tls: Tls) -> AsyncIterator[HttpClient]:
    client = HttpClient(connect_timeout=2, ssl_context=tls.client)
    await client.start()
    yield client
    await client.close()


async def test_https_with_a_trusted_certificate(serve: Serve, tls: Tls, tls_client: HttpClient) -> None:
    server = await serve(answer(ok(b"secure one"), ok(b"secure two")), tls=tls.server)
    for host in ("localhost", "127.0.0.1"):
        response = await get(tls_client, server.url("/v1/models", host=host))
        assert await read_all(response) == [b"secure one"]
        assert server.peers[-1].requests[-1].headers["host"] == f"{host}:{server.port}"
    assert await read_all(await get(tls_client, server.url("/again", host="localhost"))) == [b"secure two"]
    assert server.accepted == 2  # one per origin, reused


async def test_https_with_an_untrusted_certificate_raises_connect_failed(
    serve: Serve, tls: Tls, client: HttpClient
) -> None:
    server = await serve(answer(ok()), tls=tls.server)
    with pytest.raises(ConnectFailed) as caught:
        await get(client, server.url(host="localhost"))  # the default context: the system's CAs
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)


# ---- proxies -----------------------------------------------------------------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()  # either side ending ends the tunnel


async def forward_proxy(peer: Peer) -> None:
    """A forward proxy: tunnels ``CONNECT host:port`` to 127.0.0.1:port; answers absolute-form
    requests itself."""
    while (request := await peer.request()) is not None:
        if request.method != "CONNECT":
            await peer.send(ok(b"from the proxy"))
            continue
        reader, writer = await asyncio.open_connection("127.0.0.1", int(request.target.rpartition(":")[2]))
        await peer.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
        async with asyncio.TaskGroup() as tunnel:
            tunnel.create_task(_pipe(peer.reader, writer))
            tunnel.create_task(_pipe(reader, peer.writer))
        return


async def test_https_through_a_proxy_tunnels_with_connect_and_basic_auth(
    serve: Serve, tls: Tls, tls_client: HttpClient
) -> None:
    origin = await serve(answer(ok(b"tunnelled")), tls=tls.server)
    proxy = await serve(forward_proxy)
    proxy_url = f"http://user:p%40ss@127.0.0.1:{proxy.port}"
    response = await tls_client.request(
        "POST", origin.url("/v1/chat", host="localhost"), {"x-key": "k"}, b"{}", proxy=proxy_url
    )
    assert await read_all(response) == [b"tunnelled"]
    [connect] = proxy.peers[0].requests
    assert connect.line == f"CONNECT localhost:{origin.port} HTTP/1.1"
    assert connect.headers["proxy-authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()
    [request] = origin.peers[0].requests  # the origin saw the request itself, in origin-form
    assert request.line == "POST /v1/chat HTTP/1.1"
    assert request.headers["x-key"] == "k"
    assert "proxy-authorization" not in request.headers


async def test_http_through_a_proxy_uses_the_absolute_form(serve: Serve, client: HttpClient) -> None:
    proxy = await serve(forward_proxy)
    url = "http://api.example.test:8080/v1/chat?stream=1"  # never resolved: the proxy answers
    response = await client.request("POST", url, {}, b"{}", proxy=f"http://127.0.0.1:{proxy.port}")
    assert await read_all(response) == [b"from the proxy"]
    [request] = proxy.peers[0].requests
    assert request.line == f"POST {url} HTTP/1.1"
    assert request.headers["host"] == "api.example.test:8080"
    assert request.body == b"{}"


async def test_proxy_refusing_connect_raises_connect_failed(
    serve: Serve, tls: Tls, tls_client: HttpClient
) -> None:
    refusal = ok(b"", "proxy-authenticate: Basic", status="407 Proxy Authentication Required")
    proxy = await serve(answer(refusal))
    with pytest.raises(ConnectFailed, match="407"):
        await get(tls_client, "https://localhost:443/", proxy=f"http://127.0.0.1:{proxy.port}")
    assert proxy.peers[0].requests[0].line == "CONNECT localhost:443 HTTP/1.1"
    assert await proxy.peers[0].saw_hang_up()


async def test_proxy_silent_after_connect_times_out_and_is_dropped(serve: Serve, tls: Tls) -> None:
    async def silent(peer: Peer) -> None:
        await peer.request()
        await peer.until_gone()

    proxy = await serve(silent)
    client = HttpClient(connect_timeout=0.2, ssl_context=tls.client)
    await client.start()
    try:
        with pytest.raises(ConnectFailed):
            await get(client, "https://localhost:443/", proxy=f"http://127.0.0.1:{proxy.port}")
        assert await proxy.peers[0].saw_hang_up(within=0.5)
    finally:
        await client.close()


async def test_http_through_a_proxy_with_credentials_sends_them(serve: Serve, client: HttpClient) -> None:
    proxy = await serve(forward_proxy)
    proxy_url = f"http://user:secret@127.0.0.1:{proxy.port}"
    response = await get(client, "http://api.example.test/v1/models", proxy=proxy_url)
    assert await read_all(response) == [b"from the proxy"]
    [request] = proxy.peers[0].requests
    assert request.headers.get("proxy-authorization") == "Basic " + base64.b64encode(b"user:secret").decode()
