"""Decoding client input into typed messages and encoding server messages to JSON bytes.

Decoding never raises: any input that is not a valid message becomes a ``BadMessage`` whose text
says what was wrong (msgspec's path, e.g. ``$.options.temperature``), with the stream id when one
can be read.
"""

from __future__ import annotations

import re

import msgspec

from protocol.messages import (
    MAX_IMAGES,
    STREAM_ID_PATTERN,
    ChatMessage,
    ClientMessage,
    ImagePart,
    JsonSchemaFormat,
    ServerMessage,
    StartRequest,
    StreamRequest,
    ToolChoiceName,
)
from protocol.structured import image_problem, schema_problem

_client_decoder = msgspec.json.Decoder(ClientMessage)
_http_decoder = msgspec.json.Decoder(StreamRequest)
_encoder = msgspec.json.Encoder()
_stream_id = re.compile(STREAM_ID_PATTERN)
# What msgspec raises for input it cannot even parse: besides DecodeError, JSON nested ~1000 deep
# overflows its recursion limit, and invalid UTF-8 inside a string fails its decode step.
UNREADABLE = (msgspec.DecodeError, RecursionError, UnicodeError)


class BadMessage(msgspec.Struct, frozen=True):
    """Client input that is not a valid message."""

    message: str
    id: str | None = None


class _IdProbe(msgspec.Struct):
    id: object = None


def encode(message: ServerMessage) -> bytes:
    return _encoder.encode(message)


def decode_client_message(data: bytes | str) -> ClientMessage | BadMessage:
    """Decode one WebSocket frame."""
    try:
        message: ClientMessage = _client_decoder.decode(data)
    except UNREADABLE as exc:
        return BadMessage(describe(exc), _readable_id(data))
    if isinstance(message, StartRequest):
        problem = request_problem(message)
        if problem is not None:
            return BadMessage(problem, message.id)
    return message


def decode_http_request(data: bytes) -> StreamRequest | BadMessage:
    """Decode the JSON body of ``POST /v1/streams`` or ``POST /v1/completions``."""
    try:
        request = _http_decoder.decode(data)
    except UNREADABLE as exc:
        return BadMessage(describe(exc), _readable_id(data))
    problem = request_problem(request)
    return request if problem is None else BadMessage(problem, request.id)


def describe(exc: Exception) -> str:
    # A ValidationError (a DecodeError too) names the path; the rest are about the JSON itself.
    if isinstance(exc, msgspec.ValidationError):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "not valid JSON: nested too deeply"
    if isinstance(exc, UnicodeError):
        return "not valid JSON: not UTF-8 (or a lone surrogate)"
    return f"not valid JSON: {exc}"


def request_problem(request: StreamRequest) -> str | None:
    """What is wrong with a request that decoded fine, or None."""
    given = [name for name in ("messages", "prompt", "brief") if getattr(request, name) is not None]
    if len(given) != 1:
        found = ", ".join(given) if given else "none"
        return f"exactly one input is required: messages, prompt or brief (found: {found})"
    if request.plan is not None and request.brief is None:
        return "`plan` goes with `brief` - at `$.plan`"
    if request.messages is not None and not any(m.role == "user" for m in request.messages):
        return "`messages` needs at least one message with role `user` - at `$.messages`"
    if request.prompt is not None and not request.prompt.strip():
        return "`prompt` is empty - at `$.prompt`"
    return parts_problem(request)


def parts_problem(request: StreamRequest) -> str | None:
    """What is wrong with the v1.1 fields (tools, formats, message parts), or None."""
    tools = request.tools or []
    names = [tool.name for tool in tools]
    for i, tool in enumerate(tools):
        if tool.name in names[:i]:
            return f"tool names must be unique: `{tool.name}` - at `$.tools[{i}].name`"
        if tool.parameters is not None and (problem := schema_problem(tool.parameters)):
            return f"{problem} - at `$.tools[{i}].parameters`"
    choice = request.tool_choice
    if choice is not None and choice != "none" and not tools:
        return "`tool_choice` needs `tools` - at `$.tool_choice`"
    if isinstance(choice, ToolChoiceName) and choice.name not in names:
        return f"`tool_choice` names no tool in `tools`: `{choice.name}` - at `$.tool_choice.name`"
    response_format = request.response_format
    if isinstance(response_format, JsonSchemaFormat) and (problem := schema_problem(response_format.schema)):
        return f"{problem} - at `$.response_format.schema`"
    return messages_problem(request.messages or [])


def messages_problem(messages: list[ChatMessage]) -> str | None:
    images = 0
    for i, message in enumerate(messages):
        where = f"$.messages[{i}]"
        role = message.role
        if message.content is None and not (role == "assistant" and message.tool_calls):
            return f"a `{role}` message needs `content` - at `{where}.content`"
        if (message.tool_call_id is not None) != (role == "tool"):
            return f"`tool_call_id` goes with, and only with, role `tool` - at `{where}`"
        if role != "assistant" and (message.tool_calls is not None or message.provider_state is not None):
            return f"`tool_calls` and `provider_state` go on `assistant` messages - at `{where}`"
        if isinstance(message.content, list):
            for j, part in enumerate(message.content):
                if not isinstance(part, ImagePart):
                    continue
                if role != "user":
                    return f"images go in `user` messages - at `{where}.content[{j}]`"
                images += 1
                if images > MAX_IMAGES:
                    return f"at most {MAX_IMAGES} images in a request - at `{where}.content[{j}]`"
                if problem := image_problem(part.url):
                    return f"{problem} - at `{where}.content[{j}].url`"
    return None


def _readable_id(data: bytes | str) -> str | None:
    """The stream id of a message that failed to decode, if it has a valid one."""
    try:
        probe = msgspec.json.decode(data, type=_IdProbe)
    except UNREADABLE:
        return None
    if isinstance(probe.id, str) and _stream_id.match(probe.id):
        return probe.id
    return None
