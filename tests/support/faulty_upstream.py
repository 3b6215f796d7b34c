"""A fake provider upstream on raw TCP, for faults an HTTP server library will not produce: a
reset (RST) mid-body, a close before the status line, broken chunked framing, a line that never
ends. Every byte on the wire is the test's, and every connection records who closed it, so a
test can check that the gateway hung up (or handed the connection back to its pool finished).

A *script* answers one request: ``async def script(conn: Connection) -> None``. It writes with
``await conn.send(...)``, and ends the exchange by returning (the response is complete and the
connection stays open for keep-alive), ``conn.close()`` (FIN), ``conn.reset()`` (RST) or
``await conn.hold()`` (wait for the gateway to hang up). ``send`` and ``hold`` raise
``PeerGone`` when the gateway has closed the connection; the upstream treats that as the end of
the script.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal, cast

Script = Callable[["Connection"], Awaitable[None]]

HEAD_LIMIT = 64 * 1024


class PeerGone(Exception):
    """The gateway closed the connection."""


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection(asyncio.Protocol):
    """One accepted TCP connection; serves the requests that arrive on it, one script each."""

    def __init__(self, upstream: FaultyUpstream) -> None:
        self.upstream = upstream
        self.requests: list[Request] = []
        self.sent = 0  # bytes handed to the transport
        self.closed = asyncio.Event()
        self.closed_by: Literal["gateway", "upstream"] | None = None
        self.responding = False  # a script is running: a response is incomplete
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._eof = False
        self._arrived = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self.task: asyncio.Task[None] | None = None

    @property
    def released(self) -> bool:
        """Closed, or idle between requests (a finished response, kept alive)."""
        return self.closed.is_set() or not self.responding

    # ---- for scripts ---------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Write ``data`` and wait while the peer's window is full (TCP flow control)."""
        # is_closing: a failed write (the peer's RST) closes the transport before connection_lost
        # runs, and writing on would only log warnings.
        if self.closed.is_set() or self._transport is None or self._transport.is_closing():
            raise PeerGone
        self._transport.write(data)
        self.sent += len(data)
        await asyncio.sleep(0)  # a loop of sends must let the loop run even when nothing blocks
        await self._writable.wait()
        if self.closed.is_set() or self._transport.is_closing():
            raise PeerGone

    async def hold(self) -> None:
        """Keep the connection open, sending nothing, until the gateway closes it."""
        await self.closed.wait()
        raise PeerGone

    def close(self) -> None:
        """Close after what was written (FIN)."""
        if self._transport is not None and not self.closed.is_set():
            self.closed_by = self.closed_by or "upstream"
            self._transport.close()

    def reset(self) -> None:
        """Abort with a TCP RST (SO_LINGER 0), dropping anything not yet sent."""
        if self._transport is not None and not self.closed.is_set():
            self.closed_by = self.closed_by or "upstream"
            sock = self._transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._transport.abort()

    # ---- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self.upstream.connections.append(self)
        self.task = asyncio.get_running_loop().create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._arrived.set()

    def eof_received(self) -> bool:
        self._gone()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()
        self.closed.set()
        self._arrived.set()
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def _gone(self) -> None:
        self._eof = True
        self.closed_by = self.closed_by or "gateway"
        self._arrived.set()

    # ---- serving -------------------------------------------------------------------------

    async def _serve(self) -> None:
        while (request := await self._next_request()) is not None:
            self.requests.append(request)
            self.upstream.requests.append(request)
            script = self.upstream.next_script()
            self.responding = True
            try:
                await script(self)
            except PeerGone:
                pass
            finally:
                self.responding = False

    async def _next_request(self) -> Request | None:
        while True:
            request = self._parse()
            if request is not None:
                return request
            if self._eof or self.closed.is_set():
                return None
            self._arrived.clear()
            await self._arrived.wait()

    def _parse(self) -> Request | None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            assert len(self._buffer) < HEAD_LIMIT, "request head too long"
            return None
        lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        assert "chunked" not in headers.get("transfer-encoding", ""), "chunked request bodies are not read"
        length = int(headers.get("content-length", "0"))
        if len(self._buffer) < end + 4 + length:
            return None
        body = bytes(self._buffer[end + 4 : end + 4 + length])
        del self._buffer[: end + 4 + length]
        return Request(method, path.split("?", 1)[0], headers, body)

    def abort(self) -> None:
        """At the end of a test: drop the connection, whatever state it is in."""
        if self._transport is not None and not self.closed.is_set():
            self.closed_by = self.closed_by or "upstream"
            self._transport.abort()


async def _unscripted(conn: Connection) -> None:
    await conn.send(response(500, b'{"error":{"message":"no scripted reply"}}'))


class FaultyUpstream:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.connections: list[Connection] = []
        self.scripts: deque[Script] = deque()
        self.url = ""
        self._server: asyncio.Server | None = None

    def reply(self, *scripts: Script) -> None:
        """Answer the next requests (in arrival order) with these scripts."""
        self.scripts.extend(scripts)

    def next_script(self) -> Script:
        return self.scripts.popleft() if self.scripts else _unscripted

    async def start(self) -> str:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self), "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        """Close everything; a script or request parser that failed fails the test here."""
        if self._server is None:
            return
        self._server.close()
        for conn in self.connections:
            conn.abort()
        await self._server.wait_closed()
        tasks = [conn.task for conn in self.connections if conn.task is not None]
        await asyncio.sleep(0)  # let scripts see the connections go
        for task in tasks:
            task.cancel()
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, Exception):
                raise result

    def released(self) -> bool:
        return all(conn.released for conn in self.connections)

    async def wait_released(self, timeout: float = 2) -> None:
        """Every connection is closed or idle between requests (kept alive, nothing owed)."""
        async with asyncio.timeout(timeout):
            while not self.released():
                await asyncio.sleep(0.01)


# ---- building raw HTTP/1.1 responses ---------------------------------------------------------

SSE = {"content-type": "text/event-stream; charset=utf-8"}
LAST_CHUNK = b"0\r\n\r\n"


def head(status: int = 200, headers: Mapping[str, str] | None = None) -> bytes:
    """A status line and headers; the caller chooses the body framing (or none)."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", "date: Thu, 01 Jan 2026 00:00:00 GMT"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def sse_head(status: int = 200) -> bytes:
    """The head of a chunked event stream, the way the providers send one."""
    return head(status, {**SSE, "transfer-encoding": "chunked", "connection": "keep-alive"})


def chunked(*pieces: bytes) -> bytes:
    """Each piece as one chunk of a chunked body."""
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces if piece)


def response(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> bytes:
    """A complete response with a content-length body (JSON unless ``headers`` says otherwise)."""
    fields = {"content-type": "application/json", **(headers or {}), "content-length": str(len(body))}
    return head(status, fields) + body
