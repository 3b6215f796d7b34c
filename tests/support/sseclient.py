"""Reading Server-Sent Events from a real aiohttp response, for assertions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httptools


@dataclass
class SSEEvent:
    event: str
    data: Any
    id: str | None = None


@dataclass
class SSETranscript:
    events: list[SSEEvent] = field(default_factory=list)
    comments: int = 0


class _Lines:
    """Event-stream lines in, events out."""

    def __init__(self) -> None:
        self.transcript = SSETranscript()
        self._current: dict[str, str] = {}

    def feed(self, line: str) -> SSEEvent | None:
        """The event this line completes, if any."""
        if line.startswith(":"):
            self.transcript.comments += 1
        elif line:
            name, _, value = line.partition(": ")
            self._current[name] = value
        elif self._current:
            current, self._current = self._current, {}
            event = SSEEvent(current["event"], json.loads(current["data"]), current.get("id"))
            self.transcript.events.append(event)
            return event
        return None


async def read_events(response: aiohttp.ClientResponse, *, until: set[str] | None = None) -> SSETranscript:
    """Parse the whole body (or up to the first event named in ``until``) into events."""
    lines = _Lines()
    async for raw in response.content:
        event = lines.feed(raw.decode().rstrip("\r\n"))
        if event is not None and until and event.event in until:
            break
    return lines.transcript


class _Body:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def on_body(self, body: bytes) -> None:
        self.parts.append(body)


def events_of_response(raw: bytes) -> SSETranscript:
    """The events of a whole raw HTTP response (status line, headers, chunked body)."""
    body = _Body()
    httptools.HttpResponseParser(body).feed_data(raw)
    lines = _Lines()
    for line in b"".join(body.parts).decode().split("\n"):
        lines.feed(line.rstrip("\r"))
    return lines.transcript
