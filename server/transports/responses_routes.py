"""The OpenAI Responses API: ``POST /v1/responses``, for apps on OpenAI's newer SDK calls and the
AI SDK's default ``openai(model)`` provider.

A response is a gateway stream like any other, routed and opened as a chat completion is
(``openai_routes``: ``model`` as ``provider/model``, an agent or a provider; OpenAI's error shape),
its events encoded by ``protocol.responses_wire.EventsEncoder``. Nothing is stored: a response
exists while its request does.
"""

from __future__ import annotations

import asyncio
import secrets
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from protocol.errors import ErrorCode
from protocol.messages import Error
from protocol.openai_wire import Problem
from protocol.responses_wire import (
    EventsEncoder,
    ResponseShell,
    decode_responses_request,
    response_json,
    shell,
    stream_request,
)
from server.hub import StreamHub
from server.streams.runner import Stream
from server.transports.asgi import hub_of
from server.transports.openai_routes import (
    ChatStream,
    Refused,
    model_not_found,
    open_stream,
    openai_error,
    read_request,
    refused,
    route,
    stream_error,
    watching,
)


async def responses(request: Request) -> Response | ChatStream | ResponseAnswer:
    hub = hub_of(request)
    try:
        streamed, settings, stream = await _open(request, hub)
    except Refused as refusal:
        return openai_error(refusal.status, refusal.error)
    if streamed:
        return ChatStream(stream, EventsEncoder(settings), hub.config.streaming)
    return ResponseAnswer(stream, settings)


async def _open(request: Request, hub: StreamHub) -> tuple[bool, ResponseShell, Stream]:
    """Whether the client asked for a stream, the response's settings and the gateway stream."""
    body = decode_responses_request(await read_request(request, hub))
    if isinstance(body, Problem):
        raise refused(hub, ErrorCode.BAD_MESSAGE, body.message, body.param)
    routed = route(hub, body.model)
    if routed is None:
        raise model_not_found(hub, body.model)
    # The response id doubles as the stream id, so the stream log line names it.
    response_id = "resp_" + secrets.token_hex(16)
    gateway_request = stream_request(
        body, id=response_id, provider=routed.provider, model=routed.model, agent=routed.agent
    )
    if isinstance(gateway_request, Problem):
        raise refused(hub, ErrorCode.BAD_MESSAGE, gateway_request.message, gateway_request.param)
    stream = await open_stream(hub, gateway_request, body.model)
    return bool(body.stream), shell(body, id=response_id, created_at=int(time.time())), stream


class ResponseAnswer:
    """``stream: false``: the finished stream as one response object. An error before any output
    is an HTTP error; a failed stream with output is a ``failed`` response, as OpenAI answers."""

    def __init__(self, stream: Stream, shell: ResponseShell) -> None:
        self.stream, self.shell = stream, shell

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await watching(self.stream, receive, asyncio.ensure_future(self.stream.wait())):
            return
        entries = self.stream.log.entries
        terminal = entries[-1]
        if type(terminal) is Error and len(entries) <= 2:
            await stream_error(terminal)(scope, receive, send)
            return
        await Response(response_json(self.shell, entries), media_type="application/json")(
            scope, receive, send
        )
