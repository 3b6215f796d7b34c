"""Reading Server-Sent Events from a real aiohttp response, for assertions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class SSEEvent:
    event: str
    data: Any
    id: str | None = None


@dataclass
class SSETranscript:
    events: list[SSEEvent] = field(default_factory=list)
    comments: int = 0


async def read_events(response: aiohttp.ClientResponse, *, until: set[str] | None = None) -> SSETranscript:
    """Parse the whole body (or up to the first event named in ``until``) into events."""
    transcript = SSETranscript()
    current: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith(":"):
            transcript.comments += 1
        elif line:
            name, _, value = line.partition(": ")
            current[name] = value
        elif current:
            event = SSEEvent(current["event"], json.loads(current["data"]), current.get("id"))
            transcript.events.append(event)
            current = {}
            if until and event.event in until:
                break
    return transcript
