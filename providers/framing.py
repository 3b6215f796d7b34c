"""Byte-level stream framing shared by the providers: Server-Sent Events and NDJSON.

Both split on bytes before anything is decoded (a read may end inside a multi-byte character),
accept CR, LF and CRLF line ends (also split across reads), and bound their buffers: a line longer
than ``max_line``, or an SSE event whose data lines add up to more than ``max_event``, is reported
as ``overflow`` instead of growing memory.
"""

from __future__ import annotations

import re

import msgspec

MAX_LINE = 8 * 1024 * 1024  # Gemini thought signatures alone can exceed 128 KiB
# The data of one SSE event, however many lines it spans. Providers send one data line per event,
# so this admits two lines at MAX_LINE; it bounds a stream's buffers at MAX_LINE + MAX_EVENT.
MAX_EVENT = 16 * 1024 * 1024
_EOL = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


class SSEEvent(msgspec.Struct, frozen=True):
    data: bytes  # the data lines joined by LF, still UTF-8 bytes (JSON decoders take bytes)
    event: str | None = None


class _LineSplitter:
    """Splits a byte stream into lines on CR, LF or CRLF, however the reads are cut.

    A line still open at the end of a read is kept as a list of pieces and joined once, when it
    ends, so a long line arriving in small reads costs linear, not quadratic, time.
    """

    def __init__(self, max_line: int) -> None:
        self._pieces: list[bytes] = []  # the open line
        self._size = 0
        self._cr_pending = False  # the last read ended on CR: a leading LF next belongs to it
        self._started = False
        self.max_line = max_line
        self.overflow: str | None = None

    def split(self, chunk: bytes) -> list[bytes]:
        if not self._started:
            chunk = self._strip_bom(chunk)
        if self._cr_pending and chunk[:1] == b"\n":
            chunk = chunk[1:]
        if b"\r" not in chunk:  # the common case: LF only, split in C
            self._cr_pending = False
            return self._split_lf(chunk)
        self._cr_pending = chunk.endswith(b"\r")
        ends = list(_EOL.finditer(chunk))
        if not ends:
            self._keep(chunk)
            return []
        first = ends[0]
        head = chunk[: first.start()]
        lines = [b"".join([*self._pieces, head]) if self._pieces else head]
        start = first.end()
        for end in ends[1:]:
            lines.append(chunk[start : end.start()])
            start = end.end()
        self._pieces, self._size = [], 0
        self._keep(chunk[start:])
        return lines

    def _split_lf(self, chunk: bytes) -> list[bytes]:
        if b"\n" not in chunk:
            self._keep(chunk)
            return []
        lines = chunk.split(b"\n")
        if self._pieces:
            lines[0] = b"".join([*self._pieces, lines[0]])
            self._pieces, self._size = [], 0
        self._keep(lines.pop())
        return lines

    def close(self) -> list[bytes]:
        line = b"".join(self._pieces)
        if not self._started:
            line = line.removeprefix(_BOM)
        self._pieces, self._size, self._started = [], 0, True
        return [line] if line else []

    def _keep(self, piece: bytes) -> None:
        if not piece:
            return
        self._size += len(piece)
        if self._size > self.max_line:
            self.overflow = "line"
            self._pieces, self._size = [], 0
        else:
            self._pieces.append(piece)

    def _strip_bom(self, chunk: bytes) -> bytes:
        # A BOM may only open the stream, and a read may end inside it: hold back up to 2 bytes.
        data = b"".join([*self._pieces, chunk])
        self._pieces, self._size = [], 0
        if len(data) < len(_BOM) and _BOM.startswith(data):
            self._keep(data)
            return b""
        self._started = True
        return data.removeprefix(_BOM)


class SSEDecoder:
    """WHATWG event-stream parsing: ``feed`` bytes, get complete events."""

    def __init__(
        self, max_line: int = MAX_LINE, *, max_event: int = MAX_EVENT, bare_json: bool = False
    ) -> None:
        self._lines = _LineSplitter(max_line)
        self._data: list[bytes] = []
        self._size = 0  # bytes in _data
        self._max_event = max_event
        self._event_overflow = False
        self._event: str | None = None
        self._bare_json = bare_json  # also take a line that is a JSON object as a whole event

    @property
    def overflow(self) -> str | None:
        """What exceeded its bound, "line" or "event" (its data is dropped); None while nothing did."""
        return "event" if self._event_overflow else self._lines.overflow

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return self._dispatch(self._lines.split(chunk))

    def close(self) -> list[SSEEvent]:
        """At EOF: a last unterminated line and a pending event are kept, not dropped."""
        return self._dispatch([*self._lines.close(), b""])

    def _dispatch(self, lines: list[bytes]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(SSEEvent(b"\n".join(self._data), self._event))
                self._data, self._size, self._event = [], 0, None
            elif line[0] == 0x7B and self._bare_json:  # '{'
                events.append(SSEEvent(line))
            elif line[0] != 0x3A:  # a line starting with ':' is a comment (keep-alive)
                self._field(line)
        return events

    def _field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._size += len(value)
            if self._size > self._max_event:
                self._event_overflow = True
                self._data, self._size = [], 0
            else:
                self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        # id, retry and unknown fields: none of the providers use them


class NDJSONDecoder:
    """One JSON document per line (Ollama); yields the non-blank lines as bytes."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._lines = _LineSplitter(max_line)

    @property
    def overflow(self) -> str | None:
        return self._lines.overflow  # a line is a whole item: nothing accumulates across lines

    def feed(self, chunk: bytes) -> list[bytes]:
        return [line for line in map(bytes.strip, self._lines.split(chunk)) if line]

    def close(self) -> list[bytes]:
        return [line for line in map(bytes.strip, self._lines.close()) if line]
