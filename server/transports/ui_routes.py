"""The AI SDK's ``DefaultChatTransport`` (``useChat`` over HTTP): ``POST /v1/ui/chat`` answers the
UI message stream over SSE; ``GET /v1/ui/chat/{chatId}/stream`` resumes the chat's active stream
(204 when none). Refusals before the stream are the JSON errors of ``POST /v1/streams``; a stop
is a dropped connection, so the stream waits ``resume_grace_seconds`` for a resume."""

from __future__ import annotations

import re
import secrets

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from protocol.errors import ErrorCode
from protocol.ui_messages import ChatRequest, Unsupported, stream_request
from protocol.ui_stream import UISSEEncoder
from server.stores.base import Source
from server.transports.asgi import hub_of
from server.transports.http_routes import HttpProblem, checked_request, decode_body, open_stream
from server.transports.sse import EventStreamResponse

HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-vercel-ai-ui-message-stream", b"v1"),
    (b"x-accel-buffering", b"no"),
]
_CHAT_ID = re.compile(r"\A[A-Za-z0-9._:-]{1,128}\Z")  # protocol.ui_messages.ChatId


async def post_chat(request: Request) -> EventStreamResponse:
    chat = await decode_body(request, ChatRequest)
    try:
        converted = stream_request(chat)
    except Unsupported as exc:
        raise HttpProblem(ErrorCode.UNSUPPORTED_INPUT, str(exc)) from None
    except msgspec.ValidationError as exc:
        raise HttpProblem(ErrorCode.BAD_MESSAGE, str(exc)) from None
    stream = await open_stream(request, checked_request(converted))
    # A continuation (a tool result's second turn) updates the message it continues.
    message_id = chat.messageId or "msg_" + secrets.token_urlsafe(16)
    await hub_of(request).store.bind_chat(chat.id, stream.key, message_id)
    return _ui_sse(request, stream, message_id)


async def get_chat_stream(request: Request) -> Response | EventStreamResponse:
    """The chat's running stream from its first part (the SDK replays), then live; 204: none."""
    chat_id = request.path_params["chat_id"]
    if not _CHAT_ID.match(chat_id):
        raise HttpProblem(ErrorCode.BAD_MESSAGE, "the chat id must be 1-128 of A-Z a-z 0-9 . _ : -")
    active = await hub_of(request).store.active_chat(chat_id)
    if active is None:
        return Response(status_code=204)
    source, message_id = active
    return _ui_sse(request, source, message_id)


def _ui_sse(request: Request, source: Source, message_id: str) -> EventStreamResponse:
    hub = hub_of(request)
    s = hub.config.streaming
    return EventStreamResponse(
        source,
        UISSEEncoder(message_id),
        s.keepalive_seconds,
        on_gone=hub.detached,
        slow_client_seconds=s.slow_client_timeout_seconds,
        headers=HEADERS,
    )
