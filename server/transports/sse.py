"""An ASGI response that serves one stream's log as Server-Sent Events.

It watches for the client going away while it waits (not only when it writes), so a vanished
client is noticed at once (its stream is cancelled, or waits for a resume); a comment line keeps
idle connections open. Events go out through the response's outbox
(server.transports.outbox): from the event log's callback, all those of one event-loop iteration
in one chunk, under the gateway's HTTP protocol (server.fastpath.http_protocol); otherwise, and
to end the response, through ASGI sends from the response's own task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from starlette.types import Receive, Scope, Send

from protocol.messages import ServerMessage
from protocol.sse import KEEPALIVE
from server.fastpath.http_protocol import BODY_EXTENSION
from server.stores.base import Source
from server.streams.eventlog import Subscription
from server.transports.asgi import listen_for_disconnect
from server.transports.outbox import Outbox, Phase

EventEncoder = Callable[[ServerMessage], bytes]
log = logging.getLogger("tokenwire.sse")

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # tell reverse proxies not to buffer the stream
]


class EventStreamResponse:
    """``on_gone`` is called when the client goes away before the end (default: cancel the
    stream); ``after_seq`` starts the events after that seq (a resume). A client that takes no
    data for ``slow_client_seconds`` is dropped and the stream cancelled; ``headers`` replace
    the default response headers, and ``keepalive_event`` the comment sent when idle."""

    def __init__(
        self,
        stream: Source,
        encoder: EventEncoder,
        keepalive_seconds: float,
        *,
        after_seq: int = -1,
        on_gone: Callable[[Source], None] | None = None,
        slow_client_seconds: float = 30.0,
        headers: list[tuple[bytes, bytes]] = HEADERS,
        keepalive_event: bytes = KEEPALIVE,
    ) -> None:
        self.stream = stream
        self.encoder = encoder
        self.keepalive = keepalive_seconds
        self.after_seq = after_seq
        self.on_gone = on_gone or (lambda source: source.cancel())
        self.slow_client_seconds = slow_client_seconds
        self.headers = headers
        self.keepalive_event = keepalive_event  # a comment, or an API's own ping event
        self._send: Send | None = None
        self._outbox: Outbox | None = None
        self._writes_at_tick = 0  # the outbox's write count at the last keep-alive tick
        self._ticker: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._send = send
        outbox = self._outbox = Outbox(
            self,
            encode=self.encoder,
            direct=scope.get("extensions", {}).get(BODY_EXTENSION),
            slow_client_seconds=self.slow_client_seconds,
            owner_pumps=True,
        )
        loop = asyncio.get_running_loop()
        watcher = loop.create_task(self._watch_disconnect(receive))
        subscription = self.stream.log.subscribe(self.stream.id, outbox.notify, self.after_seq)
        self._ticker = loop.call_later(self.keepalive, self._tick)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            await outbox.pump()
        except OSError:
            pass  # the client went away mid-write
        finally:
            self.stream.log.unsubscribe(subscription)
            outbox.abandon()
            if not self.stream.ended:
                self.stream.cancel() if outbox.phase is Phase.DROPPED else self.on_gone(self.stream)
            watcher.cancel()
            self._ticker.cancel()

    # ---- server.transports.outbox.Owner ------------------------------------------------------

    async def send_payloads(self, payloads: list[bytes]) -> None:
        assert self._send is not None
        await self._send({"type": "http.response.body", "body": b"".join(payloads), "more_body": True})

    async def end_output(self) -> None:
        assert self._send is not None
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    def finished(self, _: Subscription) -> None:
        assert self._outbox is not None
        self._outbox.close()  # the response ends once the terminal event is out

    def stalled(self) -> None:
        log.warning("dropping an event stream whose client has not read for %g s", self.slow_client_seconds)

    def _tick(self) -> None:
        # One timer per response, not one per chunk: a comment goes out only after a quiet interval.
        outbox = self._outbox
        assert outbox is not None  # the ticker is cancelled with it
        if outbox.writes == self._writes_at_tick:
            outbox.put(self.keepalive_event)
        self._writes_at_tick = outbox.writes
        self._ticker = asyncio.get_running_loop().call_later(self.keepalive, self._tick)

    async def _watch_disconnect(self, receive: Receive) -> None:
        await listen_for_disconnect(receive)
        if self._outbox is not None:
            self._outbox.abandon()  # the pump ends, and `on_gone` decides the stream's fate
