"""Tiny HTTP servers on raw asyncio sockets for the HTTP client's tests: each writes the exact
bytes of a case (framing split across writes, truncations, resets, garbage) and records what the
client sent and whether it hung up.

A server runs one *handler* per accepted connection, ``async def handler(peer: Peer) -> None``;
the connection is closed when the handler returns. ``Peer.request()`` reads one request (None
when the client closed), ``Peer.until_gone()`` waits for the client to close, and
``Peer.saw_hang_up()`` tells a test whether the client closed within a second.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from providers.http.client import HttpClient, Response


@dataclass
class Received:
    """One request as the server read it."""

    line: str  # the request line
    method: str
    target: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    head: bytes  # the raw head, through the blank line


@dataclass
class Peer:
    """The server's side of one accepted connection."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    requests: list[Received] = field(default_factory=list)
    gone: asyncio.Event = field(default_factory=asyncio.Event)  # the client closed (FIN or RST)

    async def request(self) -> Received | None:
        """The next request, or None when the client closed the connection."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.gone.set()
            return None
        line, *fields = head.decode("latin-1").split("\r\n")[:-2]
        method, target, _ = line.split(" ")
        headers: dict[str, str] = {}
        for text in fields:
            name, _, value = text.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        received = Received(line, method, target, headers, body, head)
        self.requests.append(received)
        return received

    async def send(self, *parts: bytes, pause: float = 0.0) -> None:
        """Write each part as a TCP write of its own, ``pause`` seconds apart."""
        for index, part in enumerate(parts):
            if index and pause:
                await asyncio.sleep(pause)
            self.writer.write(part)
            await self.writer.drain()

    async def until_gone(self) -> None:
        """Discard what the client sends until it closes the connection."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass
        self.gone.set()

    async def saw_hang_up(self, within: float = 1.0) -> bool:
        """Whether the client closes the connection within ``within`` seconds (the handler must
        be reading: ``request()`` or ``until_gone()``)."""
        try:
            async with asyncio.timeout(within):
                await self.gone.wait()
        except TimeoutError:
            return False
        return True

    def reset(self) -> None:
        """Abort with a TCP RST (SO_LINGER 0)."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


Handler = Callable[[Peer], Awaitable[None]]


class RawServer:
    """A TCP (or TLS) server on 127.0.0.1 running ``handler`` for each accepted connection."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.peers: list[Peer] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def accepted(self) -> int:
        return len(self.peers)

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every connection; re-raise what a handler raised."""
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        for result in results:
            if isinstance(result, Exception):
                raise result

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.append(task)
        peer = Peer(reader, writer)
        self.peers.append(peer)
        try:
            await self.handler(peer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away or the test ended
        finally:
            writer.close()


class Serve(Protocol):
    async def __call__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> RawServer: ...


def ok(body: bytes = b"ok", *headers: str, status: str = "200 OK") -> bytes:
    """A whole response with a content-length."""
    lines = [f"HTTP/1.1 {status}", *headers, f"content-length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"


def answer(*responses: bytes) -> Handler:
    """Answer the requests on each connection with ``responses`` in turn (the last one repeats),
    keeping the connection open until the client closes it."""

    async def handler(peer: Peer) -> None:
        count = 0
        while await peer.request() is not None:
            await peer.send(responses[min(count, len(responses) - 1)])
            count += 1

    return handler


async def read_all(response: Response) -> list[bytes]:
    """Every non-empty piece ``read_some`` returns, until b"" (the end)."""
    pieces = []
    while data := await response.read_some():
        pieces.append(data)
    return pieces


async def get(client: HttpClient, url: str, **kwargs: str) -> Response:
    return await client.request("GET", url, {}, b"", **kwargs)
