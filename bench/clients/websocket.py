"""The WebSocket (RFC 6455) client: many streams per socket to the gateway."""

from __future__ import annotations

import asyncio
import base64
import os
import zlib
from typing import cast

from bench.clients.messages import Message, decode_message, decode_part_message, dispatch
from bench.clients.record import StreamResult, perf

_MASK = b"\x00\x00\x00\x00"  # a client must mask; a zero key keeps the payload as it is


def _frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + _MASK + payload


class WsConnection(asyncio.Protocol):
    """One WebSocket to the gateway; ``streams`` routes messages by stream id.

    ``deflate=True`` offers permessage-deflate, as browsers do (the server decides). ``parts=True``
    decodes the v1.1 parts' fields too, for tool-call and reasoning streams.
    """

    def __init__(self, host: str, path: str = "/v1/ws", deflate: bool = False, parts: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.host, self.path, self.offer_deflate = host, path, deflate
        self.decode = decode_part_message if parts else decode_message
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.streams: dict[str, StreamResult] = {}
        self.buffer = bytearray()
        self.upgraded = False
        self.deflate: zlib._Decompress | None = None
        self.fragments: list[bytes] = []
        self.fragment_compressed = False
        self.messages = 0

    @classmethod
    async def open(
        cls, host: str, port: int, *, deflate: bool = False, timeout: float = 30, parts: bool = False
    ) -> WsConnection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(
            lambda: cls(f"{host}:{port}", deflate=deflate, parts=parts), host, port
        )
        await asyncio.wait_for(asyncio.shield(protocol.ready), timeout)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        key = base64.b64encode(os.urandom(16)).decode()
        extensions = (
            "sec-websocket-extensions: permessage-deflate; client_max_window_bits\r\n"
            if self.offer_deflate
            else ""
        )
        self.transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nhost: {self.host}\r\nupgrade: websocket\r\n"
                f"connection: Upgrade\r\nsec-websocket-key: {key}\r\nsec-websocket-version: 13\r\n"
                f"{extensions}\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        t = perf()
        for stream in list(self.streams.values()):
            stream.fail(t, f"socket closed ({exc or 'by the server'})")
        self.streams.clear()
        self.transport = None
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before ready"))
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.write(_frame(0x8, b"\x03\xe8"))
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def send(self, payload: bytes) -> None:
        if self.transport is not None:
            self.transport.write(_frame(0x1, payload))

    def start(self, stream: StreamResult, payload: bytes) -> None:
        """Send a ``start`` (already encoded) for ``stream``."""
        if self.transport is None:
            stream.fail(perf(), "socket closed")
            return
        self.streams[stream.sid] = stream
        stream.t_sent = perf()
        self.transport.write(_frame(0x1, payload))

    def cancel(self, sid: str) -> None:
        self.send(b'{"type":"cancel","id":"%s"}' % sid.encode())

    def data_received(self, data: bytes) -> None:
        t = perf()
        buffer = self.buffer
        buffer += data
        pos = 0
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            if b" 101 " not in head.split(b"\r\n", 1)[0] + b" ":
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode()))
                self.abort()
                return
            if b"permessage-deflate" in head:
                self.deflate = zlib.decompressobj(wbits=-15)
            self.upgraded = True
            pos = end + 4
        size = len(buffer)
        while size - pos >= 2:
            b0, b1 = buffer[pos], buffer[pos + 1]
            n = b1 & 0x7F
            header = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
                header = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
                header = 10
            if size - pos < header + n:
                break
            payload = bytes(buffer[pos + header : pos + header + n])
            pos += header + n
            opcode = b0 & 0x0F
            if opcode in (1, 2):
                if b0 & 0x80:
                    self._message(payload, bool(b0 & 0x40), t)
                else:
                    self.fragments, self.fragment_compressed = [payload], bool(b0 & 0x40)
            elif opcode == 0:
                self.fragments.append(payload)
                if b0 & 0x80:
                    whole, self.fragments = b"".join(self.fragments), []
                    self._message(whole, self.fragment_compressed, t)
            elif opcode == 9 and self.transport is not None:  # ping
                self.transport.write(_frame(0xA, payload))
            elif opcode == 8 and self.transport is not None:  # close
                self.transport.write(_frame(0x8, payload[:2]))
                self.transport.close()
        del buffer[:pos]

    def _message(self, payload: bytes, compressed: bool, t: float) -> None:
        if compressed:
            assert self.deflate is not None
            payload = self.deflate.decompress(payload + b"\x00\x00\xff\xff")
        self.messages += 1
        self.on_message(self.decode(payload), t)

    def on_message(self, message: Message, t: float) -> None:
        """A decoded server message, read at ``t``: routed to its stream."""
        sid = message.id
        stream = self.streams.get(sid) if sid is not None else None
        if stream is None:
            if message.type == "ready" and not self.ready.done():
                self.ready.set_result(None)
            return
        dispatch(stream, message, t)
        if stream.ended:
            del self.streams[stream.sid]
