"""The skeleton every provider's stream parser shares.

A parser decodes framed items (SSE events, NDJSON lines) into StreamEvents. It never raises on
what a peer sends: malformed JSON, an over-long line or event, a provider's error report or a stream cut
before the provider's end signal each become one Failure, after which the parser says nothing.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

import msgspec

from providers.base import Failure, ProviderError, StreamEvent, UpstreamProtocolError

Item = TypeVar("Item")
T = TypeVar("T")


class Decoder(Protocol[Item]):
    @property
    def overflow(self) -> str | None:
        """What exceeded the decoder's bound ("line", "event"), if anything did."""
        ...

    def feed(self, chunk: bytes) -> list[Item]: ...

    def close(self) -> list[Item]: ...


class FramedStreamParser(Generic[Item]):
    end_signal = "its end signal"  # named when the stream is cut short

    def __init__(self, provider: str, decoder: Decoder[Item]) -> None:
        self.provider = provider
        self._decoder = decoder
        self.ended = False  # the end signal or a Failure was returned: nothing more to say

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        return [] if self.ended else self._run(self._decoder.feed(chunk))

    def close(self) -> list[StreamEvent]:
        if self.ended:
            return []
        events = self._run(self._decoder.close())
        if not self.ended:
            events.extend(self.at_eof())
        return events

    def item(self, item: Item, out: list[StreamEvent]) -> None:
        """Append the events of one framed item; set ``ended`` at the provider's end signal."""
        raise NotImplementedError

    def at_eof(self) -> list[StreamEvent]:
        """EOF without the end signal: by default a truncated stream."""
        return [self.fail(f"{self.provider} stream ended before {self.end_signal}")]

    def fail(self, message: str) -> Failure:
        return self.report(UpstreamProtocolError(message))

    def report(self, error: ProviderError) -> Failure:
        self.ended = True
        return Failure(error)

    def decode(self, decoder: msgspec.json.Decoder[T], data: bytes, out: list[StreamEvent]) -> T | None:
        """``data`` decoded, or None after appending the Failure for malformed JSON."""
        try:
            return decoder.decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError):  # msgspec raises the latter inside strings
            out.append(self.fail(f"{self.provider} sent malformed JSON"))
            return None

    def _run(self, items: list[Item]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for item in items:
            self.item(item, out)
            if self.ended:
                return out
        # The complete items before an over-long one still count; the bound ends the stream. Not
        # retryable: the same request gets the same oversized answer, each try costing the bound.
        if overflow := self._decoder.overflow:
            error = UpstreamProtocolError(f"{self.provider} sent an over-long {overflow}", retryable=False)
            out.append(self.report(error))
        return out
