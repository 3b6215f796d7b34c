"""The wire contract between tokenwire and its clients (protocol v1).

Pure: no I/O, no asyncio, no web framework. Messages are msgspec Structs tagged on ``type``.
"""

from protocol.codec import BadMessage, decode_client_message, decode_http_request, encode
from protocol.errors import ErrorCode
from protocol.messages import (
    PROTOCOL_VERSION,
    Cancel,
    ChatMessage,
    Chunk,
    ClientMessage,
    Done,
    Error,
    Limits,
    Metrics,
    Notice,
    Options,
    Ping,
    Pong,
    ProviderInfo,
    Ready,
    Resume,
    ServerInfo,
    ServerMessage,
    StartAck,
    StartRequest,
    StreamRequest,
    Usage,
)

__all__ = [
    "PROTOCOL_VERSION",
    "BadMessage",
    "Cancel",
    "ChatMessage",
    "Chunk",
    "ClientMessage",
    "Done",
    "Error",
    "ErrorCode",
    "Limits",
    "Metrics",
    "Notice",
    "Options",
    "Ping",
    "Pong",
    "ProviderInfo",
    "Ready",
    "Resume",
    "ServerInfo",
    "ServerMessage",
    "StartAck",
    "StartRequest",
    "StreamRequest",
    "Usage",
    "decode_client_message",
    "decode_http_request",
    "encode",
]
