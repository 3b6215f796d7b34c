"""The gateway's JSON messages, decoded into a stream's record."""

from __future__ import annotations

from typing import cast

import msgspec

from bench.clients.record import PartsResult, StreamResult


class Message(msgspec.Struct):
    type: str
    id: str | None = None
    seq: int | None = None
    from_seq: int | None = None
    content: str | None = None
    code: str | None = None
    message: str | None = None
    key: str | None = None  # the ``start`` ack's stream key (resume)


class PartMessage(Message):
    """The v1.1 parts' fields too: decoded only for tool-call and reasoning streams, so a text
    stream's messages cost what they did."""

    call_id: str | None = None
    name: str | None = None
    index: int | None = None
    arguments_delta: str | None = None
    arguments: msgspec.Raw = msgspec.Raw()  # tool_call_end's, compared as JSON text
    arguments_error: str | None = None


decode_message = msgspec.json.Decoder(Message).decode
decode_part_message = msgspec.json.Decoder(PartMessage).decode
PART_TYPES = frozenset(("reasoning", "tool_call_start", "tool_call_delta", "tool_call_end"))


def dispatch(stream: StreamResult, message: Message, t: float) -> None:
    kind = message.type
    if kind == "chunk":
        seq = cast(int, message.seq)
        first = seq if message.from_seq is None else message.from_seq
        stream.chunk(t, first, seq, message.content or "")
    elif kind == "done":
        stream.finish(t, message.seq)
    elif kind == "error":
        stream.fail(t, f"{message.code}: {message.message}")
    elif kind in PART_TYPES:
        _part(stream, message, t)


def _part(stream: StreamResult, message: Message, t: float) -> None:
    if type(stream) is not PartsResult or type(message) is not PartMessage:
        stream.fail(t, f"unexpected {message.type} (a text stream, or decoded without part fields)")
        return
    kind, seq = message.type, cast(int, message.seq)
    first = seq if message.from_seq is None else message.from_seq
    if kind == "reasoning":
        stream.reasoning(t, first, seq, message.content or "")
    elif kind == "tool_call_delta":
        stream.arguments(t, first, seq, message.arguments_delta or "")
    elif kind == "tool_call_start":
        stream.call_start(t, seq, cast(int, message.index), message.name or "")
    else:
        stream.call_end(t, seq, bytes(message.arguments), message.arguments_error)


class UIChunk(msgspec.Struct):
    """The fields of a UI message stream chunk the bench reads (``POST /v1/ui/chat``, the AI SDK's route)."""

    type: str
    delta: str | None = None
    errorText: str | None = None


decode_ui_chunk = msgspec.json.Decoder(UIChunk).decode


def ui_message(stream: StreamResult, data: bytes | bytearray, t: float) -> None:
    """One ``data:`` event of a UI message stream: a ``text-delta`` carries one or more whole
    chunks (a relay may merge them), checked like a gateway chunk; ``[DONE]`` follows ``finish``."""
    if data.startswith(b"[DONE]"):
        return
    chunk = decode_ui_chunk(data)
    kind = chunk.type
    if kind == "text-delta":
        delta = chunk.delta or ""
        first = stream.next_seq
        stream.chunk(t, first, first + max(1, len(delta) // stream.size) - 1, delta)
    elif kind == "finish":
        stream.finish(t)
    elif kind == "error":
        stream.fail(t, f"error part: {chunk.errorText}")


def gateway_message(stream: StreamResult, data: bytes | bytearray, t: float) -> None:
    dispatch(stream, decode_message(data), t)


def gateway_part_message(stream: StreamResult, data: bytes | bytearray, t: float) -> None:
    dispatch(stream, decode_part_message(data), t)
