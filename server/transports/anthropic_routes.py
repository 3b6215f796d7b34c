"""The Anthropic Messages API: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``, so
apps built on the official ``anthropic`` SDKs switch by changing ``base_url``.

A message is a gateway stream like any other; its events are encoded as Anthropic's
(``protocol.anthropic_wire.EventEncoder``) and served by the SSE fallback's
``EventStreamResponse``, with ``ping`` events while idle. ``model`` routes as in the
OpenAI-compatible API (``server.transports.openai_routes.route``); the stream is opened and
watched by the same helpers. Problems before the first event are HTTP errors in Anthropic's shape.
"""

from __future__ import annotations

import asyncio
import secrets

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from protocol.anthropic_wire import (
    PING,
    EventEncoder,
    MessagesRequest,
    Problem,
    counted_text,
    decode_messages_request,
    error_json,
    error_status,
    message_json,
    stream_request,
    token_count_json,
)
from protocol.errors import ErrorCode
from protocol.messages import Done, Error, StreamRequest
from providers.tokens import estimate_tokens
from server.hub import StreamHub
from server.streams.resolve import Refusal
from server.streams.runner import Stream
from server.transports.asgi import hub_of
from server.transports.http_routes import HttpProblem, read_body
from server.transports.openai_routes import ChatStream, route, watching


def anthropic_error(status: int, message: str, retry_after_s: float | None = None) -> Response:
    headers = {} if retry_after_s is None else {"retry-after": str(max(1, round(retry_after_s)))}
    return Response(error_json(status, message), status, headers, media_type="application/json")


def refusal_response(status: int, message: str) -> Response:
    """For ``server.edge.access``: its 401/403 refusals on these routes, in Anthropic's shape."""
    return anthropic_error(status, message)


REFUSALS = {"/v1/messages": refusal_response}


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _refused(hub: StreamHub, code: ErrorCode, message: str, status: int | None = None) -> Refused:
    hub.refused(code)  # counted like every other HTTP refusal
    return Refused(status or error_status(code), message)


def _model_not_found(hub: StreamHub, model: str) -> Refused:
    hub.refused(ErrorCode.UNKNOWN_PROVIDER)
    why = f"model: `{model}` names no provider, provider/model or agent (GET /v1/models lists them)"
    return Refused(404, why)


def _stream_error(error: Error) -> Response:
    return anthropic_error(error_status(error.code), error.message, error.retry_after_s)


async def _decode(request: Request, hub: StreamHub, counting: bool) -> tuple[MessagesRequest, StreamRequest]:
    try:
        body = await read_body(request)
    except HttpProblem as problem:  # too large: 413
        raise _refused(hub, problem.code, problem.message, problem.status) from None
    decoded = decode_messages_request(body, counting=counting)
    if isinstance(decoded, Problem):
        raise _refused(hub, ErrorCode.BAD_MESSAGE, decoded.text)
    routed = route(hub, decoded.model)
    if routed is None:
        raise _model_not_found(hub, decoded.model)
    gateway_request = stream_request(
        decoded,
        id="msg_" + secrets.token_hex(12),
        provider=routed.provider,
        model=routed.model,
        agent=routed.agent,
    )
    if isinstance(gateway_request, Problem):
        raise _refused(hub, ErrorCode.BAD_MESSAGE, gateway_request.text)
    return decoded, gateway_request


async def messages(request: Request) -> Response | ChatStream | MessageAnswer:
    hub = hub_of(request)
    try:
        body, gateway_request = await _decode(request, hub, counting=False)
        stream = await hub.open_http(gateway_request)
        if isinstance(stream, Refusal):
            if stream.code in (ErrorCode.UNKNOWN_PROVIDER, ErrorCode.UNKNOWN_AGENT):
                raise _model_not_found(hub, body.model)
            raise _refused(hub, stream.code, stream.message)
    except Refused as refused:
        return anthropic_error(refused.status, refused.message)
    if body.stream:
        encoder = EventEncoder(stream.id, body.model)
        return ChatStream(stream, encoder, hub.config.streaming, error=_stream_error, keepalive_event=PING)
    return MessageAnswer(stream, body.model)


async def count_tokens(request: Request) -> Response:
    """An estimate (about four characters a token) of the request's input: the gateway asks no
    provider to count."""
    hub = hub_of(request)
    try:
        _, gateway_request = await _decode(request, hub, counting=True)
    except Refused as refused:
        return anthropic_error(refused.status, refused.message)
    tokens = estimate_tokens(counted_text(gateway_request))
    return Response(token_count_json(tokens), media_type="application/json")


class MessageAnswer:
    """``stream: false``: the finished stream as one message object, or an error status."""

    def __init__(self, stream: Stream, model: str) -> None:
        self.stream, self.model = stream, model

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await watching(self.stream, receive, asyncio.ensure_future(self.stream.wait())):
            return
        terminal = self.stream.log.entries[-1]
        if type(terminal) is Done:
            body = message_json(terminal, self.stream.id, self.model)
            await Response(body, media_type="application/json")(scope, receive, send)
        else:
            assert type(terminal) is Error, terminal
            await _stream_error(terminal)(scope, receive, send)
