"""What the gateway lets reach the log from uvicorn and websockets, which log as they see fit.

uvicorn logs each WebSocket handshake at INFO with the request's query string, which is how a
browser sends its gateway token (``/v1/ws?token=…``), and logs a handshake the gateway refuses
(accepted, then closed with 1008: server.edge.access) as ``[accepted]``. At DEBUG, websockets
logs every request header (``Authorization`` included) and the start of every frame (prompts).

``RedactingFilter``, on uvicorn's log handlers (server.cli), rewrites those lines: query strings
and credential headers become ``[redacted]``, a frame is logged by its kind and size only, and a
handshake refused inside ``refusing_handshake()`` is logged as refused, with its close code and
reason. The gateway's own loggers (``tokenwire.*``) log no such values in the first place.

``ClientFaultFilter`` logs a client's malformed input as one line without a traceback: uvicorn
logs invalid UTF-8 in a text frame as an ERROR with one, and websockets (at DEBUG) each
handshake it refuses. Nothing failed in the server, and a traceback a client can cause at will
is a flood of the log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from websockets.frames import Frame

ACCEPTED = '%s - "WebSocket %s" [accepted]'  # uvicorn's handshake line
INVALID_UTF8 = "Invalid UTF-8 sequence received from client."  # uvicorn's, with a traceback
HANDSHAKE_FAILED = "! "  # how websockets' lines for the handshakes it refuses begin
# A request target's query string: "GET /v1/ws?token=…", "WebSocket /v1/ws?token=…".
QUERY = re.compile(r'(?<=[\s"])((?:[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/"]*)?/[^\s?"]*)\?[^\s"]+')
# A header line as websockets logs it at DEBUG: "< Authorization: Bearer …".
CREDENTIAL_HEADER = re.compile(
    r"^([<>] (?:authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key|x-goog-api-key)):.*",
    re.IGNORECASE | re.DOTALL,
)

_refusal: ContextVar[str | None] = ContextVar("tokenwire_refusal", default=None)


@contextmanager
def refusing_handshake(code: int, reason: str) -> Iterator[None]:
    """Within this, uvicorn's line for the accepted handshake says it is refused: the gateway
    accepts a WebSocket it refuses only to close it with ``code`` and ``reason``."""
    token = _refusal.set(f"[refused: closed with {code}, {reason}]")
    try:
        yield
    finally:
        _refusal.reset(token)


def redact(message: str) -> str:
    """``message`` without query strings or credential header values."""
    return CREDENTIAL_HEADER.sub(r"\1: [redacted]", QUERY.sub(r"\1?[redacted]", message))


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 1 and isinstance(args[0], Frame):
            frame = args[0]  # "< %s" / "> %s": only the kind and size of a frame
            record.args = (f"{frame.opcode.name} [{len(frame.data)} bytes]",)
            return True
        refusal = _refusal.get()
        if refusal is not None and record.msg == ACCEPTED:
            record.msg = ACCEPTED.replace("[accepted]", refusal)
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class ClientFaultFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is None or not isinstance(record.msg, str):
            return True
        if record.msg == INVALID_UTF8:
            record.msg = "closed a WebSocket with 1007: invalid UTF-8 in a text frame"
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        elif record.msg.startswith(HANDSHAKE_FAILED):
            record.msg, record.args = f"{record.getMessage()}: {record.exc_info[1]}", None
        else:
            return True
        record.exc_info = record.exc_text = None
        return True
