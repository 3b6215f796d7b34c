"""An ASGI response that serves one stream's log as Server-Sent Events.

It watches for the client going away while it waits (not only when it writes), so a vanished
client is noticed at once (its stream is cancelled, or waits for a resume); a comment line keeps
idle connections open. Under the gateway's HTTP protocol (server.fastpath.http_protocol) events are
written from the event log's callback, all those of one event-loop iteration in one chunk; the
response's task then only starts and ends the response, and writes when the transport is
full (through ASGI, which waits for it to drain) or the server has no such writer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from starlette.types import Receive, Scope, Send

from protocol.messages import ServerMessage
from protocol.sse import KEEPALIVE
from server.fastpath.http_protocol import BODY_EXTENSION, BodyWriter
from server.stores.base import Source
from server.streams.eventlog import Subscription

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
    data for ``slow_client_seconds`` is dropped and the stream cancelled."""

    def __init__(
        self,
        stream: Source,
        encoder: EventEncoder,
        keepalive_seconds: float,
        *,
        after_seq: int = -1,
        on_gone: Callable[[Source], None] | None = None,
        slow_client_seconds: float = 30.0,
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
        self.slow_client_seconds = slow_client_seconds
        self._writing_since: float | None = None  # when the write in progress began
        self._dropped = False  # we gave up on a client that stopped reading
        self._writer: BodyWriter | None = None
        self._subscription: Subscription | None = None
        self._task_writing = False  # the task is between taking events and writing them
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the one __call__ runs on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._loop = loop = asyncio.get_running_loop()  # before subscribing: it may call back at once
        watcher = asyncio.create_task(self._watch_disconnect(receive))
        self._writer = scope.get("extensions", {}).get(BODY_EXTENSION)
        on_events = self._wake_task if self._writer is None else self._schedule_flush
        subscription = self.stream.log.subscribe(self.stream.id, on_events, self.after_seq)
        self._subscription = subscription
        self._ticker = loop.call_later(self.keepalive, self._tick)
        self._watchdog = loop.call_later(
            self.slow_client_seconds / 4, self._watch_writes, asyncio.current_task()
        )
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            while not self._gone:
                await self._wake.wait()
                self._wake.clear()
                self._task_writing = True  # a flush in the meantime would overtake these events
                try:
                    body = self._next_body()
                    if body:
                        await self._write(send, body)
                finally:
                    self._task_writing = False
                if subscription.finished:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
        except OSError:
            pass  # the client went away mid-write
        except asyncio.CancelledError:
            if not self._dropped:
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]  # ours: the server closes the connection
        finally:
            self.stream.log.unsubscribe(subscription)
            self._subscription = self._writer = None  # the subscription calls back into this
            if not self.stream.ended:
                self.stream.cancel() if self._dropped else self.on_gone(self.stream)
            watcher.cancel()
            self._ticker.cancel()
            self._watchdog.cancel()

    async def _write(self, send: Send, body: bytes) -> None:
        self._writing_since = asyncio.get_running_loop().time()  # a write that blocks: not reading
        await send({"type": "http.response.body", "body": body, "more_body": True})
        self._writing_since = None

    def _watch_writes(self, task: asyncio.Task[Any] | None) -> None:
        loop = asyncio.get_running_loop()
        since = self._writing_since
        if task is not None and since is not None and loop.time() - since >= self.slow_client_seconds:
            log.warning(
                "dropping an event stream whose client has not read for %g s", self.slow_client_seconds
            )
            self._dropped = True
            task.cancel()  # the write cannot finish: cancelling it is the only way out
        else:
            self._watchdog = loop.call_later(self.slow_client_seconds / 4, self._watch_writes, task)

    def _next_body(self) -> bytes:
        """The events not taken yet, encoded (a keep-alive comment when one is due instead)."""
        assert self._subscription is not None
        body = b"".join(map(self.encoder, self._subscription.take()))
        if not body and self._keepalive_due:
            body = KEEPALIVE
        self._keepalive_due = False
        if body:
            self._sent = True
        return body

    def _wake_task(self, _: Subscription) -> None:
        self._wake.set()

    def _schedule_flush(self, _: Subscription) -> None:
        """Write once the event loop has run what is ready now: the events of one iteration go
        out in one chunk."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            assert self._loop is not None  # subscribed in __call__, after the loop is known
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        writer, subscription = self._writer, self._subscription
        if writer is None or subscription is None or self._task_writing or not writer.can_write_now():
            self._wake.set()  # the task writes, in order, through ASGI (or sees the end)
            return
        body = self._next_body()
        if body:
            writer.write_chunk(body)
        if subscription.finished:
            self._wake.set()  # the task ends the response

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
