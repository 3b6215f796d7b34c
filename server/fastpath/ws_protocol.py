"""uvicorn's WebSocket protocol (websockets-sansio) with a synchronous write of text frames.

The gateway sends one text message per relayed chunk. Through ASGI each one is a coroutine
call, a ``str`` re-encoded to bytes and a websockets ``Frame`` object; profiles put that at a
fifth of the gateway's CPU per chunk. This protocol puts itself in the scope's extensions
(``FRAMES_EXTENSION``) so the gateway can write finished frames straight to the transport, all
the messages of one event-loop iteration in one write. ASGI stays the only way in and out for
everything else (accept, receive, close), and a server without the extension is served through
plain ASGI sends.

Reading is the mirror image: a client's message usually arrives as one masked text frame, alone
in its read. Such a frame is unmasked here and handed to uvicorn's own delivery to the app,
without websockets' generator-based parser and its frame objects, which took a fifth of the time
from a ``start`` frame's arrival to the upstream request. Anything else (a fragment, a control
frame, several frames or part of one, a frame over the size limit, an extension) goes through
websockets as before.

It also holds each client to a budget of control frames (ping, pong): websockets answers every
ping with a pong, and a client flooding pings slowed every other stream tenfold.

And it breaks the reference cycles uvicorn and websockets leave behind a closed socket (about
90 objects each; server.fastpath.http_protocol breaks the HTTP protocol's), so its memory is freed at once
rather than at the next full garbage collection, which under steady load can be minutes away.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Generator
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.exceptions import ProtocolError
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

try:  # websockets' own choice (websockets.frames): its C unmasking, else its Python one
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - a build without the C extension
    from websockets.utils import apply_mask

from server.config import ServerConfig
from server.edge.guard import EdgeGuard
from server.edge.ratelimit import TokenBucket

FRAMES_EXTENSION = "tokenwire.frames"
_FIN_TEXT = 0x80 | Opcode.TEXT  # the first header byte: FIN, opcode text
# Where websockets' parser waits between frames (websockets.protocol.Protocol.parse).
_AWAITING_FRAME = StreamReader.at_eof.__code__
CONTROL_OPCODES = (Opcode.PING, Opcode.PONG)  # budgeted; a close frame ends the connection anyway


def lone_masked_text(data: bytes, limit: int | None) -> bytes | None:
    """The unmasked payload when ``data`` is exactly one masked, unfragmented text frame with
    no RSV bits and a payload of at most ``limit`` bytes (None: no limit); else None."""
    if len(data) < 6 or data[0] != _FIN_TEXT or not data[1] & 0x80:
        return None
    size, start = data[1] & 0x7F, 2
    if size == 126:
        size, start = int.from_bytes(data[2:4]), 4
    elif size == 127:
        return None  # 64 KiB or more: not a message worth a fast path
    if len(data) != start + 4 + size or (limit is not None and size > limit):
        return None
    return apply_mask(data[start + 4 :], data[start : start + 4])


def between_frames(parser: Generator[None, None, None]) -> bool:
    """Whether websockets' parser waits for the first byte of a frame, not for the rest of one:
    a read may end anywhere, even right after a frame's header, leaving nothing buffered."""
    inner: Any = parser  # generators all the way down (gi_yieldfrom: the one delegated to)
    while (delegate := inner.gi_yieldfrom) is not None:
        inner = delegate
    return inner.gi_code is _AWAITING_FRAME


def text_frames(payloads: list[bytes]) -> bytes:
    """Unmasked, unfragmented text frames (RFC 6455 §5.2) for UTF-8 payloads, concatenated."""
    parts: list[bytes] = []
    for payload in payloads:
        size = len(payload)
        if size < 126:
            parts.append(bytes((_FIN_TEXT, size)))
        elif size < 1 << 16:
            parts.append(struct.pack("!BBH", _FIN_TEXT, 126, size))
        else:
            parts.append(struct.pack("!BBQ", _FIN_TEXT, 127, size))
        parts.append(payload)
    return b"".join(parts)


class ControlFrameFlood(ProtocolError):
    """Ends websockets' parser at a control frame past the budget (the close frame is queued)."""


class BudgetedConnection(ServerProtocol):
    """websockets' server protocol, failing the connection with 1008 at a ping or pong frame past
    ``budget``, before it queues a pong for it."""

    budget: TokenBucket

    @classmethod
    def adopt(cls, conn: ServerProtocol, budget: TokenBucket) -> BudgetedConnection:
        """``conn`` itself, made one of these (the settings its maker gave it kept)."""
        conn.__class__ = cls
        assert isinstance(conn, cls)
        conn.budget = budget
        return conn

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode in CONTROL_OPCODES and self.budget.take(time.monotonic()):
            self.fail(CloseCode.POLICY_VIOLATION, "too many control frames")
            raise ControlFrameFlood("too many control frames")
        super().recv_frame(frame)


class FrameWritingProtocol(WebSocketsSansIOProtocol):
    """``uvicorn.Config(ws=FrameWritingProtocol)``, bound to a server's ``edge`` by
    server.fastpath.probe: the stock protocol, plus a ``DirectWriter`` (server.fastpath.writer)
    of text frames and the control-frame budget of ``edge``."""

    edge: ClassVar[EdgeGuard] = EdgeGuard(ServerConfig())  # a server's own: see probe.server_protocols
    reads_directly: ClassVar[bool] = False  # this websockets has what _lone_text reads (the probe)

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = self.edge.config
        budget = TokenBucket(limits.control_frames_per_second, limits.control_frames_burst, time.monotonic())
        self.conn = BudgetedConnection.adopt(self.conn, budget)

    def data_received(self, data: bytes) -> None:
        payload = self._lone_text(data)
        if payload is None:
            super().data_received(data)
            return
        # What websockets' parser and uvicorn's handle_text would do with this one frame.
        self.curr_msg_data_type = "text"
        self.frames = [payload]
        self.send_receive_event_to_app()

    def _lone_text(self, data: bytes) -> bytes | None:
        """``data``'s payload when it is one whole text frame websockets would pass on as it is:
        the connection open, the parser waiting for a frame's first byte, no fragmented
        message under way, no extension and no frame logging."""
        conn = self.conn
        if (
            not self.reads_directly
            or conn.state is not State.OPEN
            or conn.parser_exc is not None
            or not between_frames(conn.parser)
            or conn.current_size is not None
            or conn.extensions
            or conn.debug
        ):
            return None
        limit = conn.max_message_size
        if conn.max_fragment_size is not None:
            limit = conn.max_fragment_size if limit is None else min(limit, conn.max_fragment_size)
        return lone_masked_text(data, limit)

    def handle_parser_exception(self) -> None:
        if isinstance(self.conn.parser_exc, ControlFrameFlood):
            self.edge.closed("control_frames", self.client)
        super().handle_parser_exception()

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # absent when the handshake was refused
        if scope is not None:
            scope["extensions"][FRAMES_EXTENSION] = self

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # websockets' parser is a generator holding its protocol, and the scope holds this one.
        self.conn.parser.close()
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"].pop(FRAMES_EXTENSION, None)

    def can_write_now(self) -> bool:
        """Open, accepted, not closing, and the transport's buffer below its high-water mark."""
        return (
            self.handshake_complete
            and self.initial_response is None
            and not self.close_sent
            and not self.disconnected
            and self.writable.is_set()
            and self.conn.state is State.OPEN
            and not self.transport.is_closing()
        )

    def write(self, payloads: list[bytes]) -> None:
        """Write the payloads as text frames; only when ``can_write_now()``, and each payload
        must be valid UTF-8 (the gateway's own JSON encoding)."""
        self.transport.write(text_frames(payloads))
