"""The gateway's HTTP/1.1 client for provider calls: pooled keep-alive connections, responses
parsed by httptools (llhttp) as they arrive.

It replaced aiohttp's client, which cost ~170 µs of CPU per request on the benchmark machine
against ~30 µs for this one, and a task wake-up through its StreamReader for every chunk read
(docs/benchmarks.md). It does only what provider calls need: one request at a time per
connection, a body of bytes, no redirects, no cookies, no compression (none is asked for), HTTPS
with the system's CA store, and HTTP(S)_PROXY (``CONNECT`` for HTTPS, absolute-form for HTTP).
No read timeouts: every call runs inside a stream, whose own timeouts govern it.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import httptools

MAX_BUFFERED = 256 * 1024  # body bytes held unread before the socket stops being read
MAX_HEAD = 64 * 1024  # bytes of response headers accepted
KEEPALIVE_SECONDS = 15.0  # an idle pooled connection older than this is closed, not reused
MAX_IDLE_PER_ORIGIN = 64
_OWN_HEADERS = frozenset({"host", "content-length", "user-agent"})  # written by the client itself
_LINE_BREAKS = frozenset("\r\n")


class HttpError(OSError):
    """A failed exchange; the message never contains request headers (keys)."""


class ConnectFailed(HttpError):
    """No connection: refused, unresolvable, timed out, TLS failure, or the proxy refused."""


class NoResponse(HttpError):
    """The connection closed or broke, or sent something unreadable, before a whole response head."""


class BadRequest(HttpError):
    """The request could not be written as given (a header with a line break)."""


class BodyCut(HttpError):
    """The response body ended early, broke, or was malformed."""


@dataclass(frozen=True, slots=True)
class _Route:
    """Where a connection goes: the origin, and the proxy it goes through (pool key)."""

    scheme: str
    host: str
    port: int
    proxy: str | None


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection and the response being read on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, open_connections: set[_Connection]) -> None:
        self.loop = loop
        self._open = open_connections  # the client's: closed with it
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self.begin()

    def begin(self) -> None:
        """Get ready for the next response on this connection."""
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: dict[str, str] = {}
        self._head_read = 0  # bytes read while the head is incomplete
        self._header_bytes = 0  # bytes of the header lines parsed
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.close_delimited = False
        self.error: HttpError | None = None
        self.body: list[bytes] = []
        self.buffered = 0
        self.paused = False
        # Set while Response.pipe waits: each read's body goes to it at once, without a wake-up.
        self.consumer: Callable[[bytes], bool] | None = None
        self.held = False  # the consumer asked to stop reading for now

    # ---- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport
        self._open.add(self)

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if self.error is not None or self.complete or parser is None:
            self.keep_alive = False  # bytes nobody asked for: never reuse this connection
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserError:
            if self.body:
                self._deliver()  # the body before the bad bytes still counts
            kind = BodyCut if self.head_done else NoResponse
            self._fail(kind("malformed HTTP response"))
            return
        if self.body:
            self._deliver()
        if not self.head_done and self.error is None:
            self._head_read += len(data)  # the parser buffers a line that never ends: bound it
            if self._head_read > MAX_HEAD:
                self._fail(NoResponse("response head too large"))

    def eof_received(self) -> None:
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._open.discard(self)
        if not self.complete and self.error is None:
            if self.head_done and self.close_delimited and exc is None:
                self.complete = True  # a body without length or chunking ends with the connection
            else:
                kind = BodyCut if self.head_done else NoResponse
                self.error = kind("the connection closed" if exc is None else "the connection broke")
        self.parser = None  # it refers back to this protocol: no cycle left for the collector
        self._wake()

    # ---- httptools callbacks -------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEAD:
            raise httptools.HttpParserError("response headers too large")
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        assert self.parser is not None  # called back from within its feed_data
        status = self.parser.get_status_code()
        if status < 200:
            self.headers = {}  # an interim response (100 Continue): skip it
            return
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()
        chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self.close_delimited = not chunked and "content-length" not in self.headers
        self.head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)  # handed over once the whole read is parsed (_deliver)
        self.buffered += len(body)

    def _deliver(self) -> None:
        """The body bytes of one read: to the consumer in one piece (a read often brings many
        chunks of a chunked body), else kept for the reader, who is woken."""
        consumer = self.consumer
        if consumer is None:
            if self.buffered > MAX_BUFFERED:
                self.pause()  # the reader is behind: TCP backpressure to the provider
            self._wake()
        elif consumer(self.take_body()):  # behind or failed: what follows waits for pipe
            self.consumer = None
            self.held = True
            self.pause()
            self._wake()

    def on_message_complete(self) -> None:
        if self.head_done:
            self.complete = True
            self._wake()

    # ---- the reader's side ---------------------------------------------------------------------

    async def wait(self) -> None:
        """Until the protocol has news (head, body, end or error)."""
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def take_body(self) -> bytes:
        data = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.body.clear()
        self.buffered = 0
        return data

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def reusable(self) -> bool:
        return (
            self.complete
            and self.keep_alive
            and not self.closed
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()  # no lingering: the provider sees the client go at once

    def failure(self) -> HttpError:
        """The error, as a new exception to raise: the connection keeps no raised exception,
        whose traceback would hold the reader's frames (and this connection) in a cycle."""
        assert self.error is not None
        return type(self.error)(*self.error.args)

    def _fail(self, error: HttpError) -> None:
        self.error = error
        self.abort()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Response:
    """A response whose head has arrived; the body is read with ``read_some``."""

    def __init__(self, client: HttpClient, route: _Route, conn: _Connection) -> None:
        self._client = client
        self._route = route
        self._conn: _Connection | None = conn
        self.status = conn.status
        self.headers: Mapping[str, str] = conn.headers  # names in lower case

    async def read_some(self) -> bytes:
        """The body bytes received since the last call (waiting for some); b"" at the end.
        Raises BodyCut when the body ends early or breaks."""
        conn = self._conn
        if conn is None:
            return b""
        while True:
            if conn.body:
                data = conn.take_body()
                conn.resume()
                return data
            if conn.error is not None:
                raise conn.failure()
            if conn.complete:
                self.close()
                return b""
            await conn.wait()

    async def pipe(self, consume: Callable[[bytes], bool]) -> bool:
        """Hand the body to ``consume`` as it arrives, from the connection's data callback (no
        task wakes per chunk), until the body ends: False. When ``consume`` returns True, reading
        pauses and True is returned: call again to go on. Raises BodyCut when the body breaks."""
        conn = self._conn
        if conn is None:
            return False
        while True:
            if conn.body and consume(conn.take_body()):  # what came with the head, or while held
                return True
            if conn.error is not None:
                raise conn.failure()
            if conn.complete:
                self.close()
                return False
            conn.resume()
            conn.consumer = consume
            try:
                await conn.wait()
            finally:
                conn.consumer = None
            if conn.held:
                conn.held = False
                return True

    async def read(self, limit: int) -> bytes:
        """The body, cut at ``limit`` bytes (``close()`` then drops the connection)."""
        body = bytearray()
        while len(body) <= limit and (data := await self.read_some()):
            body += data
        return bytes(body[:limit])

    def close(self) -> None:
        """Done with it: a connection read to the end goes back to the pool, any other is
        dropped, which tells the provider to stop generating."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.reusable() and not conn.body:
            conn.resume()  # a consumer may have held it at its last chunk
            self._client.release(self._route, conn)
        else:
            conn.abort()


class HttpClient:
    """Pooled connections by origin (and proxy); started and closed by the app's lifespan."""

    def __init__(self, *, connect_timeout: float = 10, ssl_context: ssl.SSLContext | None = None) -> None:
        self._connect_timeout = connect_timeout
        self._ssl = ssl_context
        self._idle: dict[_Route, list[_Connection]] = {}
        self._open: set[_Connection] = set()  # every connection not closed, idle or in use

    async def start(self) -> None:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()

    async def close(self) -> None:
        for conn in list(self._open):
            conn.abort()
        self._open.clear()
        self._idle.clear()

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        proxy: str | None = None,
    ) -> Response:
        """Send a request and wait for the response head. Raises ConnectFailed or NoResponse."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ConnectFailed(f"unsupported URL scheme or host: {scheme}")
        port = parts.port or (443 if scheme == "https" else 80)
        route = _Route(scheme, parts.hostname, port, proxy)
        authority = _authority(route.host, parts.port)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        if proxy is not None and scheme == "http":
            target = f"http://{authority}{target}"  # absolute-form, to a forward proxy
            headers = {**headers, **_proxy_auth(proxy)}
        head = _head(method, target, authority, headers, len(body))  # before a connection is taken
        conn = self._pooled(route) or await self._connect(route)
        conn.begin()
        assert conn.transport is not None
        conn.transport.write(head + body)
        try:
            while not conn.head_done:
                if conn.error is not None:
                    raise conn.failure()
                await conn.wait()
        except BaseException:  # also cancelled (a timeout, the client left): the provider must see it
            conn.abort()
            raise
        return Response(self, route, conn)

    def release(self, route: _Route, conn: _Connection) -> None:
        idle = self._idle.setdefault(route, [])
        if len(idle) >= MAX_IDLE_PER_ORIGIN:
            conn.abort()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def _pooled(self, route: _Route) -> _Connection | None:
        idle = self._idle.get(route)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to be closed by the server
            if conn.reusable() and now - conn.idle_since < KEEPALIVE_SECONDS:
                return conn
            conn.abort()
        return None

    async def _connect(self, route: _Route) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = self._ssl if route.scheme == "https" else None
        try:
            async with asyncio.timeout(self._connect_timeout):
                if route.proxy is not None:
                    return await self._through_proxy(loop, route, tls)
                host = route.host if tls else None
                _, conn = await loop.create_connection(
                    self._new_connection, route.host, route.port, ssl=tls, server_hostname=host
                )
                return conn
        except HttpError:
            raise
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise ConnectFailed(f"could not connect to {route.host}:{route.port}") from exc

    def _new_connection(self) -> _Connection:
        return _Connection(asyncio.get_running_loop(), self._open)

    async def _through_proxy(
        self, loop: asyncio.AbstractEventLoop, route: _Route, tls: ssl.SSLContext | None
    ) -> _Connection:
        assert route.proxy is not None
        proxy = urlsplit(route.proxy)
        if proxy.scheme != "http" or not proxy.hostname:
            raise ConnectFailed("only http:// proxies are supported")
        _, conn = await loop.create_connection(self._new_connection, proxy.hostname, proxy.port or 80)
        if tls is None:
            return conn  # plain HTTP: requests go to the proxy in absolute-form
        try:
            await self._tunnel(loop, conn, route, tls)
        except BaseException:  # refused, timed out, cancelled: no half-open tunnel is left behind
            conn.abort()
            raise
        return conn

    @staticmethod
    async def _tunnel(
        loop: asyncio.AbstractEventLoop, conn: _Connection, route: _Route, tls: ssl.SSLContext
    ) -> None:
        """``CONNECT`` through the proxy, then TLS with the origin over that tunnel."""
        assert conn.transport is not None
        assert route.proxy is not None
        authority = _authority(route.host, route.port)
        conn.transport.write(_head("CONNECT", authority, authority, _proxy_auth(route.proxy), None))
        while not conn.head_done:
            if conn.error is not None:
                raise ConnectFailed("the proxy closed the connection") from conn.error
            await conn.wait()
        if conn.status != 200:
            raise ConnectFailed(f"the proxy refused the tunnel ({conn.status})")
        transport = await loop.start_tls(conn.transport, conn, tls, server_hostname=route.host)
        if transport is None:
            raise ConnectFailed("TLS through the proxy failed")
        conn.transport = transport


def _head(method: str, target: str, host: str, headers: Mapping[str, str], length: int | None) -> bytes:
    """The request head; BadRequest for what cannot be written (header values never shown)."""
    request_line = f"{method} {target} HTTP/1.1"
    if not (request_line + host).isascii():
        raise BadRequest("the request URL contains a character that is not ASCII")
    lines = [request_line, f"host: {host}", "user-agent: tokenwire"]
    for name, value in headers.items():
        if name.lower() in _OWN_HEADERS:
            continue
        if _LINE_BREAKS.intersection(name) or _LINE_BREAKS.intersection(value):
            # e.g. a key read from a file with its newline: it would split the request
            raise BadRequest(f"the request header {name!r} contains a line break")
        if not (name + value).isascii():
            raise BadRequest(f"the request header {name!r} contains a character that is not ASCII")
        lines.append(f"{name}: {value}")
    if length is not None:
        lines.append(f"content-length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _authority(host: str, port: int | None) -> str:
    """``host[:port]`` as the Host header and CONNECT want it: no credentials, IPv6 in brackets."""
    name = f"[{host}]" if ":" in host else host
    return name if port is None else f"{name}:{port}"


def _proxy_auth(proxy: str) -> dict[str, str]:
    """Basic credentials from the proxy URL's user part, if it has one."""
    parts = urlsplit(proxy)
    if not parts.username:
        return {}
    user, password = unquote(parts.username), unquote(parts.password or "")
    return {"proxy-authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
