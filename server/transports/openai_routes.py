"""The OpenAI-compatible API: ``POST /v1/chat/completions``, ``GET /v1/models`` and
``GET /v1/models/{id}``, so apps built on the official OpenAI SDKs switch by changing ``base_url``.

A chat completion is a gateway stream like any other (same hub, limits, retries, metrics, log);
its events are encoded as OpenAI's chunks (``protocol.openai_wire.ChunkEncoder``) and served by
the SSE fallback's ``EventStreamResponse``. Problems found before the first token are HTTP errors
in OpenAI's shape, so the SDKs raise the matching exception class; the 200 headers of a streaming
answer go out only once the first event (text, or the end) is in.

``model`` routes as ``provider/model``, an agent id, or a bare provider name (its default model).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from protocol.errors import HTTP_STATUS, ErrorCode
from protocol.messages import Done, Error, StreamRequest
from protocol.openai_wire import (
    MODEL_NOT_FOUND,
    ChatCompletionRequest,
    ChunkEncoder,
    ErrorObject,
    Model,
    ModelList,
    Problem,
    completion_json,
    decode_chat_request,
    error_for,
    error_json,
    model_json,
    refusal_error,
    stream_request,
)
from protocol.sse import KEEPALIVE
from server.config import StreamingConfig
from server.hub import StreamHub
from server.streams.resolve import Refusal
from server.streams.runner import Stream
from server.transports.asgi import hub_of, listen_for_disconnect
from server.transports.http_routes import HttpProblem, read_body
from server.transports.sse import EventEncoder, EventStreamResponse

STARTED = int(time.time())  # the `created` of every model: when the gateway started


# ---- errors ----------------------------------------------------------------------------------


def openai_error(status: int, error: ErrorObject, retry_after_s: float | None = None) -> Response:
    headers = {} if retry_after_s is None else {"retry-after": str(max(1, round(retry_after_s)))}
    return Response(error_json(error), status, headers, media_type="application/json")


def not_found(path: str) -> Response:
    """A path no route serves, in OpenAI's shape so the SDKs raise NotFoundError."""
    error = ErrorObject(message=f"no route {path}", type="invalid_request_error", code="not_found")
    return openai_error(404, error)


def refusal_response(status: int, message: str) -> Response:
    """For ``server.edge.access``: its 401/403 refusals on these routes, in OpenAI's shape."""
    return openai_error(status, refusal_error(status, message))


REFUSALS = {
    "/v1/chat/completions": refusal_response,
    "/v1/responses": refusal_response,
    "/v1/models": refusal_response,
}


class Refused(Exception):
    """A request answered with an OpenAI error before any stream exists."""

    def __init__(self, status: int, error: ErrorObject) -> None:
        super().__init__(error.message)
        self.status, self.error = status, error


def refused(
    hub: StreamHub, code: ErrorCode, message: str, param: str | None = None, status: int | None = None
) -> Refused:
    hub.refused(code)  # counted like every other HTTP refusal (tokenwire_errors_total)
    return Refused(status or HTTP_STATUS[code], error_for(code, message, param))


def model_not_found(hub: StreamHub, model: str) -> Refused:
    error = ErrorObject(
        message=f"The model `{model}` does not exist: use provider/model, a provider or an agent id "
        "(GET /v1/models lists them)",
        type="invalid_request_error",
        code=MODEL_NOT_FOUND,
        param="model",
    )
    hub.refused(ErrorCode.UNKNOWN_PROVIDER)
    return Refused(404, error)


def stream_error(error: Error) -> Response:
    return openai_error(HTTP_STATUS[error.code], error_for(error.code, error.message), error.retry_after_s)


# ---- model routing ---------------------------------------------------------------------------


def route(hub: StreamHub, model: str) -> StreamRequest | None:
    """The provider, model or agent ``model`` names; None when it names none of them. An agent id
    wins over a provider of the same name (the provider stays reachable as ``provider/model``)."""
    provider, slash, name = model.partition("/")
    if slash:
        if not name or hub.registry.get(provider) is None or len(provider) > 128 or len(name) > 128:
            return None
        return StreamRequest(provider=provider, model=name)
    if model in hub.config.agents:
        return StreamRequest(agent=model)
    if hub.registry.get(model) is not None:
        return StreamRequest(provider=model)
    return None


def models(hub: StreamHub) -> list[Model]:
    """What ``GET /v1/models`` lists: each usable provider's default model as ``provider/model``,
    each usable provider by name, and each agent whose provider is usable."""
    by_id: dict[str, Model] = {}
    for info in hub.registry.infos():
        if info.configured:
            for model_id in (f"{info.name}/{info.default_model}", info.name):
                by_id[model_id] = Model(id=model_id, created=STARTED, owned_by=info.name)
    default = hub.config.streaming.default_provider
    for agent_id, agent in sorted(hub.config.agents.items()):
        provider = hub.registry.get(agent.provider or default)
        if provider is not None and provider.configured:
            by_id[agent_id] = Model(id=agent_id, created=STARTED, owned_by="tokenwire")
    return list(by_id.values())


def _find_model(hub: StreamHub, model_id: str) -> Model | None:
    listed = next((m for m in models(hub) if m.id == model_id), None)
    if listed is not None:
        return listed
    request = route(hub, model_id)  # any model of a usable provider is served
    provider = hub.registry.get(request.provider) if request and request.provider else None
    if provider is None or not provider.configured:
        return None
    return Model(id=model_id, created=STARTED, owned_by=provider.name)


async def list_models(request: Request) -> Response:
    return Response(model_json(ModelList(data=models(hub_of(request)))), media_type="application/json")


async def retrieve_model(request: Request) -> Response:
    hub = hub_of(request)
    model_id: str = request.path_params["model_id"]
    found = _find_model(hub, model_id)
    if found is None:
        missing = model_not_found(hub, model_id)
        return openai_error(missing.status, missing.error)
    return Response(model_json(found), media_type="application/json")


# ---- chat completions ------------------------------------------------------------------------


async def chat_completions(request: Request) -> Response | ChatStream | ChatCompletionAnswer:
    hub = hub_of(request)
    try:
        chat, stream = await _open(request, hub)
    except Refused as refused:
        return openai_error(refused.status, refused.error)
    completion_id, created = stream.id, int(time.time())
    if chat.stream:
        encoder = ChunkEncoder(completion_id, created, chat.model, chat.include_usage)
        return ChatStream(stream, encoder, hub.config.streaming)
    return ChatCompletionAnswer(stream, completion_id, created, chat.model)


async def _open(request: Request, hub: StreamHub) -> tuple[ChatCompletionRequest, Stream]:
    chat = decode_chat_request(await read_request(request, hub))
    if isinstance(chat, Problem):
        raise refused(hub, ErrorCode.BAD_MESSAGE, chat.message, chat.param)
    routed = route(hub, chat.model)
    if routed is None:
        raise model_not_found(hub, chat.model)
    # The completion id doubles as the stream id, so the stream log line names it.
    gateway_request = stream_request(
        chat,
        id="chatcmpl-" + secrets.token_hex(14),
        provider=routed.provider,
        model=routed.model,
        agent=routed.agent,
    )
    if isinstance(gateway_request, Problem):  # e.g. no `user` message
        raise refused(hub, ErrorCode.BAD_MESSAGE, gateway_request.message, gateway_request.param)
    return chat, await open_stream(hub, gateway_request, chat.model)


async def read_request(request: Request, hub: StreamHub) -> bytes:
    """The body; too large is a 413 in OpenAI's shape."""
    try:
        return await read_body(request)
    except HttpProblem as problem:
        raise refused(hub, problem.code, problem.message, status=problem.status) from None


async def open_stream(hub: StreamHub, gateway_request: StreamRequest, model: str) -> Stream:
    """The gateway stream for a request routed from ``model``, or the refusal, as OpenAI's error."""
    stream = await hub.open_http(gateway_request)
    if isinstance(stream, Refusal):
        if stream.code in (ErrorCode.UNKNOWN_PROVIDER, ErrorCode.UNKNOWN_AGENT):
            raise model_not_found(hub, model)
        raise refused(hub, stream.code, stream.message)
    return stream


async def watching(stream: Stream, receive: Receive, waiting: asyncio.Future[None]) -> bool:
    """Wait for ``waiting`` while watching for the client going away, which cancels the stream.
    True when the client is gone. Anything that stops us early cancels the stream too."""
    watcher = asyncio.ensure_future(listen_for_disconnect(receive))
    try:
        await asyncio.wait([watcher, waiting], return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        stream.cancel()
        raise
    finally:
        watcher.cancel()
        waiting.cancel()
    await asyncio.wait([watcher])  # it no longer reads `receive` when the next reader starts
    if not watcher.cancelled():
        stream.cancel()
        return True
    return False


async def first_event(stream: Stream) -> None:
    """Until the stream has an event after the ack: its first text, or its end."""
    log = stream.log
    arrived = asyncio.Event()
    subscription = log.subscribe(stream.id, lambda _: arrived.set())
    try:
        while len(log.entries) < 2:
            arrived.clear()
            await arrived.wait()
    finally:
        log.unsubscribe(subscription)


class ChatStream:
    """``stream: true``: the 200 and the encoded events once the first event is in; an error
    before any text is an HTTP error instead (``error``: in the API's own shape). Any encoder:
    the Responses and Anthropic Messages APIs' too; ``keepalive_event`` replaces SSE comments
    for an API that has an event of its own for it (Anthropic's ``ping``)."""

    def __init__(
        self,
        stream: Stream,
        encoder: EventEncoder,
        settings: StreamingConfig,
        error: Callable[[Error], Response] = stream_error,
        keepalive_event: bytes = KEEPALIVE,
    ) -> None:
        self.stream, self.encoder, self.settings = stream, encoder, settings
        self.error, self.keepalive_event = error, keepalive_event

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await watching(self.stream, receive, asyncio.ensure_future(first_event(self.stream))):
            return  # the client went away; its stream is cancelled
        first = self.stream.log.entries[1]
        if type(first) is Error:
            await self.error(first)(scope, receive, send)
            return
        s = self.settings
        response = EventStreamResponse(
            self.stream,
            self.encoder,
            s.keepalive_seconds,
            slow_client_seconds=s.slow_client_timeout_seconds,
            keepalive_event=self.keepalive_event,
        )
        await response(scope, receive, send)


class ChatCompletionAnswer:
    """``stream: false``: the finished stream as one ``chat.completion``, or an error status."""

    def __init__(self, stream: Stream, completion_id: str, created: int, model: str) -> None:
        self.stream, self.id, self.created, self.model = stream, completion_id, created, model

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await watching(self.stream, receive, asyncio.ensure_future(self.stream.wait())):
            return
        terminal = self.stream.log.entries[-1]
        if type(terminal) is Done:
            body = completion_json(terminal, self.stream.log.entries, self.id, self.created, self.model)
            await Response(body, media_type="application/json")(scope, receive, send)
        else:
            assert type(terminal) is Error, terminal
            await stream_error(terminal)(scope, receive, send)
