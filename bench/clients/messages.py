"""The gateway's JSON messages, decoded into a stream's record."""

from __future__ import annotations

from typing import cast

import msgspec

from bench.clients.record import StreamResult


class Message(msgspec.Struct):
    type: str
    id: str | None = None
    seq: int | None = None
    from_seq: int | None = None
    content: str | None = None
    code: str | None = None
    message: str | None = None
    key: str | None = None  # the ``start`` ack's stream key (resume)


decode_message = msgspec.json.Decoder(Message).decode


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


def gateway_message(stream: StreamResult, data: bytes | bytearray, t: float) -> None:
    dispatch(stream, decode_message(data), t)
