"""The OpenAI-compatible API's wire format: the ``POST /v1/chat/completions`` body, the
``chat.completion`` and ``chat.completion.chunk`` objects, ``/v1/models`` lists and OpenAI's error
shape. Pure, like the rest of ``protocol/``: the streaming encoder is one more encoder over the
same protocol v1 events every other transport reads.

What the official SDKs parse (openai-python ``_streaming.py``, openai-node ``core/streaming``):
``data: <json>`` events with no ``event:`` line, ending with ``data: [DONE]``; a ``data:`` object
with an ``error`` member mid-stream makes them raise ``APIError``; an HTTP error status with
``{"error": {message, type, code, param}}`` maps to an exception class by status.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from protocol.codec import UNREADABLE, describe
from protocol.errors import HTTP_STATUS, ErrorCode
from protocol.messages import ChatMessage, Chunk, Done, Error, Options, ServerMessage, StartAck

# ---- the request -----------------------------------------------------------------------------


class ContentPart(msgspec.Struct, frozen=True):
    """One part of an array ``content``; only ``{"type": "text", "text": ...}`` is served."""

    type: str
    text: str | None = None


class StreamOptions(msgspec.Struct, frozen=True):
    include_usage: bool | None = None


class InputMessage(msgspec.Struct, frozen=True):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | Annotated[list[ContentPart], Meta(max_length=1000)] | None = None


class ChatCompletionRequest(msgspec.Struct, frozen=True, kw_only=True):
    """The body of ``POST /v1/chat/completions``. Unknown fields (``tools``, ``seed``,
    ``response_format``, ``user``, ...) are ignored; the option ranges are the gateway's own."""

    model: Annotated[str, Meta(min_length=1, max_length=257)]  # "provider/model", 128 + 1 + 128
    messages: Annotated[list[InputMessage], Meta(min_length=1, max_length=1000)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None
    max_completion_tokens: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    stop: Annotated[str, Meta(max_length=256)] | Annotated[list[str], Meta(max_length=16)] | None = None
    n: int | None = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)

    def options(self) -> Options | None:
        """The generation options set; ``max_completion_tokens`` wins over ``max_tokens``."""
        max_tokens = self.max_completion_tokens or self.max_tokens
        fields = (self.temperature, max_tokens, self.top_p, self.stop)
        if all(value is None for value in fields):
            return None
        return Options(temperature=self.temperature, max_tokens=max_tokens, top_p=self.top_p, stop=self.stop)


class Problem(msgspec.Struct, frozen=True):
    """A request refused with 400 ``invalid_request_error``; ``param`` names the field."""

    message: str
    param: str | None = None


_request_decoder = msgspec.json.Decoder(ChatCompletionRequest)
_PATH = re.compile(r" - at `\$\.?(.*)`$")
_MISSING = re.compile(r"missing required field `(.*)`")


def decode_chat_request(data: bytes) -> ChatCompletionRequest | Problem:
    """Decode and check a request body; never raises."""
    try:
        request = _request_decoder.decode(data)
    except msgspec.ValidationError as exc:
        text = str(exc)
        at = _PATH.search(text)
        missing = _MISSING.search(text)
        param = at[1] if at else None
        if missing:
            param = f"{param}.{missing[1]}" if param else missing[1]
        return Problem(text, param or None)
    except UNREADABLE as exc:
        return Problem(f"We could not parse the JSON body of your request: {describe(exc)}")
    if request.n is not None and request.n != 1:
        return Problem("only `n: 1` is supported: the gateway returns one choice", "n")
    for i, message in enumerate(request.messages):
        if isinstance(message.content, list):
            for j, part in enumerate(message.content):
                if part.type != "text" or part.text is None:
                    where = f"messages[{i}].content[{j}]"
                    return Problem(f"content part type `{part.type}` is not supported (only `text`)", where)
        elif message.content is None and message.role != "assistant":
            return Problem(f"a `{message.role}` message needs `content`", f"messages[{i}].content")
    return request


def chat_messages(request: ChatCompletionRequest) -> list[ChatMessage]:
    """The request's messages as the gateway's: ``developer`` is ``system``; array content is its
    text parts joined by newlines; an assistant message without content is empty text."""
    out = []
    for message in request.messages:
        content = message.content
        if isinstance(content, list):
            content = "\n".join(part.text or "" for part in content)
        role = "system" if message.role == "developer" else message.role
        out.append(ChatMessage(role=role, content=content or ""))
    return out


# ---- responses -------------------------------------------------------------------------------

FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "function_call"]
_FINISH_REASONS: frozenset[str] = frozenset(
    {"stop", "length", "content_filter", "tool_calls", "function_call"}
)


def finish_reason(gateway_reason: str) -> str:
    """OpenAI's ``finish_reason`` for a gateway one: its own values pass, the rest (``cancelled``,
    a provider's unmapped reason) are ``stop``."""
    return gateway_reason if gateway_reason in _FINISH_REASONS else "stop"


class CompletionUsage(msgspec.Struct, frozen=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


def _usage(done: Done) -> CompletionUsage:
    u = done.usage
    return CompletionUsage(u.prompt_tokens, u.completion_tokens, u.total_tokens)


class Delta(msgspec.Struct, frozen=True):
    role: Literal["assistant"] | UnsetType = UNSET
    content: str | UnsetType = UNSET


class ChunkChoice(msgspec.Struct, frozen=True, kw_only=True):
    index: int = 0
    delta: Delta
    logprobs: None = None
    finish_reason: str | None = None


# Fields in the order OpenAI sends them.
class ChatCompletionChunk(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: None = None
    choices: list[ChunkChoice]
    usage: CompletionUsage | UnsetType | None = UNSET  # present (null until the last) with include_usage


class AssistantMessage(msgspec.Struct, frozen=True, kw_only=True):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(msgspec.Struct, frozen=True, kw_only=True):
    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: str


class ChatCompletion(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: None = None
    choices: list[Choice]
    usage: CompletionUsage


_encoder = msgspec.json.Encoder()
DONE_LINE = b"data: [DONE]\n\n"


def _data(value: msgspec.Struct) -> bytes:
    return b"data: " + _encoder.encode(value) + b"\n\n"


def completion_json(done: Done, completion_id: str, created: int, model: str) -> bytes:
    """A finished stream as one ``chat.completion`` object."""
    choice = Choice(
        message=AssistantMessage(content=done.content), finish_reason=finish_reason(done.finish_reason)
    )
    completion = ChatCompletion(
        id=completion_id, created=created, model=model, choices=[choice], usage=_usage(done)
    )
    return _encoder.encode(completion)


class ChunkEncoder:
    """Protocol v1 events -> ``chat.completion.chunk`` SSE data lines: the ack becomes the
    ``role`` chunk, each chunk a content delta, ``done`` the ``finish_reason`` chunk (then the usage
    chunk, with ``include_usage``) and ``[DONE]``; an ``error`` becomes OpenAI's mid-stream error
    line, which ends the stream (no ``[DONE]``, as OpenAI does)."""

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        self.id, self.created, self.model = completion_id, created, model
        self.usage: CompletionUsage | UnsetType | None = None if include_usage else UNSET

    def __call__(self, message: ServerMessage) -> bytes:
        if type(message) is Chunk:
            return self._chunk(Delta(content=message.content), None)
        if type(message) is StartAck:
            return self._chunk(Delta(role="assistant", content=""), None)
        if type(message) is Done:
            end = self._chunk(Delta(), finish_reason(message.finish_reason))
            if self.usage is None:
                end += self._envelope([], _usage(message))
            return end + DONE_LINE
        if type(message) is Error:
            return _data(ErrorBody(error_for(message.code, message.message)))
        return b""  # notices (retry, failover) are not part of OpenAI's stream

    def _chunk(self, delta: Delta, finish: str | None) -> bytes:
        return self._envelope([ChunkChoice(delta=delta, finish_reason=finish)], self.usage)

    def _envelope(self, choices: list[ChunkChoice], usage: CompletionUsage | UnsetType | None) -> bytes:
        chunk = ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=choices, usage=usage
        )
        return _data(chunk)


# ---- models ----------------------------------------------------------------------------------


class Model(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(msgspec.Struct, frozen=True, kw_only=True):
    object: Literal["list"] = "list"
    data: list[Model]


def model_json(model: Model | ModelList) -> bytes:
    return _encoder.encode(model)


# ---- errors ----------------------------------------------------------------------------------


class ErrorObject(msgspec.Struct, frozen=True):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorObject


MODEL_NOT_FOUND = "model_not_found"

_CLIENT_ERRORS = frozenset({ErrorCode.BAD_MESSAGE, ErrorCode.UPSTREAM_BAD_REQUEST, ErrorCode.UNKNOWN_STREAM})
_RATE_LIMITS = frozenset(
    {ErrorCode.UPSTREAM_RATE_LIMITED, ErrorCode.RATE_LIMITED, ErrorCode.TOO_MANY_STREAMS}
)
# Where OpenAI has a well-known code for the same thing, it is used; otherwise the gateway's own.
_OPENAI_CODES: dict[ErrorCode, str | None] = {
    ErrorCode.BAD_MESSAGE: None,
    ErrorCode.UNAUTHORIZED: "invalid_api_key",
    ErrorCode.UNKNOWN_PROVIDER: MODEL_NOT_FOUND,
    ErrorCode.UNKNOWN_AGENT: MODEL_NOT_FOUND,
    ErrorCode.UPSTREAM_RATE_LIMITED: "rate_limit_exceeded",
    ErrorCode.RATE_LIMITED: "rate_limit_exceeded",
}


def error_type(code: ErrorCode) -> str:
    if code in _RATE_LIMITS:
        return "rate_limit_error"
    if HTTP_STATUS[code] < 500:
        return "invalid_request_error"
    return "server_error"


def error_for(code: ErrorCode, message: str, param: str | None = None) -> ErrorObject:
    """OpenAI's error object for a gateway error code."""
    code_text = _OPENAI_CODES.get(code, code.value)
    return ErrorObject(message=message, type=error_type(code), code=code_text, param=param)


def error_json(error: ErrorObject) -> bytes:
    return _encoder.encode(ErrorBody(error))


def refusal_error(status: int, message: str) -> ErrorObject:
    """The error object of an access refusal (401 token, 403 origin)."""
    code = "invalid_api_key" if status == 401 else "origin_not_allowed" if status == 403 else None
    return ErrorObject(message=message, type="invalid_request_error", code=code)
