"""The measuring clients: direct to the fake upstream, and through the gateway over WebSocket and SSE.

All three are bare ``asyncio.Protocol`` implementations (HTTP/1.1 with chunked bodies, and
RFC 6455 framing), so the client does the same cheap work whichever way it reads and is not the
bottleneck: every read is timestamped once with ``time.perf_counter()`` in ``data_received``,
before any parsing. (The ``websockets`` and aiohttp clients cost several times more CPU per
message; see docs/benchmarks.md.)

A ``StreamResult`` records when its request was written, when each content arrival came and how
many upstream chunks it carried (a merged gateway chunk carries ``seq - from_seq + 1``), and checks
that every chunk's text is the expected one, in order, with nothing missing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
import zlib
from collections.abc import Callable
from typing import Literal, cast

import msgspec

from bench.scenario import Scenario, full_text

Dialect = Literal["openai", "anthropic"]
perf = time.perf_counter

# ---- one stream's record -----------------------------------------------------------------------


class StreamResult:
    """What one stream delivered, when, and whether it was complete and in order."""

    __slots__ = (
        "_full",
        "_fullb",
        "arrivals",
        "counts",
        "ended",
        "error",
        "next_seq",
        "on_end",
        "scenario",
        "sid",
        "size",
        "t_end",
        "t_sent",
    )

    def __init__(self, sid: str, scenario: Scenario) -> None:
        self.sid = sid
        self.scenario = scenario
        self.size = scenario.size
        self._full = full_text(scenario)
        self._fullb = b""
        self.t_sent = 0.0
        self.t_end = 0.0
        self.arrivals: list[float] = []  # perf_counter() of each read that carried content
        self.counts: list[int] = []  # upstream chunks carried by that arrival
        self.next_seq = 1  # the seq of the next expected chunk (chunk i has seq i + 1)
        self.error: str | None = None
        self.ended = False
        self.on_end: Callable[[StreamResult], None] | None = None

    # -- feeding

    def chunk(self, t: float, first: int, last: int, content: str) -> None:
        """A gateway chunk covering ``first..last`` (``from_seq``..``seq``)."""
        if self.ended:
            return
        if first != self.next_seq or last < first:
            self.fail(t, f"expected seq {self.next_seq}, got {first}..{last}")
            return
        size = self.size
        if content != self._full[(first - 1) * size : last * size]:
            self.fail(t, f"wrong text in seq {first}..{last}")
            return
        self.next_seq = last + 1
        arrivals = self.arrivals
        if arrivals and arrivals[-1] == t:  # same read: one arrival
            self.counts[-1] += last - first + 1
        else:
            arrivals.append(t)
            self.counts.append(last - first + 1)

    def text(self, t: float, content: bytes) -> None:
        """A direct upstream content chunk (one upstream chunk)."""
        if self.ended:
            return
        seq = self.next_seq
        if not self._fullb:
            self._fullb = self._full.encode()
        size = self.size
        if content != self._fullb[(seq - 1) * size : seq * size]:
            self.fail(t, f"wrong text in chunk {seq - 1}: {content[:32]!r}")
            return
        self.next_seq = seq + 1
        arrivals = self.arrivals
        if arrivals and arrivals[-1] == t:
            self.counts[-1] += 1
        else:
            arrivals.append(t)
            self.counts.append(1)

    def finish(self, t: float, terminal_seq: int | None = None) -> None:
        if self.ended:
            return
        n = self.scenario.chunks
        if self.next_seq != n + 1:
            self.fail(t, f"ended after {self.next_seq - 1} of {n} chunks")
            return
        if terminal_seq is not None and terminal_seq != n + 1:
            self.fail(t, f"terminal seq {terminal_seq}, expected {n + 1}")
            return
        self._end(t)

    def fail(self, t: float, reason: str) -> None:
        if self.ended:
            return
        self.error = reason
        self._end(t)

    def _end(self, t: float) -> None:
        self.ended = True
        self.t_end = t
        if self.on_end is not None:
            self.on_end(self)

    # -- results

    @property
    def ok(self) -> bool:
        return self.ended and self.error is None

    @property
    def delivered(self) -> int:
        """Upstream chunks delivered in order."""
        return self.next_seq - 1

    @property
    def ttft(self) -> float | None:
        return self.arrivals[0] - self.t_sent if self.arrivals else None

    def gaps(self) -> list[float]:
        a = self.arrivals
        return [a[i] - a[i - 1] for i in range(1, len(a))]

    def first_indices(self) -> list[int]:
        """The index (0-based) of the first upstream chunk each arrival carried."""
        out, index = [], 0
        for count in self.counts:
            out.append(index)
            index += count
        return out

    def delays(self, written: list[float]) -> list[float]:
        """Per arrival: read time - when the upstream wrote the arrival's first chunk.

        ``written[i]`` is the upstream's write time of chunk ``i`` (same clock: CLOCK_MONOTONIC).
        """
        return [t - written[i] for t, i in zip(self.arrivals, self.first_indices(), strict=True)]


class Batch:
    """Resolves when every stream added to it has ended."""

    def __init__(self) -> None:
        self.left = 0
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.streams: list[StreamResult] = []

    def add(self, stream: StreamResult) -> StreamResult:
        self.left += 1
        self.streams.append(stream)
        stream.on_end = self._ended
        return stream

    def _ended(self, _: StreamResult) -> None:
        self.left -= 1
        if self.left == 0 and not self.future.done():
            self.future.set_result(None)

    async def wait(self, timeout: float) -> bool:
        """True when all ended in time; the others are failed with a timeout."""
        if self.left == 0:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self.future), timeout)
            return True
        except TimeoutError:
            t = perf()
            for stream in self.streams:
                stream.fail(t, "timed out")
            return False


# ---- requests ----------------------------------------------------------------------------------

PROMPT = "Benchmark prompt."


def direct_request(dialect: Dialect, scenario: Scenario, host: str) -> bytes:
    """The request the gateway itself sends upstream (same body and headers, give or take)."""
    messages = [{"role": "user", "content": PROMPT}]
    if dialect == "openai":
        path = "/v1/chat/completions"
        payload: dict[str, object] = {
            "messages": messages,
            "model": scenario.model,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        auth = "authorization: Bearer sk-bench\r\n"
    else:
        path = "/v1/messages"
        payload = {"model": scenario.model, "max_tokens": 4096, "messages": messages, "stream": True}
        auth = "x-api-key: sk-bench\r\nanthropic-version: 2023-06-01\r\n"
    return http_post(path, host, json.dumps(payload).encode(), auth)


def gateway_body(sid: str, dialect: Dialect, scenario: Scenario, *, ws: bool) -> bytes:
    body: dict[str, object] = {"id": sid, "provider": dialect, "model": scenario.model, "prompt": PROMPT}
    if ws:
        body = {"type": "start", **body}
    return json.dumps(body, separators=(",", ":")).encode()


def sse_request(sid: str, dialect: Dialect, scenario: Scenario, host: str) -> bytes:
    return http_post("/v1/streams", host, gateway_body(sid, dialect, scenario, ws=False))


def http_post(path: str, host: str, body: bytes, extra_headers: str = "") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"accept: text/event-stream\r\n{extra_headers}content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# ---- gateway messages --------------------------------------------------------------------------


class _Message(msgspec.Struct):
    type: str
    id: str | None = None
    seq: int | None = None
    from_seq: int | None = None
    content: str | None = None
    code: str | None = None
    message: str | None = None


_decode_message = msgspec.json.Decoder(_Message).decode


def _dispatch(stream: StreamResult, message: _Message, t: float) -> None:
    kind = message.type
    if kind == "chunk":
        seq = cast(int, message.seq)
        first = seq if message.from_seq is None else message.from_seq
        stream.chunk(t, first, seq, message.content or "")
    elif kind == "done":
        stream.finish(t, message.seq)
    elif kind == "error":
        stream.fail(t, f"{message.code}: {message.message}")


def _gateway_message(stream: StreamResult, data: bytes | bytearray, t: float) -> None:
    _dispatch(stream, _decode_message(data), t)


# ---- HTTP/1.1 with SSE bodies ------------------------------------------------------------------

_OPENAI_TEXT = b'"delta":{"content":"'
_ANTHROPIC_TEXT = b'"text_delta","text":"'


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection running one streamed request at a time.

    ``mode`` says how the SSE body is read: ``openai``/``anthropic`` straight from the upstream
    (the text is cut out of the bytes), ``gateway`` for ``POST /v1/streams`` (JSON decoded).
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buffer = bytearray()
        self.events = bytearray()  # de-chunked body not yet split into events
        self.stream: StreamResult | None = None
        self.mode = "openai"
        self.in_head = False
        self.status = 0
        self.chunked = False
        self.length = -1  # content-length, or -1
        self.state = 0  # chunked: 0 size line, 1 data, 2 CRLF after data, 3 last CRLF
        self.left = 0
        self.error_body = bytearray()
        self._idle: asyncio.Future[None] | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stream is not None:
            self.stream.fail(perf(), f"connection lost ({exc or 'closed by the server'})")
            self.stream = None
        self.transport = None
        self._set_idle()
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    @property
    def busy(self) -> bool:
        return self.stream is not None

    async def wait_idle(self, timeout: float = 30) -> None:
        """Until the current response has been read to its end (the next request may go)."""
        if self._idle is not None and not self._idle.done():
            await asyncio.wait_for(asyncio.shield(self._idle), timeout)

    def _set_idle(self) -> None:
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    def request(self, stream: StreamResult, request: bytes, mode: str) -> None:
        if self.transport is None:
            stream.fail(perf(), "connection closed")
            return
        if self.stream is not None:
            raise RuntimeError("one request at a time")
        self.stream, self.mode = stream, mode
        self._idle = asyncio.get_running_loop().create_future()
        self.in_head, self.status, self.chunked, self.length, self.state = True, 0, False, -1, 0
        self.events.clear()
        self.error_body.clear()
        stream.t_sent = perf()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        t = perf()
        buffer = self.buffer
        buffer += data
        pos = 0
        if self.in_head:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self._head(bytes(buffer[:end]))
            pos = end + 4
        if self.chunked:
            pos = self._dechunk(buffer, pos)
        else:
            body = buffer[pos:]
            pos = len(buffer)
            self._body(bytes(body), False)
            if self.length >= 0:
                self.length -= len(body)
                if self.length <= 0:
                    self._body(b"", True)
        del buffer[:pos]
        if self.events:
            self._events(t)

    def _head(self, head: bytes) -> None:
        self.in_head = False
        lines = head.split(b"\r\n")
        self.status = int(lines[0].split(b" ", 2)[1])
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                self.chunked = True
            elif name == b"content-length":
                self.length = int(value)
        if not self.chunked and self.length == 0:
            self._body(b"", True)

    def _dechunk(self, buffer: bytearray, pos: int) -> int:
        size = len(buffer)
        while pos < size:
            state = self.state
            if state == 1:
                take = min(self.left, size - pos)
                self._body(bytes(buffer[pos : pos + take]), False)
                pos += take
                self.left -= take
                if self.left == 0:
                    self.state = 2
            elif state == 0:
                end = buffer.find(b"\r\n", pos)
                if end < 0:
                    break
                self.left = int(buffer[pos:end].split(b";", 1)[0], 16)
                pos = end + 2
                self.state = 1 if self.left else 3
            else:  # CRLF after a chunk's data, or after the last chunk (no trailers are sent)
                if size - pos < 2:
                    break
                pos += 2
                if state == 3:
                    self.state = 0
                    self._body(b"", True)
                else:
                    self.state = 0
        return pos

    def _body(self, data: bytes, end: bool) -> None:
        if self.status == 200:
            self.events += data
        else:
            self.error_body += data
        if end:
            self._response_end()

    def _response_end(self) -> None:
        stream, self.stream = self.stream, None
        t = perf()
        if self.events:
            self.stream = stream
            self._events(t)
            self.stream = None
        self._set_idle()
        if stream is None:
            return
        if self.status != 200:
            stream.fail(t, f"HTTP {self.status}: {bytes(self.error_body[:300]).decode(errors='replace')}")
        else:
            stream.finish(t)  # no-op when the end event was seen; else: incomplete

    def _events(self, t: float) -> None:
        events = self.events
        stream = self.stream
        start = 0
        mode = self.mode
        while True:
            end = events.find(b"\n\n", start)
            if end < 0:
                break
            data_at = events.find(b"data: ", start, end)
            if data_at >= 0 and stream is not None:
                if mode == "gateway":
                    _gateway_message(stream, events[data_at + 6 : end], t)
                elif mode == "openai":
                    at = events.find(_OPENAI_TEXT, data_at, end)
                    if at >= 0:
                        at += len(_OPENAI_TEXT)
                        stream.text(t, bytes(events[at : events.find(b'"', at, end)]))
                    elif events.startswith(b"[DONE]", data_at + 6):
                        stream.finish(t)
                else:
                    at = events.find(_ANTHROPIC_TEXT, data_at, end)
                    if at >= 0:
                        at += len(_ANTHROPIC_TEXT)
                        stream.text(t, bytes(events[at : events.find(b'"', at, end)]))
                    elif events.startswith(b'{"type":"message_stop"', data_at + 6):
                        stream.finish(t)
            start = end + 2
        del events[:start]


# ---- WebSocket (RFC 6455), many streams per socket ---------------------------------------------

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

    ``deflate=True`` offers permessage-deflate, as browsers do (the server decides).
    """

    def __init__(self, host: str, path: str = "/v1/ws", deflate: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self.host, self.path, self.offer_deflate = host, path, deflate
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
    async def open(cls, host: str, port: int, *, deflate: bool = False, timeout: float = 30) -> WsConnection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(lambda: cls(f"{host}:{port}", deflate=deflate), host, port)
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
        message = _decode_message(payload)
        sid = message.id
        stream = self.streams.get(sid) if sid is not None else None
        if stream is None:
            if message.type == "ready" and not self.ready.done():
                self.ready.set_result(None)
            return
        _dispatch(stream, message, t)
        if stream.ended:
            del self.streams[stream.sid]


# ---- the client's own event-loop lag ------------------------------------------------------------


class LagMonitor:
    """How late a 5 ms ticker of the client's loop runs: if the client is the bottleneck, this grows."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            due = perf() + self.interval
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, perf() - due))

    async def stop(self) -> float:
        """The largest lag seen, in seconds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return max(self.lags, default=0.0)
