"""The measuring clients: direct to the fake upstream, and through the gateway over WebSocket and SSE.

All three are bare ``asyncio.Protocol`` implementations (HTTP/1.1 with chunked bodies, and
RFC 6455 framing), so the client does the same cheap work whichever way it reads and is not the
bottleneck: every read is timestamped once with ``time.perf_counter()`` in ``data_received``,
before any parsing. (The ``websockets`` and aiohttp clients cost several times more CPU per
message; see docs/benchmarks.md.)

A ``StreamResult`` records when its request was written, when each content arrival came and how
many upstream chunks it carried (a merged gateway chunk carries ``seq - from_seq + 1``), and checks
that every chunk's text is the expected one, in order, with nothing missing. A ``PartsResult``
does the same for a tool call's argument fragments or reasoning deltas (``new_result`` picks).
"""

from bench.clients.http import HttpConnection
from bench.clients.lag import LagMonitor
from bench.clients.record import Batch, Dialect, PartsResult, StreamResult, new_result, perf
from bench.clients.requests import (
    PROMPT,
    direct_request,
    gateway_body,
    http_post,
    read_mode,
    sse_request,
    ui_chat_request,
)
from bench.clients.websocket import WsConnection

__all__ = [
    "PROMPT",
    "Batch",
    "Dialect",
    "HttpConnection",
    "LagMonitor",
    "PartsResult",
    "StreamResult",
    "WsConnection",
    "direct_request",
    "gateway_body",
    "http_post",
    "new_result",
    "perf",
    "read_mode",
    "sse_request",
    "ui_chat_request",
]
