"""One HTTP/1.1 connection of the client (providers.http.client) and the response being read on
it, as an asyncio protocol: a ``State`` that changes along one table, the response head and body
as httptools parses them, and whether the connection may be used again."""

from __future__ import annotations

import asyncio
import enum
import select
from collections.abc import Callable

import httptools

from providers.http.errors import BodyCut, HttpError, NoResponse, Unanswered

MAX_BUFFERED = 256 * 1024  # body bytes held unread before the socket stops being read
MAX_HEAD = 64 * 1024  # bytes of response headers accepted
# An idle connection is looked at (a system call, ~5 µs on the bench machine, on the way to the
# upstream request) only once it has been idle this long. The loop itself watches every idle
# socket, so what the look catches is what arrived since the loop's last poll; a server closes
# an idle connection at its keep-alive timeout, seconds at the least, so one idle for less has
# not been closed by that. Reuse under load is milliseconds apart and pays nothing.
QUIET_REUSE_SECONDS = 1.0


class State(enum.Enum):
    """Where a connection is in its life (httpcore's ``HTTPConnectionState``, with the steps
    of reading a response). It changes only in ``Connection._enter``, along ``_MOVES``."""

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
EXCHANGING = frozenset({State.CONNECTING, State.HEAD, State.BODY})  # closed there: a failure


class Connection(asyncio.Protocol):
    """One TCP (or TLS) connection and the response being read on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_closed: Callable[[Connection], None]) -> None:
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
            if previous in EXCHANGING and self.error is None:
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
        elif exc is not None and self.state in EXCHANGING:
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


def _readable(transport: asyncio.BaseTransport) -> bool:
    """Whether the socket has bytes (or its end) waiting to be read, without reading them."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return True  # no socket to use
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))
