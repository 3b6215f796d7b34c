"""The HTTP/1.1 client with SSE and chunked bodies: direct to the upstream, or SSE from the gateway."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import cast

from bench.clients.messages import gateway_message, gateway_part_message, ui_message
from bench.clients.record import PartsResult, StreamResult, perf

_OPENAI_TEXT = b'"delta":{"content":"'
_ANTHROPIC_TEXT = b'"text_delta","text":"'


@dataclass(frozen=True, slots=True)
class PartFormat:
    """Where a direct stream's parts stand in the upstream's events."""

    delta: bytes  # what comes right before a fragment's (or reasoning delta's) JSON string text
    delta_end: bytes  # what comes right after it (the text is the bench's: no such bytes inside)
    start: bytes | None  # in the event that starts the tool call
    end: bytes  # the last event's data begins with this


_OPENAI_END = b"[DONE]"
_ANTHROPIC_END = b'{"type":"message_stop"'
PART_FORMATS = {
    "openai-tool": PartFormat(
        b'"function":{"arguments":"', b'"}}]}', b'"tool_calls":[{"index":0,"id":"', _OPENAI_END
    ),
    "openai-reasoning": PartFormat(b'"reasoning_content":"', b'"', None, _OPENAI_END),
    "anthropic-tool": PartFormat(
        b'"input_json_delta","partial_json":"', b'"}}', b'"content_block":{"type":"tool_use"', _ANTHROPIC_END
    ),
    "anthropic-reasoning": PartFormat(b'"thinking_delta","thinking":"', b'"', None, _ANTHROPIC_END),
}


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection running one streamed request at a time.

    ``mode`` says how the SSE body is read: ``openai``/``anthropic`` straight from the upstream
    (the text is cut out of the bytes), ``gateway`` for ``POST /v1/streams`` (JSON decoded), ``ui``
    for a UI message stream (``POST /v1/ui/chat``, the AI SDK's route). A tool-call or reasoning
    stream's are ``gateway-parts`` and the ``PART_FORMATS`` (see ``read_mode``).
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
                    gateway_message(stream, events[data_at + 6 : end], t)
                elif mode == "openai":
                    at = events.find(_OPENAI_TEXT, data_at, end)
                    if at >= 0:
                        at += len(_OPENAI_TEXT)
                        stream.text(t, bytes(events[at : events.find(b'"', at, end)]))
                    elif events.startswith(b"[DONE]", data_at + 6):
                        stream.finish(t)
                elif mode == "anthropic":
                    at = events.find(_ANTHROPIC_TEXT, data_at, end)
                    if at >= 0:
                        at += len(_ANTHROPIC_TEXT)
                        stream.text(t, bytes(events[at : events.find(b'"', at, end)]))
                    elif events.startswith(b'{"type":"message_stop"', data_at + 6):
                        stream.finish(t)
                elif mode == "ui":
                    ui_message(stream, events[data_at + 6 : end], t)
                elif mode == "gateway-parts":
                    gateway_part_message(stream, events[data_at + 6 : end], t)
                else:
                    _direct_part(stream, PART_FORMATS[mode], events, data_at, end, t)
            start = end + 2
        del events[:start]


def _direct_part(
    stream: StreamResult, form: PartFormat, events: bytearray, data_at: int, end: int, t: float
) -> None:
    """One upstream event of a tool-call or reasoning stream, read straight from the upstream."""
    if type(stream) is not PartsResult:
        stream.fail(t, "a text stream read as parts")
        return
    at = events.find(form.delta, data_at, end)
    if at >= 0:
        at += len(form.delta)
        stop = events.find(form.delta_end, at, end)
        if stop > at:  # empty ones (the role chunk's, Anthropic's first) carry nothing
            stream.direct(t, bytes(events[at:stop]))
    elif form.start is not None and events.find(form.start, data_at, end) >= 0:
        stream.call_start(t)
    elif events.startswith(form.end, data_at + 6):
        stream.finish(t)
