"""One access-log line per HTTP request, and the count of open Server-Sent Events responses.

A pure ASGI middleware: it logs when the response is over (for a stream, when the stream is), at
INFO on ``tokenwire.access``, as one JSON object: method, path, status, duration_ms. The path is
logged without its query string, which may carry an API token. ``GET /v1/ws`` never comes here
(see ``TokenwireApp``), so nothing is logged per WebSocket message or per chunk.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tokenwire.access")

EVENT_STREAM = b"text/event-stream"


class Level(Protocol):
    """What counts open event streams (a Prometheus gauge)."""

    def inc(self) -> None: ...

    def dec(self) -> None: ...


class AccessLog:
    def __init__(self, app: ASGIApp, event_streams: Level | None = None) -> None:
        self.app = app
        self.event_streams = event_streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        gauge = self.event_streams
        status = 500  # what the server answers when the app fails before responding
        streaming = False

        async def send_logged(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                if gauge is not None and _is_event_stream(message):
                    gauge.inc()
                    streaming = True
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            if streaming and gauge is not None:
                gauge.dec()
            if log.isEnabledFor(logging.INFO):
                line = {
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                }
                log.info(json.dumps(line, separators=(",", ":")))


def _is_event_stream(start: Message) -> bool:
    return any(
        name.lower() == b"content-type" and value.startswith(EVENT_STREAM)
        for name, value in start.get("headers", ())
    )
