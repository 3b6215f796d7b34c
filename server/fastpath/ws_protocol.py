"""uvicorn's WebSocket protocol (websockets-sansio) with a synchronous write of text frames.

The gateway sends one text message per relayed chunk. Through ASGI each one is a coroutine
call, a ``str`` re-encoded to bytes and a websockets ``Frame`` object; profiles put that at a
fifth of the gateway's CPU per chunk. This protocol puts itself in the scope's extensions
(``FRAMES_EXTENSION``) so the gateway can write finished frames straight to the transport, all
the messages of one event-loop iteration in one write. ASGI stays the only way in and out for
everything else (accept, receive, close), and a server without the extension is served through
plain ASGI sends.

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
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.exceptions import ProtocolError
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from server.config import ServerConfig
from server.edge.guard import EdgeGuard
from server.edge.ratelimit import TokenBucket

FRAMES_EXTENSION = "tokenwire.frames"
_FIN_TEXT = 0x80 | Opcode.TEXT  # the first header byte: FIN, opcode text
CONTROL_OPCODES = (Opcode.PING, Opcode.PONG)  # budgeted; a close frame ends the connection anyway


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
