"""The gateway's HTTP/1.1 client for provider calls: pooled keep-alive connections, at most
``max_connections`` open at once, responses parsed by httptools (llhttp) as they arrive.

It replaced aiohttp's client, which cost ~170 µs of CPU per request on the benchmark machine
against ~30 µs for this one, and a task wake-up through its StreamReader for every chunk read
(docs/benchmarks.md). It does only what provider calls need: one request at a time per
connection (sent once more on a new one when a kept-alive one closes before a byte of the
answer), a body of bytes, no redirects, no cookies, no compression (identity is asked for,
a compressed response refused), HTTPS with the system's CA store, and HTTP(S)_PROXY naming an
http:// proxy (``CONNECT`` for HTTPS, absolute-form for HTTP; https:// proxies are refused).
No read timeouts: every call runs inside a stream, whose own timeouts govern it.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import select
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from urllib.parse import unquote, urlsplit

import httptools

MAX_BUFFERED = 256 * 1024  # body bytes held unread before the socket stops being read
MAX_HEAD = 64 * 1024  # bytes of response headers accepted
KEEPALIVE_SECONDS = 15.0  # an idle pooled connection older than this is closed, not reused
# Taken off a server's own Keep-Alive timeout: its idle clock starts when it has sent the last
# byte, ours later, so a request sent just in time could cross the server's close.
KEEPALIVE_MARGIN = 0.5
MAX_IDLE_PER_ORIGIN = 64
# An idle connection is looked at (a system call, ~5 µs on the bench machine, on the way to the
# upstream request) only once it has been idle this long. The loop itself watches every idle
# socket, so what the look catches is what arrived since the loop's last poll; a server closes
# an idle connection at its keep-alive timeout, seconds at the least, so one idle for less has
# not been closed by that. Reuse under load is milliseconds apart and pays nothing.
QUIET_REUSE_SECONDS = 1.0
MAX_CONNECTIONS = 1000  # open connections of all origins: beyond, requests wait for one
POOL_TIMEOUT_SECONDS = 10.0  # the longest a request waits for a connection at the cap
# Request shapes (method, URL, proxy, headers) whose route and head are kept worked out: a
# provider sends the same few on every request, and parsing them took a tenth of a start's time.
MAX_SHAPES = 256
# Written by the client itself. accept-encoding: identity, as nothing here decompresses a body.
_OWN_HEADERS = frozenset({"host", "content-length", "user-agent", "accept-encoding"})
_LINE_BREAKS = frozenset("\r\n")


class HttpError(OSError):
    """A failed exchange; the message never contains request headers (keys)."""


class ConnectFailed(HttpError):
    """No connection: refused, unresolvable, timed out, TLS failure, or the proxy refused."""


class NoResponse(HttpError):
    """The connection closed or broke, or sent something unreadable, before a whole response head."""


class Unanswered(NoResponse):
    """The server closed the connection before a byte of the response."""


class BadRequest(HttpError):
    """The request could not be written as given (a header with a line break)."""


class BodyCut(HttpError):
    """The response body ended early, broke, or was malformed."""


class UnsupportedProxy(HttpError):
    """A proxy URL that is not ``http://``. An https:// proxy would need TLS to the proxy, then
    TLS to the origin inside its tunnel: start_tls over a TLS transport, untried here on uvloop,
    for little gain, as HTTPS to the origin is end-to-end TLS through an http:// proxy anyway."""


class PoolTimeout(HttpError):
    """Every connection the cap allows stayed in use for the whole pool timeout."""


class UnsupportedEncoding(HttpError):
    """The response body is compressed (any content-encoding but identity), though only identity
    was accepted: it would reach the dialect's parser as garbage."""


@dataclass(frozen=True, slots=True)
class _Route:
    """Where a connection goes: the origin, and the proxy it goes through (pool key)."""

    scheme: str
    host: str
    port: int
    proxy: str | None


class State(enum.Enum):
    """Where a connection is in its life (httpcore's ``HTTPConnectionState``, with the steps
    of reading a response). It changes only in ``_Connection._enter``, along ``_MOVES``."""

    CONNECTING = "connecting"  # TCP, a proxy's CONNECT, TLS: carrying no request yet
    HEAD = "head"  # a request (or a proxy's CONNECT) written: the response head awaited
    BODY = "body"  # the head read: the body arriving
    DONE = "done"  # the body ended; the reader may still hold some of it
    IDLE = "idle"  # in the pool, between exchanges
    CLOSED = "closed"  # dropped or closed by the peer; without an error, after a whole response

    # Members are singletons: identity's hash, in C, instead of Enum's hash of the name in Python
    # (each exchange looks states up in _MOVES four times).
    __hash__ = object.__hash__


_MOVES: dict[State, frozenset[State]] = {
    State.CONNECTING: frozenset({State.HEAD, State.CLOSED}),
    State.HEAD: frozenset({State.BODY, State.CLOSED}),
    # -> CONNECTING: a proxy answered CONNECT; TLS with the origin follows in the tunnel
    State.BODY: frozenset({State.DONE, State.CONNECTING, State.CLOSED}),
    State.DONE: frozenset({State.IDLE, State.CONNECTING, State.CLOSED}),
    State.IDLE: frozenset({State.HEAD, State.CLOSED}),
    State.CLOSED: frozenset(),
}
_EXCHANGING = frozenset({State.CONNECTING, State.HEAD, State.BODY})  # closed there: a failure


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection and the response being read on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_closed: Callable[[_Connection], None]) -> None:
        self.loop = loop
        self._on_closed = on_closed  # the client's: forgets it
        self.state = State.CONNECTING
        self.transport: asyncio.Transport | None = None
        self.expires = 0.0  # when idle: the monotonic time after which it is not reused
        self.idle_since = 0.0  # when it last went idle (monotonic)
        self.error: HttpError | None = None  # why the exchange failed, raised to its reader
        self._waiter: asyncio.Future[None] | None = None
        self._reset()

    def _reset(self) -> None:
        """Empty the response: the next one is read from scratch."""
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: dict[str, str] = {}
        self._head_read = 0  # bytes read while the head is incomplete
        self._header_bytes = 0  # bytes of the header lines parsed
        self.keep_alive = False  # the server allows another exchange after this one
        self.close_delimited = False
        self.body: list[bytes] = []
        self.buffered = 0
        self.paused = False
        # Set while Response.pipe waits: each read's body goes to it at once, without a wake-up.
        self.consumer: Callable[[bytes], bool] | None = None
        self.held = False  # the consumer asked to stop reading for now

    def _enter(self, state: State) -> None:
        """The one place the state changes: every move, and what it sets off."""
        assert state in _MOVES[self.state], f"{self.state} -> {state}"
        previous, self.state = self.state, state
        if state is State.HEAD:
            self._reset()
        elif state is State.CLOSED:
            if previous in _EXCHANGING and self.error is None:
                kind = BodyCut if previous is State.BODY else NoResponse
                self.error = kind("the connection closed")
            self.parser = None  # it refers back to this protocol: no cycle left for the collector
            self._on_closed(self)
        if state is not State.IDLE:
            self._wake()  # the reader waits for the head, the end, or a failure

    def send(self, data: bytes) -> None:
        """Write a request (or a proxy's CONNECT): the response head is awaited next."""
        if self.state is State.CLOSED:
            return  # closed by the peer as soon as connected: ``error`` says so
        assert self.transport is not None
        # The request leaves first: setting up for its response (a new parser) is not on the way
        # to the upstream, and no byte of the response, nor the connection's loss, can be handed
        # to this protocol before this callback returns.
        self.transport.write(data)
        self._enter(State.HEAD)

    # ---- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state is not State.BODY and state is not State.HEAD:
            self._spoil()  # bytes nobody asked for: never reuse this connection
            return
        parser = self.parser
        assert parser is not None  # dropped only when CLOSED
        try:
            parser.feed_data(data)
        except httptools.HttpParserError:
            if self.body:
                self._deliver()  # the body before the bad bytes still counts
            if self.state is State.DONE:
                self.keep_alive = False  # bytes after a whole response: spoiled, not failed
            else:
                kind = BodyCut if self.state is State.BODY else NoResponse
                self._fail(kind("malformed HTTP response"))
            return
        if self.body:
            self._deliver()
        if self.state is State.HEAD:
            self._head_read += len(data)  # the parser buffers a line that never ends: bound it
            if self._head_read > MAX_HEAD:
                self._fail(NoResponse("response head too large"))

    def eof_received(self) -> None:
        self._spoil()  # the peer closed its side: no exchange after this one
        return None  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self.state is State.CLOSED:
            return
        if self.state is State.BODY and self.close_delimited and exc is None:
            self._enter(State.DONE)  # a body without length or chunking ends with the connection
        elif self.state is State.HEAD and not self._head_read:
            self.error = Unanswered("the connection closed before a byte of the response")
        elif exc is not None and self.state in _EXCHANGING:
            kind = BodyCut if self.state is State.BODY else NoResponse
            self.error = kind("the connection broke")
        self._enter(State.CLOSED)

    # ---- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.state is State.DONE:  # a second response in the same read: nobody asked for it
            raise httptools.HttpParserError("a response nobody asked for")

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
        self._enter(State.BODY)

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
        if self.state is State.BODY:  # not an interim response's end
            self._enter(State.DONE)

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

    def enter_idle(self, now: float, expires: float) -> None:
        self.idle_since, self.expires = now, expires
        self._enter(State.IDLE)

    def fit_for_reuse(self, now: float) -> bool:
        """Idle, unexpired, and its socket quiet: one readable while idle was closed by the server
        or got bytes nobody asked for, before the loop could tell (httpcore's ``has_expired``).
        The socket is looked at only once idle for ``QUIET_REUSE_SECONDS``."""
        transport = self.transport
        return (
            self.state is State.IDLE
            and now < self.expires
            and transport is not None
            and not transport.is_closing()
            and (now - self.idle_since < QUIET_REUSE_SECONDS or not _readable(transport))
        )

    def tunnelled(self) -> None:
        """The proxy answered CONNECT: TLS with the origin comes next, in the tunnel."""
        self._enter(State.CONNECTING)

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def ended(self) -> bool:
        """The response was read whole (a failure is in ``error``)."""
        return self.error is None and (self.state is State.DONE or self.state is State.CLOSED)

    def reusable(self) -> bool:
        transport = self.transport
        return (
            self.state is State.DONE
            and self.keep_alive
            and transport is not None
            and not transport.is_closing()
        )

    def _spoil(self) -> None:
        """No further exchange on this connection: dropped now when idle, else once its
        response is done with."""
        if self.state is State.IDLE:
            self.abort()
        else:
            self.keep_alive = False

    def abort(self) -> None:
        if self.state is not State.CLOSED:
            self._enter(State.CLOSED)
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
            if conn.ended():
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
            if conn.ended():
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


class _Waiter:
    """A request waiting for a connection (at the cap); ``future`` gets one, idle or new (only
    new when ``fresh``)."""

    __slots__ = ("fresh", "future", "route")

    def __init__(self, route: _Route, fresh: bool) -> None:
        self.route = route
        self.fresh = fresh
        self.future: asyncio.Future[_Connection] = asyncio.get_running_loop().create_future()


class HttpClient:
    """Pooled connections by origin (and proxy), at most ``max_connections`` of all origins open
    at once; started and closed by the app's lifespan."""

    def __init__(
        self,
        *,
        connect_timeout: float = 10,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = MAX_CONNECTIONS,
        pool_timeout: float = POOL_TIMEOUT_SECONDS,
        keepalive: float = KEEPALIVE_SECONDS,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._ssl = ssl_context
        self._max_connections = max_connections
        self._pool_timeout = pool_timeout
        self._keepalive = keepalive
        self._open: set[_Connection] = set()  # every connection counted by the cap, in any state
        self._idle: dict[_Route, list[_Connection]] = {}  # the most recently used last
        self._queue: deque[_Waiter] = deque()  # requests waiting at the cap, first come first served
        self._shapes: dict[tuple[object, ...], _Prepared] = {}  # see MAX_SHAPES

    async def start(self) -> None:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()

    async def close(self) -> None:
        queue, self._queue = self._queue, deque()  # emptied first: no connection is handed out
        for waiter in queue:
            if not waiter.future.done():
                waiter.future.set_exception(ConnectFailed("the HTTP client is closed"))
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
        """Send a request and wait for the response head. Raises ConnectFailed, PoolTimeout or
        NoResponse."""
        shape = (method, url, proxy, tuple(headers.items()))
        prepared = self._shapes.get(shape)
        if prepared is None:  # before taking a connection: a bad URL or header takes none
            prepared = _prepare(method, url, headers, proxy)
            if len(self._shapes) >= MAX_SHAPES:
                self._shapes.clear()  # a new set of shapes in use: the old ones are likely done with
            self._shapes[shape] = prepared
        route = prepared.route
        message = b"".join((prepared.head, b"content-length: %d\r\n\r\n" % len(body), body))
        conn = await self._acquire(route)
        reused = conn.state is State.IDLE
        try:
            return await self._exchange(route, conn, message)
        except Unanswered:
            if not reused:
                raise
            # A kept-alive connection the server closed as the request went out (its idle timeout
            # crossing ours): without a byte of an answer, the request is taken not to have reached
            # it. Sent again, once, on a new connection: no stream pays a retry for the pool's race.
            return await self._exchange(route, await self._acquire(route, fresh=True), message)

    async def _exchange(self, route: _Route, conn: _Connection, message: bytes) -> Response:
        """Send ``message`` on ``conn`` (connecting it when new) and wait for the response head."""
        if conn.state is State.CONNECTING:
            await self._connect(conn, route)
        conn.send(message)
        try:
            while conn.state is State.HEAD:
                await conn.wait()
            if not conn.status:  # closed without a head; after one, reading the body raises
                raise conn.failure()
            _check_encoding(conn.headers)
        except BaseException:  # also cancelled (a timeout, the client left): the provider must see it
            conn.abort()
            raise
        return Response(self, route, conn)

    def release(self, route: _Route, conn: _Connection) -> None:
        """A connection whose response was read whole: idle, for its route's next request."""
        idle = self._idle.setdefault(route, [])
        if len(idle) >= MAX_IDLE_PER_ORIGIN:
            conn.abort()
            return
        keepalive = self._keepalive
        if (timeout := _keepalive_timeout(conn.headers)) is not None:
            keepalive = min(keepalive, timeout - KEEPALIVE_MARGIN)
        now = time.monotonic()
        conn.enter_idle(now, now + keepalive)
        idle.append(conn)
        self._assign()  # a waiter may take it, or close it to make room for its own route

    # ---- the pool ------------------------------------------------------------------------------

    async def _acquire(self, route: _Route, *, fresh: bool = False) -> _Connection:
        """A connection for ``route``: idle, or new (CONNECTING, to be connected by the caller);
        only new when ``fresh``."""
        conn = None if self._queue else self._grant(route, fresh)  # with waiters ahead, join them
        while conn is None or conn.state is State.CLOSED:  # closed while handed over: again, first
            conn = await self._wait(route, fresh, first=conn is not None)
        return conn

    async def _wait(self, route: _Route, fresh: bool, *, first: bool) -> _Connection:
        waiter = _Waiter(route, fresh)
        if first:
            self._queue.appendleft(waiter)
        else:
            self._queue.append(waiter)
        try:
            async with asyncio.timeout(self._pool_timeout):
                return await waiter.future
        except BaseException as exc:  # timed out or cancelled: it leaves no trace in the pool
            self._withdraw(waiter)
            if isinstance(exc, TimeoutError):
                limit = f"{self._max_connections} connections"
                raise PoolTimeout(f"none of the {limit} came free in {self._pool_timeout:g} s") from None
            raise

    def _withdraw(self, waiter: _Waiter) -> None:
        """A waiter gives up: it leaves the queue, and gives back a connection handed to it in
        the meantime (its task had not run yet)."""
        if waiter in self._queue:
            self._queue.remove(waiter)
            return
        if waiter.future.cancelled() or waiter.future.exception() is not None:
            return
        conn = waiter.future.result()
        if conn.state is State.IDLE:
            self._idle.setdefault(waiter.route, []).append(conn)
            self._assign()
        else:
            conn.abort()  # new, not yet connected: its place goes to the next waiter

    def _assign(self) -> None:
        """Hand connections to the waiting requests, in order, while the first can have one."""
        queue = self._queue
        while queue:
            waiter = queue[0]
            if waiter.future.done():  # cancelled: its task has yet to run and withdraw it
                queue.popleft()
                continue
            conn = self._grant(waiter.route, waiter.fresh)
            if conn is None:
                return
            queue.popleft()
            waiter.future.set_result(conn)

    def _grant(self, route: _Route, fresh: bool) -> _Connection | None:
        """The pool's policy, in one place (httpcore's ``_assign_requests_to_connections``): unless
        ``fresh``, the route's most recently used idle connection fit for reuse, closing the unfit
        ones on the way; else a new connection, when under the cap or when an idle connection of
        any route can be closed to make room (the one nearest its expiry); else None: wait."""
        idle = None if fresh else self._idle.get(route)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to be closed by the server
            if conn.fit_for_reuse(now):
                return conn
            self._close_idle(conn)
        if len(self._open) >= self._max_connections and not self._close_spare():
            return None
        conn = _Connection(asyncio.get_running_loop(), partial(self._closed, route))
        self._open.add(conn)
        return conn

    def _close_spare(self) -> bool:
        """Close the idle connection nearest its expiry, of any route; False when none is idle."""
        spare = min(
            ((conn, conns) for conns in self._idle.values() for conn in conns),
            key=lambda pair: pair[0].expires,
            default=None,
        )
        if spare is None:
            return False
        conn, conns = spare
        conns.remove(conn)
        self._close_idle(conn)
        return True

    def _close_idle(self, conn: _Connection) -> None:
        self._open.discard(conn)  # first: closed by the pool, it is not news to the pool
        conn.abort()

    def _closed(self, route: _Route, conn: _Connection) -> None:
        """A connection closed (by either side, in any state): its place may go to a waiter."""
        if conn not in self._open:
            return  # closed by the pool itself, in the middle of _grant
        self._open.discard(conn)
        idle = self._idle.get(route)
        if idle and conn in idle:
            idle.remove(conn)
        self._assign()

    async def _connect(self, conn: _Connection, route: _Route) -> None:
        try:
            async with asyncio.timeout(self._connect_timeout):
                await self._open_connection(conn, route)
        except BaseException as exc:  # refused, timed out, cancelled: nothing half-open is left
            conn.abort()
            if isinstance(exc, HttpError) or not isinstance(exc, (OSError, TimeoutError)):
                raise
            raise ConnectFailed(f"could not connect to {route.host}:{route.port}") from exc

    async def _open_connection(self, conn: _Connection, route: _Route) -> None:
        """Connect ``conn`` to the origin, or to the proxy (tunnelling HTTPS through it)."""
        loop = asyncio.get_running_loop()
        tls = self._ssl if route.scheme == "https" else None
        if route.proxy is None:
            host = route.host if tls else None
            await loop.create_connection(lambda: conn, route.host, route.port, ssl=tls, server_hostname=host)
            return
        check_proxy(route.proxy)
        proxy = urlsplit(route.proxy)
        assert proxy.hostname is not None
        await loop.create_connection(lambda: conn, proxy.hostname, proxy.port or 80)
        if tls is not None:  # plain HTTP goes to the proxy in absolute-form
            await self._tunnel(loop, conn, route, tls)

    @staticmethod
    async def _tunnel(
        loop: asyncio.AbstractEventLoop, conn: _Connection, route: _Route, tls: ssl.SSLContext
    ) -> None:
        """``CONNECT`` through the proxy, then TLS with the origin over that tunnel."""
        assert conn.transport is not None
        assert route.proxy is not None
        authority = _authority(route.host, route.port)
        conn.send(_head("CONNECT", authority, authority, _proxy_auth(route.proxy)) + b"\r\n")
        while conn.state is State.HEAD:
            await conn.wait()
        if conn.status and conn.status != 200:
            raise ConnectFailed(f"the proxy refused the tunnel ({conn.status})")
        if conn.state is State.CLOSED:
            raise ConnectFailed("the proxy closed the connection") from conn.error
        conn.tunnelled()
        transport = await loop.start_tls(conn.transport, conn, tls, server_hostname=route.host)
        if transport is None:
            raise ConnectFailed("TLS through the proxy failed")
        conn.transport = transport


def check_proxy(url: str) -> None:
    """UnsupportedProxy unless ``url`` is an http:// proxy (checked at start-up, and again at use).
    The message never repeats the URL, which may hold credentials."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise UnsupportedProxy("the proxy URL must be http://host:port (https:// proxies are not supported)")


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A request shape worked out: where it goes, and its head up to the content length."""

    route: _Route
    head: bytes


def _prepare(method: str, url: str, headers: Mapping[str, str], proxy: str | None) -> _Prepared:
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
    return _Prepared(route, _head(method, target, authority, headers))


def _head(method: str, target: str, host: str, headers: Mapping[str, str]) -> bytes:
    """The request head's lines, each ending in CRLF, without the blank line that ends the head;
    BadRequest for what cannot be written (header values never shown)."""
    request_line = f"{method} {target} HTTP/1.1"
    if not (request_line + host).isascii():
        raise BadRequest("the request URL contains a character that is not ASCII")
    lines = [request_line, f"host: {host}", "user-agent: tokenwire", "accept-encoding: identity"]
    for name, value in headers.items():
        if name.lower() in _OWN_HEADERS:
            continue
        if _LINE_BREAKS.intersection(name) or _LINE_BREAKS.intersection(value):
            # e.g. a key read from a file with its newline: it would split the request
            raise BadRequest(f"the request header {name!r} contains a line break")
        if not (name + value).isascii():
            raise BadRequest(f"the request header {name!r} contains a character that is not ASCII")
        lines.append(f"{name}: {value}")
    return "".join(line + "\r\n" for line in lines).encode("ascii")


def _readable(transport: asyncio.BaseTransport) -> bool:
    """Whether the socket has bytes (or its end) waiting to be read, without reading them."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return True  # no socket to use
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def _keepalive_timeout(headers: Mapping[str, str]) -> int | None:
    """The seconds a server keeps an idle connection open, from ``Keep-Alive: timeout=N``."""
    given = headers.get("keep-alive")
    if given is None:  # the usual case, on every exchange
        return None
    for param in given.split(","):
        name, _, value = param.partition("=")
        if name.strip().lower() == "timeout" and value.strip().isdecimal():
            return int(value)
    return None


def _check_encoding(headers: Mapping[str, str]) -> None:
    encoding = headers.get("content-encoding")
    if encoding is None:  # the usual case, on every exchange
        return
    encoding = encoding.strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedEncoding(f"the response body is {encoding[:40]!r}-encoded, not identity")


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
