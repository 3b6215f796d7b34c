"""uvicorn's httptools HTTP protocol with a synchronous write of response body chunks.

An event stream sends one body chunk per relayed event. Through ASGI each is a coroutine chain
(the middlewares' send wrappers, then uvicorn's send) and a wake-up of the response's task;
that made a Server-Sent Events chunk cost ~40 % more of the gateway's CPU than the same chunk
over a WebSocket, which writes its frames directly (server.fastpath.ws_protocol). This protocol puts a
``DirectWriter`` in each request's scope extensions (``BODY_EXTENSION``), so the event stream can
write its chunks from the event log's callback. ASGI stays the way to start and end a response,
and a server without the extension is served through plain ASGI sends.

It also bounds each request head (WebSocket handshakes included, which pass here before the
upgrade) as the parser hands it over: llhttp and httptools set no limit, so an 8 MB header was
read whole, and 100 MB of short header lines grew the process by a gigabyte, before any auth.
And it bounds the connections: their number, and the time each may take to send a head (uvicorn
would hold a silent one forever, and its ``limit_concurrency`` answers only once a head is read).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from websockets.http11 import MAX_LINE_LENGTH

from server.config import ServerConfig
from server.edge.guard import EdgeGuard

BODY_EXTENSION = "tokenwire.body"
HEADER_FRAMING = len(": \r\n")  # what a header line adds to its name and value
# The longest URL and header line: websockets' own bound on a handshake's lines, met here first
# (answered and reported by the edge) and kept for every request, as common servers do.
MAX_HEADER_LINE = MAX_LINE_LENGTH
MAX_URL = MAX_LINE_LENGTH - len(b"GET  HTTP/1.1\r\n")


class ChunkedBodyWriter:
    """A ``DirectWriter`` (server.fastpath.writer) of the chunks of a response that was started
    through ASGI with chunked transfer encoding.

    It holds the request's cycle weakly: the cycle holds the scope, which holds this writer."""

    __slots__ = ("_cycle",)

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self._cycle = weakref.ref(cycle)

    def can_write_now(self) -> bool:
        """Started, chunked, not finished, the client there, and the transport below its
        high-water mark (above it, ASGI's send waits for the drain)."""
        cycle = self._cycle()
        return (
            cycle is not None
            and cycle.response_started
            and cycle.chunked_encoding is True
            and not cycle.response_complete
            and not cycle.disconnected
            and not cycle.flow.write_paused
        )

    def write(self, payloads: list[bytes]) -> None:
        """The payloads in one chunk; only when ``can_write_now()``. The response still ends
        through ASGI."""
        cycle = self._cycle()
        assert cycle is not None
        body = b"".join(payloads)
        if body:  # an empty chunk would end the body
            cycle.transport.write(b"%x\r\n%b\r\n" % (len(body), body))


class HeadRefused(Exception):
    """Raised in a parser callback once the head is past its bounds: the parser stops there,
    and ``response`` is sent."""

    def __init__(self, response: bytes) -> None:
        super().__init__()
        self.response = response


def _response(status: bytes, body: bytes) -> bytes:
    """A complete response that closes the connection."""
    headers = b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    return b"HTTP/1.1 %b\r\n%bcontent-length: %d\r\n\r\n%b" % (status, headers, len(body), body)


HEAD_TOO_LARGE = _response(b"431 Request Header Fields Too Large", b"request head too large\n")
URI_TOO_LONG = _response(b"414 URI Too Long", b"request target too long\n")
TOO_MANY_CONNECTIONS = _response(b"503 Service Unavailable", b"too many open connections\n")


class BodyWritingHttpProtocol(HttpToolsProtocol):
    """``uvicorn.Config(http=BodyWritingHttpProtocol)``, bound to a server's ``edge`` by
    server.fastpath.probe: the stock httptools
    protocol, plus a ``DirectWriter`` per request and the bounds of ``edge``. It also lets go of
    its parser (which refers back to it) once it has handed its socket to a WebSocket protocol;
    uvicorn does so only when the connection is lost, which this one never sees, so the pair
    would wait for a full garbage collection."""

    edge: ClassVar[EdgeGuard] = EdgeGuard(ServerConfig())  # a server's own: see probe.server_protocols

    # The request head being read: its bytes (URL, headers) and header lines so far, as the
    # parser hands them over, and the bytes of the reads that fell wholly inside it (None during
    # the read it began in), which bound the header the parser is still gathering.
    _head_open = False
    _head_bytes = 0
    _head_lines = 0
    _head_reads: int | None = None
    # Closes the connection unless a head is complete by ``_head_deadline`` (set when the
    # connection opens and when a later request's first byte comes; None once the head is in).
    # One timer, re-armed lazily, as the stream's watchdog: a kept-alive connection's requests
    # only move the deadline, and cost no timer of their own.
    _head_deadline: float | None = None
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # counted in self.connections (which holds this one)
        if len(self.connections) > self.edge.config.max_open_connections:
            self._close("too_many_connections", TOO_MANY_CONNECTIONS)
        else:
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._head_deadline = deadline = self.loop.time() + self.edge.config.head_timeout_seconds
        if self._head_timer is None:
            self._head_timer = self.loop.call_at(deadline, self._check_head)

    def _head_received(self) -> None:
        self._head_deadline = None  # the timer, if any, finds nothing to do

    def _check_head(self) -> None:
        deadline = self._head_deadline
        if deadline is None:
            self._head_timer = None
        elif self.loop.time() >= deadline:
            self._head_timer = None
            self._close("head_timeout", b"")
        else:  # a later request moved the deadline
            self._head_timer = self.loop.call_at(deadline, self._check_head)

    def _stop_head_timer(self) -> None:
        self._head_deadline = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _close(self, reason: str, response: bytes) -> None:
        """Close the connection for ``reason`` (server.edge.guard.REASONS) after ``response``."""
        self._stop_head_timer()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()
            self.edge.closed(reason, self.client)

    def data_received(self, data: bytes) -> None:
        """uvicorn's, but a head past its bounds is answered 431, not taken for a malformed
        request (400), and checked again once the parser has taken the read."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, HeadRefused):
                self._close("head_too_large", exc.__context__.response)
                return
            self._bad_request()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._head_open:
            reads = self._head_reads
            self._head_reads = 0 if reads is None else reads + len(data)
            if self._head_reads > self.edge.config.max_head_bytes:
                self._close("head_too_large", HEAD_TOO_LARGE)

    def _bad_request(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open = True
        self._head_bytes = self._head_lines = 0
        self._head_reads = None
        if self._head_deadline is None:  # a later request on a kept-alive connection
            self._await_head()

    def on_url(self, url: bytes) -> None:  # called with each part of the URL a read holds
        self._head_bytes += len(url)
        if self._head_bytes > self.edge.config.max_head_bytes:
            raise HeadRefused(HEAD_TOO_LARGE)
        super().on_url(url)
        if len(self.url) > MAX_URL:
            raise HeadRefused(URI_TOO_LONG)

    def on_header(self, name: bytes, value: bytes) -> None:
        # Once per header line of every request: the bounds inline, not in a helper.
        line = len(name) + len(value) + HEADER_FRAMING
        self._head_bytes += line
        self._head_lines += 1
        config = self.edge.config
        if (
            line > MAX_HEADER_LINE
            or self._head_bytes > config.max_head_bytes
            or self._head_lines > config.max_head_lines
        ):
            raise HeadRefused(HEAD_TOO_LARGE)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._head_received()
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:  # a request to answer, not an upgrade
            extensions = self.scope.setdefault("extensions", {})
            extensions[BODY_EXTENSION] = ChunkedBodyWriter(cycle)  # type: ignore[assignment]  # ASGI types values as dicts

    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        self.parser = None  # type: ignore[assignment]  # no request is parsed here any more
        self._stop_head_timer()  # it would hold this protocol until it fired
