"""A fake provider upstream: a real aiohttp server on a free port that records every request
and answers with scripted raw bytes (status, headers, body pieces with pauses), so tests speak
each provider's exact wire format and can watch the gateway hang up."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from websockets.asyncio.client import connect

from tests.support.wsclient import collect, recv, send, start


@dataclass
class Reply:
    """One scripted response. ``pieces`` are written as they are, ``pause`` seconds apart;
    ``hang`` keeps the response open afterwards (until the client goes away); ``cut`` drops the
    connection without finishing the body."""

    pieces: list[bytes] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
    pause: float = 0.0
    hang: bool = False
    cut: bool = False


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeUpstream:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.replies: deque[Reply] = deque()
        self.default = Reply(pieces=[b"data: [DONE]\n\n"])
        self.disconnected = asyncio.Event()  # set when a client hung up mid-response
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.in_flight = 0  # requests being answered right now (the leak check wants 0 after a test)

    def reply(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def start(self) -> str:
        app = web.Application()
        app.middlewares.append(self._count_in_flight)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _count_in_flight(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.in_flight += 1
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Recorded(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        reply = self.replies.popleft() if self.replies else self.default
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        await response.prepare(request)
        try:
            for i, piece in enumerate(reply.pieces):
                if i and reply.pause:
                    await asyncio.sleep(reply.pause)
                await response.write(piece)
            while reply.hang:
                await asyncio.sleep(0.01)
                await response.write(b"")  # notices a closed connection
                if request.transport is None or request.transport.is_closing():
                    raise ConnectionResetError
        except (ConnectionResetError, ConnectionError):
            self.disconnected.set()
            return response
        if reply.cut:
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write_eof()
        return response


async def cancel_reaches_upstream(ws_url: str, upstream: FakeUpstream, provider: str, first_text: str) -> Any:
    """Start a stream whose upstream hangs after its first text, cancel it once that text has
    arrived, and check the upstream connection is closed within 2 s. Returns the `done`."""
    async with connect(ws_url) as ws:
        await recv(ws)
        await start(ws, "a", provider=provider, prompt="hi")
        assert (await recv(ws))["type"] == "start"
        assert (await recv(ws))["content"] == first_text
        await send(ws, {"type": "cancel", "id": "a"})
        async with asyncio.timeout(2):
            await upstream.disconnected.wait()
        per_id, _ = await collect(ws, {"a"})
    done = per_id["a"][-1]
    assert (done["type"], done["finish_reason"], done["content"]) == ("done", "cancelled", first_text)
    return done
