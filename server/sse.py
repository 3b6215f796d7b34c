"""An ASGI response that serves one stream's log as Server-Sent Events.

It watches for the client going away while it waits (not only when it writes), so a vanished
client is noticed at once (its stream is cancelled, or waits for a resume); a comment line keeps
idle connections open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import Receive, Scope, Send

from protocol.messages import ServerMessage
from protocol.sse import KEEPALIVE
from server.resume import Source

EventEncoder = Callable[[ServerMessage], bytes]

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # tell reverse proxies not to buffer the stream
]


class EventStreamResponse:
    """``on_gone`` is called when the client goes away before the end (default: cancel the
    stream); ``after_seq`` starts the events after that seq (a resume)."""

    def __init__(
        self,
        stream: Source,
        encoder: EventEncoder,
        keepalive_seconds: float,
        *,
        after_seq: int = -1,
        on_gone: Callable[[Source], None] | None = None,
    ) -> None:
        self.stream = stream
        self.encoder = encoder
        self.keepalive = keepalive_seconds
        self.after_seq = after_seq
        self.on_gone = on_gone or (lambda source: source.cancel())
        self._wake = asyncio.Event()
        self._gone = False
        self._sent = False  # something was written since the last keep-alive tick
        self._keepalive_due = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.create_task(self._watch_disconnect(receive))
        subscription = self.stream.log.subscribe(self.stream.id, lambda _: self._wake.set(), self.after_seq)
        self._ticker = asyncio.get_running_loop().call_later(self.keepalive, self._tick)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            while not self._gone:
                body = await self._next_body(subscription.take)
                if body:
                    self._sent = True
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                if subscription.finished:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
        except OSError:
            pass  # the client went away mid-write
        finally:
            self.stream.log.unsubscribe(subscription)
            if not self.stream.ended:
                self.on_gone(self.stream)
            watcher.cancel()
            self._ticker.cancel()

    async def _next_body(self, take: Callable[[], list[ServerMessage]]) -> bytes:
        await self._wake.wait()
        self._wake.clear()
        body = b"".join(map(self.encoder, take()))
        if not body and self._keepalive_due:
            body = KEEPALIVE
        self._keepalive_due = False
        return body

    def _tick(self) -> None:
        # One timer per response, not one per chunk: a comment goes out only after a quiet interval.
        if not self._sent:
            self._keepalive_due = True
            self._wake.set()
        self._sent = False
        self._ticker = asyncio.get_running_loop().call_later(self.keepalive, self._tick)

    async def _watch_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._gone = True
        self._wake.set()  # the loop ends, and `on_gone` decides the stream's fate
