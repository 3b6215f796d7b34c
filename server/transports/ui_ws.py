"""``GET /v1/ui/ws``: the server of the AI SDK's ``WebSocketChatTransport``.

The same connection as ``/v1/ws`` (server.transports.ws: one outbox, slow-client handling,
per-connection stream limit, start rate limit, admission, shutdown), speaking the SDK's frames:

- in: ``send`` (a chat request: ``id``, ``messages``, ``trigger``, ``messageId``, and ``body``
  whose fields use the v1 ``start`` names), ``resume`` (the chat's active stream, replayed from
  its first part) and ``abort`` (cancel upstream now);
- out: ``chunk`` (a UI message chunk, ``sequence`` gap-free from 0 per request), ``end`` after
  the ``finish`` or ``error`` chunk, ``start`` answering a resume, ``no-active`` when the chat
  has no stream, and ``error`` (``"<code>: <message>"``) for a refusal.

The client fails every request on the socket at a frame without a string ``requestId``, a
sequence gap or an unknown type for a live request, so nothing here sends one: a frame whose
``requestId`` cannot be read is dropped unanswered.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from starlette.types import Receive, Scope, Send

from protocol.codec import UNREADABLE, describe, request_problem
from protocol.errors import ErrorCode
from protocol.messages import Error, ServerMessage, StreamRequest
from protocol.ui_messages import ChatId, ChatRequest, MessageId, Unsupported, stream_request
from protocol.ui_stream import UIStreamEncoder
from server.hub import StreamHub
from server.streams.eventlog import Subscription
from server.transports.ws import Connection

log = logging.getLogger("tokenwire.ui_ws")

RequestId = Annotated[str, Meta(min_length=1, max_length=256)]
_json = msgspec.json.Encoder()
_decode = msgspec.json.Decoder()


class SendFrame(msgspec.Struct, tag="send", tag_field="type", kw_only=True, frozen=True):
    requestId: RequestId
    id: ChatId
    trigger: Literal["submit-message", "regenerate-message"]
    messageId: MessageId | None = None
    messages: Any  # read with the body's fields into a ChatRequest
    headers: dict[str, str] = {}  # the transport's `headers`: no meaning to the gateway
    body: dict[str, Any] = {}
    metadata: Any = None


class ResumeFrame(msgspec.Struct, tag="resume", tag_field="type", kw_only=True, frozen=True):
    requestId: RequestId
    id: ChatId
    headers: dict[str, str] = {}
    body: dict[str, Any] = {}
    lastSequence: Annotated[int, Meta(ge=0)] | None = None  # the SDK never sets it: always a full replay


class AbortFrame(msgspec.Struct, tag="abort", tag_field="type", kw_only=True, frozen=True):
    requestId: RequestId


Frame = SendFrame | ResumeFrame | AbortFrame


class _Reader:
    """One request's encoding: its UI chunk encoder and the next sequence number."""

    __slots__ = ("chat_id", "encoder", "prefix", "sequence")

    def __init__(self, request_id: str, chat_id: str, message_id: str) -> None:
        self.chat_id = chat_id
        self.encoder = UIStreamEncoder(message_id)
        self.prefix = b'{"type":"chunk","requestId":' + _json.encode(request_id) + b',"sequence":'
        self.sequence = 0

    def frames(self, messages: list[ServerMessage], request_id: str) -> list[bytes]:
        out: list[bytes] = []
        encoder = self.encoder
        for message in messages:
            for chunk in encoder.chunks(message):
                out.append(b'%s%d,"chunk":%s}' % (self.prefix, self.sequence, _json.encode(chunk)))
                self.sequence += 1
        if encoder.ended and messages:
            out.append(_frame("end", request_id))
        return out


def _frame(kind: str, request_id: str, **fields: Any) -> bytes:
    return _json.encode({"type": kind, "requestId": request_id, **fields})


class UIConnection(Connection):
    __slots__ = ("_readers", "_subprotocol")

    def __init__(self, scope: Scope, receive: Receive, send: Send, hub: StreamHub) -> None:
        self._readers: dict[str, _Reader] = {}  # by request id: every request being answered
        super().__init__(scope, receive, send, hub)
        offered = scope.get("subprotocols") or []
        # A browser fails the connection when it offered subprotocols and none was selected.
        self._subprotocol: str | None = offered[0] if offered else None

    async def _accept(self) -> None:
        accept: dict[str, Any] = {"type": "websocket.accept"}
        if self._subprotocol is not None:
            accept["subprotocol"] = self._subprotocol
        await self._send(accept)

    def _events_of(self) -> Callable[[Subscription], Iterable[bytes]]:
        return self._events

    def _events(self, subscription: Subscription) -> list[bytes]:
        request_id = subscription.stream_id
        reader = self._readers.get(request_id)
        messages = subscription.take()
        return [] if reader is None else reader.frames(messages, request_id)

    def finished(self, subscription: Subscription) -> None:
        super().finished(subscription)
        if subscription.stream_id not in self.active:
            self._readers.pop(subscription.stream_id, None)

    # ---- inbound ---------------------------------------------------------------------------

    async def _handle_frame(self, data: str | bytes) -> None:
        limit = self.hub.config.server.max_message_bytes
        try:
            value = _decode.decode(data) if len(data) <= limit else None
        except UNREADABLE:
            value = None
        request_id = value.get("requestId") if isinstance(value, dict) else None
        if not isinstance(request_id, str) or not 0 < len(request_id) <= 256:
            log.debug("dropped a frame with no readable requestId")  # any answer would be fatal
            return
        opening = self._opening.get(request_id)
        if opening is not None:  # what names a request is answered after that request's start
            await opening
        try:
            frame = msgspec.convert(value, Frame)
        except msgspec.ValidationError as exc:
            self._refuse(request_id, ErrorCode.BAD_MESSAGE, describe(exc))
            return
        if type(frame) is SendFrame:
            await self._send_chat(frame)
        elif type(frame) is ResumeFrame:
            await self._resume_chat(frame)
        else:
            self._abort(frame.requestId)

    async def _send_chat(self, frame: SendFrame) -> None:
        request = self._stream_request(frame)
        if request is None:
            return
        message_id = frame.messageId or "msg_" + secrets.token_urlsafe(12)
        sid = frame.requestId
        if sid in self._readers:  # refused by _admissible: keep the running request's reader
            self._refuse_duplicate(sid)
            return
        self._readers[sid] = _Reader(sid, frame.id, message_id)
        await self._start(sid, request)

    def _stream_request(self, frame: SendFrame) -> StreamRequest | None:
        """The frame's chat request as a stream request, or None when refused (answered)."""
        fields = {**frame.body, "id": frame.id, "messages": frame.messages, "trigger": frame.trigger}
        if frame.messageId is not None:
            fields["messageId"] = frame.messageId
        try:
            request = stream_request(msgspec.convert(fields, ChatRequest))
        except msgspec.ValidationError as exc:
            self._refuse(frame.requestId, ErrorCode.BAD_MESSAGE, describe(exc))
            return None
        except Unsupported as exc:
            self._refuse(frame.requestId, ErrorCode.UNSUPPORTED_INPUT, str(exc))
            return None
        problem = request_problem(request)
        if problem is not None:
            self._refuse(frame.requestId, ErrorCode.BAD_MESSAGE, problem)
            return None
        return request

    async def _open(self, sid: str, request: StreamRequest) -> None:
        await super()._open(sid, request)
        entry = self.active.get(sid)
        reader = self._readers.get(sid)
        if entry is not None and reader is not None:
            await self.hub.store.bind_chat(reader.chat_id, entry[0].key, reader.encoder.message_id)

    async def _resume_chat(self, frame: ResumeFrame) -> None:
        sid = frame.requestId
        found = await self.hub.store.active_chat(frame.id)
        if found is None:
            self._outbox.put(_frame("no-active", sid))
            return
        if sid in self._readers:
            self._refuse_duplicate(sid)
            return
        if not self._admissible(sid):
            return
        source, message_id = found
        self._readers[sid] = _Reader(sid, frame.id, message_id)
        self._outbox.put(_frame("start", sid))  # ahead of the replay: one FIFO
        self.ended_ids.pop(sid, None)
        self.active[sid] = (source, source.log.subscribe(sid, self._outbox.notify))

    def _abort(self, sid: str) -> None:
        """Cancel upstream at once; the client has forgotten the request: send nothing more of it."""
        self._readers.pop(sid, None)  # its events are taken and dropped until its end
        entry = self.active.get(sid)
        if entry is not None:
            entry[0].cancel()

    def _refuse_duplicate(self, sid: str) -> None:
        message = f"request `{sid}` is already running on this connection"
        self.hub.refused(ErrorCode.DUPLICATE_STREAM)
        self._outbox.put(_frame("error", sid, errorText=f"{ErrorCode.DUPLICATE_STREAM.value}: {message}"))

    # ---- outbound --------------------------------------------------------------------------

    def _send_direct(self, message: ServerMessage) -> None:
        """Only refusals come here (the v1 connection's ``error``): the SDK's ``error`` frame."""
        if type(message) is not Error or message.id is None:
            return  # a reply without a request id would fail every request on the socket
        self._abort(message.id)  # the client fails the request at this frame
        self._outbox.put(_frame("error", message.id, errorText=f"{message.code.value}: {message.message}"))
