"""``GET /v1/ws``: protocol v1 over one WebSocket, many streams multiplexed by id.

This coroutine reads client frames and answers them; what goes out, replies and the streams'
events alike, goes through the connection's one outbox (server.transports.outbox), which writes
frames straight to the transport once per event-loop iteration (server.fastpath.ws_protocol),
or through ASGI sends when the socket is busy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from starlette.types import Receive, Scope, Send

import server
from protocol.codec import BadMessage, decode_client_message, encode
from protocol.errors import ErrorCode
from protocol.messages import (
    PROTOCOL_VERSION,
    Cancel,
    ClientMessage,
    Error,
    Limits,
    Ping,
    Pong,
    Ready,
    Resume,
    ServerInfo,
    ServerMessage,
    StartRequest,
    StreamRequest,
)
from server.edge.log_filter import refusing_handshake
from server.edge.ratelimit import TokenBucket
from server.fastpath.writer import DirectWriter
from server.fastpath.ws_protocol import FRAMES_EXTENSION
from server.hub import StreamHub
from server.stores.base import Source
from server.streams.eventlog import Subscription
from server.streams.resolve import Refusal
from server.transports.outbox import Outbox, outbox_bound

log = logging.getLogger("tokenwire.ws")

ENDED_IDS_KEPT = 1024  # ended ids remembered per connection, so a late cancel is a no-op


class Connection:
    """One socket, spoken to in raw ASGI messages: the per-chunk send path is the hottest code
    in the gateway, and Starlette's WebSocket wrapper adds calls and state checks to it."""

    __slots__ = (
        "_close_task",
        "_closing",
        "_loop",
        "_opening",
        "_outbox",
        "_receive",
        "_send",
        "_starts",
        "active",
        "ended_ids",
        "hub",
        "task",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send, hub: StreamHub) -> None:
        frames: DirectWriter | None = scope.get("extensions", {}).get(FRAMES_EXTENSION)
        self._receive = receive
        self._send = send
        self.hub = hub
        self.active: dict[str, tuple[Source, Subscription]] = {}
        self._opening: dict[str, asyncio.Task[None]] = {}  # by id: starts waiting for admission
        self.ended_ids: OrderedDict[str, None] = OrderedDict()
        streaming = hub.config.streaming
        self._outbox = Outbox(
            self,
            encode=encode,
            direct=frames,  # the synchronous write path, when the server offers it
            slow_client_seconds=streaming.slow_client_timeout_seconds,
            bound=outbox_bound(hub.config),
            events=self._events_of(),
        )
        self._loop = asyncio.get_running_loop()
        self._starts = TokenBucket(streaming.starts_per_second, streaming.starts_burst, self._loop.time())
        self._closing = (1000, "")  # the close frame sent once the outbox is empty
        self._close_task: asyncio.Task[None] | None = None  # the close frame to a dropped client
        self.task: asyncio.Task[Any] | None = None  # the one serving this socket

    async def serve(self) -> None:
        self.task = asyncio.current_task()
        if (await self._receive())["type"] != "websocket.connect":
            return
        await self._accept()
        try:
            await self._receive_loop()
        finally:
            if self._opening:  # starts still being admitted: their streams are this client's too
                await asyncio.wait(self._opening.values())
            self._outbox.abandon()
            self._detach_streams()
            # Each subscription holds this connection's callback: let go of them, or the pair
            # would be a reference cycle waiting for a full collection (tests/server/test_cycles.py).
            self.active.clear()

    async def _accept(self) -> None:
        await self._send({"type": "websocket.accept"})
        self._send_direct(self._ready_message())

    def _events_of(self) -> Callable[[Subscription], Iterable[bytes]] | None:
        """How the outbox encodes a subscription's events (None: one protocol v1 message each)."""
        return None

    def close(self, code: int, reason: str) -> None:
        """Send what is queued, then close the socket (e.g. on shutdown, once streams ended)."""
        self._closing = (code, reason)
        self._outbox.close()

    def _detach_streams(self) -> None:
        """The client is gone: its streams wait for a resume (server.hub.StreamHub.detached)."""
        for source, subscription in self.active.values():
            source.log.unsubscribe(subscription)
            self.hub.detached(source)

    def _cancel_streams(self) -> None:
        for source, subscription in self.active.values():
            source.log.unsubscribe(subscription)
            source.cancel()

    # ---- inbound ---------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        while True:
            frame = await self._receive()
            if frame["type"] == "websocket.disconnect":
                return
            data = frame.get("text")
            if data is None:
                data = frame.get("bytes") or b""
            await self._handle_frame(data)
            if self._outbox.full:  # a client that sends but does not read: read no more of it
                self.hub.metrics.reads_paused.inc()
                await self._outbox.room()

    async def _handle_frame(self, data: str | bytes) -> None:
        await self._handle(decode_client_message(data))

    async def _handle(self, message: ClientMessage | BadMessage) -> None:
        opening = self._opening.get(getattr(message, "id", None) or "")
        if opening is not None:  # what names a stream is answered after that stream's start
            await asyncio.wait((opening,))
        if type(message) is StartRequest:
            await self._start(message.id, message)
        elif type(message) is Cancel:
            if message.id is not None:
                self._cancel(message.id)
            else:
                await self._cancel_key(message.key)  # type: ignore[arg-type]  # one of the two is set
        elif type(message) is Resume:
            await self._resume(message)
        elif type(message) is Ping:
            ts = message.ts if message.ts is not None else int(time.time() * 1000)
            self._send_direct(Pong(ts=ts))
        elif type(message) is BadMessage:
            self._refuse(message.id, ErrorCode.BAD_MESSAGE, message.message)

    def _admissible(self, sid: str) -> bool:
        """Whether one more stream may be read under ``sid`` here (else the refusal is sent)."""
        if sid in self.active or sid in self._opening:
            self._refuse(
                sid, ErrorCode.DUPLICATE_STREAM, f"stream `{sid}` is already running on this connection"
            )
            return False
        limit = self.hub.config.streaming.max_streams_per_connection
        if len(self.active) + len(self._opening) >= limit:
            self._refuse(
                sid, ErrorCode.TOO_MANY_STREAMS, f"at most {limit} streams may run on one connection"
            )
            return False
        return True

    async def _start(self, sid: str, request: StreamRequest) -> None:
        if not self._admissible(sid):
            return
        wait = self._starts.take(self._loop.time())
        if wait:
            self.hub.refused(ErrorCode.RATE_LIMITED)
            self._send_direct(self._rate_limited(sid, wait))
            return
        if not self.hub.store.remote:  # admitted at once: in order, with no task on the start path
            await self._open(sid, request)
            return
        # Admission may wait on Redis (up to `[resume] redis_timeout_seconds`): in a task of its
        # own, so that the socket's other messages are not held behind it.
        self._opening[sid] = self._loop.create_task(self._open(sid, request))
        await asyncio.sleep(0)  # one that needs no round trip ends here, in order

    async def _open(self, sid: str, request: StreamRequest) -> None:
        try:
            stream = await self.hub.open(sid, request)
        finally:
            self._opening.pop(sid, None)
        if isinstance(stream, Refusal):
            self.hub.refused(stream.code)
            self._send_direct(stream.to_error(sid))
            return
        self.ended_ids.pop(sid, None)
        self.active[sid] = (stream, stream.log.subscribe(sid, self._outbox.notify))

    def _cancel(self, sid: str) -> None:
        entry = self.active.get(sid)
        if entry is not None:
            entry[0].cancel()
        elif sid not in self.ended_ids:
            self._refuse(sid, ErrorCode.UNKNOWN_STREAM, f"no stream `{sid}` on this connection")

    def _rate_limited(self, sid: str, wait: float) -> Error:
        rate = self.hub.config.streaming.starts_per_second
        message = f"more than {rate:g} starts a second on this connection; slow down"
        return Error(
            id=sid, code=ErrorCode.RATE_LIMITED, message=message, retryable=True, retry_after_s=round(wait, 3)
        )

    async def _resume(self, message: Resume) -> None:
        source, refusal = await self.hub.find_resumable(message.key, message.after_seq)
        sid = message.id or (source.id if source is not None else None)
        if refusal is not None:
            self._refuse(sid, refusal.code, refusal.message)
            return
        assert source is not None  # found, when nothing refused it
        assert sid is not None
        if self._admissible(sid):
            self.ended_ids.pop(sid, None)
            subscription = source.log.subscribe(sid, self._outbox.notify, message.after_seq)
            self.active[sid] = (source, subscription)

    async def _cancel_key(self, key: str) -> None:
        if not await self.hub.cancel_key(key):
            self._refuse(None, ErrorCode.UNKNOWN_STREAM, "no stream with this key")

    def _refuse(self, sid: str | None, code: ErrorCode, message: str) -> None:
        self.hub.refused(code)
        self._send_direct(Refusal(code, message).to_error(sid))

    # ---- outbound --------------------------------------------------------------------------

    def _send_direct(self, message: ServerMessage) -> None:
        self._outbox.put(encode(message))

    # ---- server.transports.outbox.Owner ------------------------------------------------------

    async def send_payloads(self, payloads: list[bytes]) -> None:
        for payload in payloads:
            await self._send({"type": "websocket.send", "text": payload.decode()})

    async def end_output(self) -> None:
        code, reason = self._closing
        await self._send({"type": "websocket.close", "code": code, "reason": reason})

    def stalled(self) -> None:
        """Stop the streams upstream at once; the close frame goes out behind the unread data (the
        WebSocket library aborts the TCP connection when even that cannot be written)."""
        limit = self.hub.config.streaming.slow_client_timeout_seconds
        log.warning("closing a WebSocket whose client has not read for %g s", limit)
        self._cancel_streams()
        self.active.clear()
        self._closing = (1008, "client stopped reading")
        self._close_task = self._loop.create_task(self.end_output())

    def finished(self, subscription: Subscription) -> None:
        sid = subscription.stream_id
        entry = self.active.get(sid)
        if entry is not None and entry[1] is subscription:
            del self.active[sid]
            entry[0].log.unsubscribe(subscription)
            self.ended_ids[sid] = None
            if len(self.ended_ids) > ENDED_IDS_KEPT:
                self.ended_ids.popitem(last=False)

    def _ready_message(self) -> Ready:
        config = self.hub.config
        return Ready(
            protocol=PROTOCOL_VERSION,
            server=ServerInfo(name="tokenwire", version=server.__version__),
            providers=self.hub.registry.infos(),
            limits=Limits(
                max_streams=config.streaming.max_streams_per_connection,
                max_message_bytes=config.server.max_message_bytes,
            ),
        )


class WebSocketEndpoint:
    """The ASGI app of the WebSocket routes: one connection per socket, of the class its path
    names in ``routes``, at most ``max_connections`` of them in all."""

    def __init__(self, hub: StreamHub, routes: Mapping[str, type[Connection]]) -> None:
        self.hub = hub
        self.routes = routes
        self.connections: set[Connection] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if len(self.connections) >= self.hub.config.server.max_connections:
            await receive()  # websocket.connect
            with refusing_handshake(1013, "too many connections"):  # logged as refused, not accepted
                await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1013, "reason": "too many connections"})
            return
        connection = self.routes[scope["path"]](scope, receive, send, self.hub)
        self.connections.add(connection)
        try:
            await connection.serve()
        finally:
            self.connections.discard(connection)

    async def close_all(self, code: int, reason: str, timeout: float) -> None:
        """Close every socket once what is queued for it is sent; wait up to ``timeout`` seconds."""
        for connection in self.connections:
            connection.close(code, reason)
        served = [c.task for c in self.connections if c.task is not None]
        if served:
            await asyncio.wait(served, timeout=timeout)
