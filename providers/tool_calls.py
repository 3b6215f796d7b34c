"""Assembling a turn's tool calls from a provider's pieces, the same way for every dialect.

A parser names each call by its own key (OpenAI's ``index``, Anthropic's block index, a counter
for whole-call providers) and hands over the argument fragments as they come. The tracker gives
each call its 0-based order in the turn, an id when the provider has none, and parses the
arguments once, when the call ends: a buffer that parses may still be the prefix of a longer one.
"""

from __future__ import annotations

import secrets
from collections.abc import Hashable

from protocol.structured import parse_arguments
from providers.base import StreamEvent, ToolCallDelta, ToolCallEnd, ToolCallStart


def new_call_id() -> str:
    """An id for a call the provider gave none (Gemini, older Ollama): unique across turns, as
    clients key results by it."""
    return "call_" + secrets.token_urlsafe(12)


class _Call:
    __slots__ = ("call_id", "fragments", "name")

    def __init__(self, call_id: str, name: str) -> None:
        self.call_id = call_id
        self.name = name
        self.fragments: list[str] = []


class ToolCallTracker:
    def __init__(self) -> None:
        self._open: dict[Hashable, _Call] = {}
        self.count = 0  # calls started this turn

    def start(self, key: Hashable, call_id: str | None, name: str, out: list[StreamEvent]) -> None:
        """A new call under ``key``; a call still open under the same key ends first."""
        if key in self._open:
            self.end(key, out)
        call = _Call(call_id or new_call_id(), name)
        self._open[key] = call
        out.append(ToolCallStart(self.count, call.call_id, name))
        self.count += 1

    def is_open(self, key: Hashable) -> bool:
        return key in self._open

    def delta(self, key: Hashable, text: str, out: list[StreamEvent]) -> None:
        """An argument fragment of the open call ``key`` (empty ones say nothing)."""
        call = self._open.get(key)
        if call is not None and text:
            call.fragments.append(text)
            out.append(ToolCallDelta(call.call_id, text))

    def whole(
        self, key: Hashable, call_id: str | None, name: str, arguments: str, out: list[StreamEvent]
    ) -> None:
        """A call delivered whole: start, its arguments as one delta, end."""
        self.start(key, call_id, name, out)
        self.delta(key, arguments, out)
        self.end(key, out)

    def end(self, key: Hashable, out: list[StreamEvent]) -> None:
        call = self._open.pop(key, None)
        if call is not None:
            arguments, error = parse_arguments("".join(call.fragments))
            out.append(ToolCallEnd(call.call_id, call.name, arguments, error))

    def end_all(self, out: list[StreamEvent]) -> None:
        """End every open call, in the order they started (the stream ended)."""
        for key in list(self._open):
            self.end(key, out)
