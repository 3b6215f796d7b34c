"""The recorded provider streams in tests/providers/recorded (SOURCES.md there says where each came from)."""

from __future__ import annotations

from pathlib import Path

RECORDED = Path(__file__).resolve().parent.parent / "providers" / "recorded"


def recorded(name: str) -> bytes:
    """A recording's bytes as stored."""
    return (RECORDED / name).read_bytes()


def gemini_sse(name: str) -> bytes:
    """A Gemini recording as the wire carries it: a ``.chunks.txt`` (one payload per line) framed
    as ``data: …\\r\\n\\r\\n``, the way Gemini frames its events; an ``.sse`` as stored."""
    data = recorded(name)
    if not name.endswith(".chunks.txt"):
        return data
    return b"".join(b"data: " + line + b"\r\n\r\n" for line in data.splitlines() if line.strip())
