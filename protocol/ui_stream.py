"""A stream's events as the AI SDK's UI message stream (``useChat``'s wire format).

One encoder per reader turns the protocol's server messages, in seq order, into UI message
chunks: ``start`` (with the message id), ``start-step``, ``text-*``, ``reasoning-*``,
``tool-input-*``, then ``finish-step`` and ``finish`` (reason, and ``messageMetadata`` with the
``done``'s usage and metrics), or ``error``. Every stream ends with ``finish`` or ``error``: the
SDK takes a bare close for success. Part ids come from the seq that opened the part, so a replay
(a resume) names every part as the first reading did.

Reasoning parts stay open until the end, where the last one carries the turn's ``provider_state``
in ``providerMetadata.tokenwire`` (the SDK sends it back on the next turn); with state but no
reasoning, an empty reasoning part carries it. A retry or failover before the first part is a
transient ``data-tokenwire-notice`` part: the SDK passes it to ``onData`` and keeps it out of the
message. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import msgspec

from protocol.messages import (
    Chunk,
    Done,
    Error,
    Notice,
    ReasoningChunk,
    ServerMessage,
    StartAck,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)
from protocol.ui_messages import PROVIDER_KEY

UIChunk = dict[str, Any]
_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content-filter",
    "tool_calls": "tool-calls",
    "cancelled": "interrupted",
}
_json = msgspec.json.Encoder()
SSE_DONE = b"data: [DONE]\n\n"


class UIStreamEncoder:
    """Server messages of one stream, in order, into UI message chunks."""

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self._text: str | None = None  # the open text part's id
        self._reasoning: str | None = None  # the reasoning part taking deltas now
        self._reasoning_open: list[str] = []  # every reasoning part not ended yet
        self._arguments: dict[str, list[str]] = {}  # each open call's argument text so far
        self.ended = False

    def chunks(self, message: ServerMessage) -> list[UIChunk]:
        out: list[UIChunk] = []
        kind = type(message)
        if kind is Chunk:
            self._text_delta(message, out)  # type: ignore[arg-type]
        elif kind is ReasoningChunk:
            self._reasoning_delta(message, out)  # type: ignore[arg-type]
        elif kind is ToolCallStart or kind is ToolCallDelta or kind is ToolCallEnd:
            self._tool(message, out)  # type: ignore[arg-type]
        elif kind is StartAck:
            out += [{"type": "start", "messageId": self.message_id}, {"type": "start-step"}]
        elif kind is Notice:
            out.append(_notice(message))  # type: ignore[arg-type]
        elif kind is Done:
            self._done(message, out)  # type: ignore[arg-type]
        elif kind is Error:
            self.ended = True
            error: Error = message  # type: ignore[assignment]
            out.append({"type": "error", "errorText": f"{error.code}: {error.message}"})
        return out

    def _text_delta(self, chunk: Chunk, out: list[UIChunk]) -> None:
        if self._text is None:
            self._close_run(out)
            self._text = f"t{_first_seq(chunk)}"
            out.append({"type": "text-start", "id": self._text})
        out.append({"type": "text-delta", "id": self._text, "delta": chunk.content})

    def _reasoning_delta(self, chunk: ReasoningChunk, out: list[UIChunk]) -> None:
        if self._reasoning is None:
            self._close_run(out)
            self._reasoning = f"r{_first_seq(chunk)}"
            self._reasoning_open.append(self._reasoning)
            out.append({"type": "reasoning-start", "id": self._reasoning})
        out.append({"type": "reasoning-delta", "id": self._reasoning, "delta": chunk.content})

    def _tool(self, message: ToolCallStart | ToolCallDelta | ToolCallEnd, out: list[UIChunk]) -> None:
        self._close_run(out)
        call = message.call_id
        if type(message) is ToolCallStart:
            self._arguments[call] = []
            out.append({"type": "tool-input-start", "toolCallId": call, "toolName": message.name})
        elif type(message) is ToolCallDelta:
            self._arguments.setdefault(call, []).append(message.arguments_delta)
            out.append(
                {"type": "tool-input-delta", "toolCallId": call, "inputTextDelta": message.arguments_delta}
            )
        else:
            assert type(message) is ToolCallEnd
            text = "".join(self._arguments.pop(call, []))
            if message.arguments_error is None:
                chunk = {"type": "tool-input-available", "toolCallId": call, "toolName": message.name}
                out.append({**chunk, "input": message.arguments})
            else:
                chunk = {"type": "tool-input-error", "toolCallId": call, "toolName": message.name}
                out.append({**chunk, "input": text, "errorText": message.arguments_error})

    def _close_run(self, out: list[UIChunk]) -> None:
        """A new kind of part begins: the text part ends; a reasoning part stops taking deltas
        (it ends with the stream, to carry the provider state)."""
        if self._text is not None:
            out.append({"type": "text-end", "id": self._text})
            self._text = None
        self._reasoning = None

    def _done(self, done: Done, out: list[UIChunk]) -> None:
        self.ended = True
        self._close_run(out)
        state = done.provider_state
        if state is not None and not self._reasoning_open:
            self._reasoning_open.append(f"r{done.seq}")
            out.append({"type": "reasoning-start", "id": self._reasoning_open[0]})
        for i, part in enumerate(self._reasoning_open, 1):
            end: UIChunk = {"type": "reasoning-end", "id": part}
            if state is not None and i == len(self._reasoning_open):
                end["providerMetadata"] = {PROVIDER_KEY: {"provider_state": state}}
            out.append(end)
        metadata = {"usage": msgspec.to_builtins(done.usage), "metrics": msgspec.to_builtins(done.metrics)}
        reason = _FINISH_REASONS.get(done.finish_reason, "other")
        out += [
            {"type": "finish-step"},
            {"type": "finish", "finishReason": reason, "messageMetadata": metadata},
        ]


def _first_seq(message: Chunk | ReasoningChunk) -> int:
    return message.seq if message.from_seq is None else message.from_seq


def _notice(notice: Notice) -> UIChunk:
    data = msgspec.to_builtins(notice)
    del data["type"], data["id"]
    return {"type": "data-tokenwire-notice", "data": data, "transient": True}


def encode_chunk(chunk: UIChunk) -> bytes:
    return _json.encode(chunk)


class UISSEEncoder:
    """The UI message stream over SSE: ``data: <chunk JSON>`` per chunk, ``data: [DONE]`` at the
    end (a protocol EventEncoder, server.transports.sse)."""

    def __init__(self, message_id: str) -> None:
        self._encoder = UIStreamEncoder(message_id)

    def __call__(self, message: ServerMessage) -> bytes:
        body = b"".join(b"data: %b\n\n" % _json.encode(chunk) for chunk in self._encoder.chunks(message))
        return body + SSE_DONE if self._encoder.ended else body
