"""Server-Sent Events framing of the JSON payloads (the same JSON as over WebSocket)."""

from protocol.codec import encode
from protocol.messages import ServerMessage

KEEPALIVE = b": keep-alive\n\n"


def sse_frame(event: str, data: bytes, event_id: int | None = None) -> bytes:
    """One SSE event. ``data`` is single-line JSON (msgspec escapes newlines in strings)."""
    head = b"" if event_id is None else b"id: %d\n" % event_id
    return b"%sevent: %s\ndata: %s\n\n" % (head, event.encode(), data)


def v1_event(message: ServerMessage) -> bytes:
    """A protocol v1 message as an SSE event named by its type, with ``id: <seq>``."""
    seq = getattr(message, "seq", None)
    return sse_frame(message.__struct_config__.tag, encode(message), seq)  # type: ignore[arg-type]
