"""uvicorn's httptools HTTP protocol with a synchronous write of response body chunks.

An event stream sends one body chunk per relayed event. Through ASGI each is a coroutine chain
(the middlewares' send wrappers, then uvicorn's send) and a wake-up of the response's task;
that made a Server-Sent Events chunk cost ~40 % more of the gateway's CPU than the same chunk
over a WebSocket, which writes its frames directly (server.fastpath.ws_protocol). This protocol puts a
``DirectWriter`` in each request's scope extensions (``BODY_EXTENSION``), so the event stream can
write its chunks from the event log's callback. ASGI stays the way to start and end a response,
and a server without the extension is served through plain ASGI sends.
"""

from __future__ import annotations

import weakref

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

BODY_EXTENSION = "tokenwire.body"


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


class BodyWritingHttpProtocol(HttpToolsProtocol):
    """``uvicorn.Config(http=BodyWritingHttpProtocol)``: the stock httptools protocol, plus a
    ``DirectWriter`` per request. It also lets go of its parser (which refers back to it) once it
    has handed its socket to a WebSocket protocol; uvicorn does so only when the connection is
    lost, which this one never sees, so the pair would wait for a full garbage collection."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:  # a request to answer, not an upgrade
            extensions = self.scope.setdefault("extensions", {})
            extensions[BODY_EXTENSION] = ChunkedBodyWriter(cycle)  # type: ignore[assignment]  # ASGI types values as dicts

    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        self.parser = None  # type: ignore[assignment]  # no request is parsed here any more
