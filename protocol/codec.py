"""Decoding client input into typed messages and encoding server messages to JSON bytes.

Decoding never raises: any input that is not a valid message becomes a ``BadMessage`` whose text
says what was wrong (msgspec's path, e.g. ``$.options.temperature``), with the stream id when one
can be read.
"""

from __future__ import annotations

import re

import msgspec

from protocol.messages import STREAM_ID_PATTERN, ClientMessage, ServerMessage, StartRequest, StreamRequest

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
