"""HTTP routes: the SSE fallback, non-streaming completions, the original application's routes.

A problem found before streaming starts is an HTTP status with ``{"error": {...}}``; after that,
problems arrive as ``error`` events of the stream.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from protocol.codec import UNREADABLE, BadMessage, decode_http_request, describe, request_problem
from protocol.errors import HTTP_STATUS, RETRYABLE, ErrorCode
from protocol.messages import Done, Error, StreamRequest
from protocol.original_app import AgentChatBody, ScriptEventEncoder, ScriptStreamBody, agent_chat_event
from protocol.sse import v1_event
from server.stores.base import Source
from server.streams.resolve import Refusal
from server.streams.runner import Stream
from server.transports.asgi import hub_of, listen_for_disconnect
from server.transports.sse import EventEncoder, EventStreamResponse

T = TypeVar("T")


class HttpProblem(Exception):
    """Answered as an HTTP error before any stream starts."""

    def __init__(self, code: ErrorCode, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status or HTTP_STATUS[code]
        self.retryable = code in RETRYABLE


def error_response(error: Error | HttpProblem) -> JSONResponse:
    body: dict[str, object] = {
        "code": error.code.value,
        "message": error.message,
        "retryable": error.retryable,
    }
    headers = {}
    if isinstance(error, Error) and error.retry_after_s is not None:
        body["retry_after_s"] = error.retry_after_s
        headers["retry-after"] = str(max(1, round(error.retry_after_s)))
    status = error.status if isinstance(error, HttpProblem) else HTTP_STATUS[error.code]
    return JSONResponse({"error": body}, status_code=status, headers=headers)


async def read_body(request: Request) -> bytes:
    limit = hub_of(request).config.server.max_message_bytes
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise HttpProblem(ErrorCode.BAD_MESSAGE, f"request body exceeds {limit} bytes", status=413)
    return bytes(body)


async def decode_body(request: Request, body_type: type[T]) -> T:
    try:
        return msgspec.json.decode(await read_body(request), type=body_type)
    except UNREADABLE as exc:
        raise HttpProblem(ErrorCode.BAD_MESSAGE, describe(exc)) from None


async def _stream_request(request: Request) -> StreamRequest:
    decoded = decode_http_request(await read_body(request))
    if isinstance(decoded, BadMessage):
        raise HttpProblem(ErrorCode.BAD_MESSAGE, decoded.message)
    return decoded


def checked_request(stream_request: StreamRequest) -> StreamRequest:
    """A request the original application's routes built, checked as a decoded one is."""
    problem = request_problem(stream_request)
    if problem is not None:
        raise HttpProblem(ErrorCode.BAD_MESSAGE, problem)
    return stream_request


async def open_stream(request: Request, stream_request: StreamRequest) -> Stream:
    """A checked request (from ``_stream_request`` or ``checked_request``) as a running stream."""
    stream = await hub_of(request).open_http(stream_request)
    if isinstance(stream, Refusal):
        raise HttpProblem(stream.code, stream.message)
    return stream


def _sse(request: Request, stream: Stream, encoder: EventEncoder) -> EventStreamResponse:
    """The original application's routes: no key reaches their clients, so leaving cancels."""
    s = hub_of(request).config.streaming
    return EventStreamResponse(
        stream, encoder, s.keepalive_seconds, slow_client_seconds=s.slow_client_timeout_seconds
    )


def _resumable_sse(request: Request, source: Source, after_seq: int = -1) -> EventStreamResponse:
    """Protocol v1 events; a client that goes away may resume by the stream's key."""
    hub = hub_of(request)
    s = hub.config.streaming
    return EventStreamResponse(
        source,
        v1_event,
        s.keepalive_seconds,
        after_seq=after_seq,
        on_gone=hub.detached,
        slow_client_seconds=s.slow_client_timeout_seconds,
    )


# ---- protocol v1 routes ----------------------------------------------------------------------


async def post_stream(request: Request) -> EventStreamResponse:
    return _resumable_sse(request, await open_stream(request, await _stream_request(request)))


async def get_stream(request: Request) -> EventStreamResponse:
    """Resume: the events after ``Last-Event-ID`` (or ``?after=``), then the live rest."""
    after = _after_seq(request)
    source, refusal = await hub_of(request).find_resumable(request.path_params["key"], after)
    if refusal is not None:
        raise HttpProblem(refusal.code, refusal.message)
    assert source is not None  # found, when nothing refused it
    return _resumable_sse(request, source, after)


def _after_seq(request: Request) -> int:
    given = request.headers.get("last-event-id") or request.query_params.get("after") or "-1"
    try:
        after = int(given)
    except ValueError:
        raise HttpProblem(
            ErrorCode.BAD_MESSAGE, f"`Last-Event-ID`/`after` must be a seq, not {given!r}"
        ) from None
    if after < -1:
        raise HttpProblem(ErrorCode.BAD_MESSAGE, "`Last-Event-ID`/`after` must be -1 or more")
    return after


async def delete_stream(request: Request) -> Response:
    if not await hub_of(request).cancel_key(request.path_params["key"]):
        raise HttpProblem(ErrorCode.UNKNOWN_STREAM, "no stream with this key")
    return Response(status_code=204)


class CompletionResponse:
    """``POST /v1/completions``: the stream's terminal event as one JSON document."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.create_task(_cancel_on_disconnect(receive, self.stream))
        try:
            await self.stream.wait()
        finally:
            watcher.cancel()
        terminal = self.stream.log.entries[-1]
        assert isinstance(terminal, Done | Error)
        response = _completion_json(terminal) if isinstance(terminal, Done) else error_response(terminal)
        await response(scope, receive, send)


def _completion_json(done: Done) -> JSONResponse:
    """The fields of ``done``, without what only a stream has (``type``, ``seq``)."""
    fields = msgspec.to_builtins(done)
    del fields["type"], fields["seq"]
    return JSONResponse(fields)


async def _cancel_on_disconnect(receive: Receive, stream: Stream) -> None:
    await listen_for_disconnect(receive)
    stream.cancel()


async def post_completion(request: Request) -> CompletionResponse:
    return CompletionResponse(await open_stream(request, await _stream_request(request)))


# ---- the original application's routes -------------------------------------------------------


async def post_script_stream(request: Request) -> EventStreamResponse:
    body = await decode_body(request, ScriptStreamBody)
    return _sse(request, await open_stream(request, checked_request(body.to_request())), ScriptEventEncoder())


async def post_agent_chat(request: Request) -> EventStreamResponse:
    body = await decode_body(request, AgentChatBody)
    if not body.prompt.strip():
        raise HttpProblem(ErrorCode.BAD_MESSAGE, "`prompt` is empty - at `$.prompt`")
    stream = await open_stream(request, checked_request(body.to_request(request.path_params["agent_id"])))
    return _sse(request, stream, agent_chat_event)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok", "active_streams": len(hub_of(request).running)})
