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
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from functools import partial
from urllib.parse import urlsplit

from providers.http.connection import Connection, State
from providers.http.errors import ConnectFailed, HttpError, PoolTimeout, Unanswered
from providers.http.wire import (
    Prepared,
    Route,
    authority_of,
    check_encoding,
    check_proxy,
    keepalive_timeout,
    prepare,
    proxy_auth,
    request_head,
)

KEEPALIVE_SECONDS = 15.0  # an idle pooled connection older than this is closed, not reused
# Taken off a server's own Keep-Alive timeout: its idle clock starts when it has sent the last
# byte, ours later, so a request sent just in time could cross the server's close.
KEEPALIVE_MARGIN = 0.5
MAX_IDLE_PER_ORIGIN = 64
MAX_CONNECTIONS = 1000  # open connections of all origins: beyond, requests wait for one
POOL_TIMEOUT_SECONDS = 10.0  # the longest a request waits for a connection at the cap
# Request shapes (method, URL, proxy, headers) whose route and head are kept worked out: a
# provider sends the same few on every request, and parsing them took a tenth of a start's time.
MAX_SHAPES = 256


class Response:
    """A response whose head has arrived; the body is read with ``read_some``."""

    def __init__(self, client: HttpClient, route: Route, conn: Connection) -> None:
        self._client = client
        self._route = route
        self._conn: Connection | None = conn
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

    def __init__(self, route: Route, fresh: bool) -> None:
        self.route = route
        self.fresh = fresh
        self.future: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()


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
        self._open: set[Connection] = set()  # every connection counted by the cap, in any state
        self._idle: dict[Route, list[Connection]] = {}  # the most recently used last
        self._queue: deque[_Waiter] = deque()  # requests waiting at the cap, first come first served
        self._shapes: dict[tuple[object, ...], Prepared] = {}  # see MAX_SHAPES

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
            prepared = prepare(method, url, headers, proxy)
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

    async def _exchange(self, route: Route, conn: Connection, message: bytes) -> Response:
        """Send ``message`` on ``conn`` (connecting it when new) and wait for the response head."""
        if conn.state is State.CONNECTING:
            await self._connect(conn, route)
        conn.send(message)
        try:
            while conn.state is State.HEAD:
                await conn.wait()
            if not conn.status:  # closed without a head; after one, reading the body raises
                raise conn.failure()
            check_encoding(conn.headers)
        except BaseException:  # also cancelled (a timeout, the client left): the provider must see it
            conn.abort()
            raise
        return Response(self, route, conn)

    def release(self, route: Route, conn: Connection) -> None:
        """A connection whose response was read whole: idle, for its route's next request."""
        idle = self._idle.setdefault(route, [])
        if len(idle) >= MAX_IDLE_PER_ORIGIN:
            conn.abort()
            return
        keepalive = self._keepalive
        if (timeout := keepalive_timeout(conn.headers)) is not None:
            keepalive = min(keepalive, timeout - KEEPALIVE_MARGIN)
        now = time.monotonic()
        conn.enter_idle(now, now + keepalive)
        idle.append(conn)
        self._assign()  # a waiter may take it, or close it to make room for its own route

    # ---- the pool ------------------------------------------------------------------------------

    async def _acquire(self, route: Route, *, fresh: bool = False) -> Connection:
        """A connection for ``route``: idle, or new (CONNECTING, to be connected by the caller);
        only new when ``fresh``."""
        conn = None if self._queue else self._grant(route, fresh)  # with waiters ahead, join them
        while conn is None or conn.state is State.CLOSED:  # closed while handed over: again, first
            conn = await self._wait(route, fresh, first=conn is not None)
        return conn

    async def _wait(self, route: Route, fresh: bool, *, first: bool) -> Connection:
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

    def _grant(self, route: Route, fresh: bool) -> Connection | None:
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
        conn = Connection(asyncio.get_running_loop(), partial(self._closed, route))
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

    def _close_idle(self, conn: Connection) -> None:
        self._open.discard(conn)  # first: closed by the pool, it is not news to the pool
        conn.abort()

    def _closed(self, route: Route, conn: Connection) -> None:
        """A connection closed (by either side, in any state): its place may go to a waiter."""
        if conn not in self._open:
            return  # closed by the pool itself, in the middle of _grant
        self._open.discard(conn)
        idle = self._idle.get(route)
        if idle and conn in idle:
            idle.remove(conn)
        self._assign()

    async def _connect(self, conn: Connection, route: Route) -> None:
        try:
            async with asyncio.timeout(self._connect_timeout):
                await self._open_connection(conn, route)
        except BaseException as exc:  # refused, timed out, cancelled: nothing half-open is left
            conn.abort()
            if isinstance(exc, HttpError) or not isinstance(exc, (OSError, TimeoutError)):
                raise
            raise ConnectFailed(f"could not connect to {route.host}:{route.port}") from exc

    async def _open_connection(self, conn: Connection, route: Route) -> None:
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
        loop: asyncio.AbstractEventLoop, conn: Connection, route: Route, tls: ssl.SSLContext
    ) -> None:
        """``CONNECT`` through the proxy, then TLS with the origin over that tunnel."""
        assert conn.transport is not None
        assert route.proxy is not None
        authority = authority_of(route.host, route.port)
        conn.send(request_head("CONNECT", authority, authority, proxy_auth(route.proxy)) + b"\r\n")
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
