"""Graceful shutdown: take no new streams, let running ones finish within a grace period, end the
rest with the retryable ``shutting_down`` error, then close the WebSockets with 1001 (going away).

It runs before uvicorn's own shutdown (``server.cli.GatewayServer``), which would otherwise close
every WebSocket at once with 1012 and cut their streams off without a terminal event.
"""

from __future__ import annotations

import asyncio
import logging

from server.hub import StreamHub
from server.transports.ws import WebSocketEndpoint

log = logging.getLogger("tokenwire.shutdown")

FLUSH_SECONDS = 2.0  # for terminal events and close frames to reach clients that keep reading
CUT_FLUSH_SECONDS = 0.5  # the same, when a second interrupt asked not to wait


class Shutdown:
    def __init__(self, hub: StreamHub, websockets: WebSocketEndpoint, grace_seconds: float) -> None:
        self.hub = hub
        self.websockets = websockets
        self.grace_seconds = grace_seconds

    async def drain(self) -> None:
        hub = self.hub
        hub.draining = True
        if hub.running:
            log.info("shutting down: %d streams may run for %g s more", len(hub.running), self.grace_seconds)
        await self._wait_streams(self.grace_seconds)
        await self._end(FLUSH_SECONDS)

    async def cut(self) -> None:
        """The drain without its grace period (a second Ctrl-C)."""
        self.hub.draining = True
        await self._end(CUT_FLUSH_SECONDS)

    async def _end(self, flush_seconds: float) -> None:
        """Every stream ends now with ``shutting_down``; the sockets close 1001 once that had
        ``flush_seconds`` to go out, and their close frames as long again."""
        self.end_streams()
        await self._wait_streams(flush_seconds)
        await self.websockets.close_all(1001, "server shutting down", flush_seconds)

    def end_streams(self) -> None:
        for stream in list(self.hub.running):
            stream.shut_down()

    async def _wait_streams(self, seconds: float) -> None:
        if self.hub.running:
            await asyncio.wait([asyncio.ensure_future(s.wait()) for s in self.hub.running], timeout=seconds)
