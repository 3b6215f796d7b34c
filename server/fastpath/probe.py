"""Whether this uvicorn still has the internals the fast path uses, checked once at start-up.

server.fastpath's two protocols subclass uvicorn's httptools and websockets-sansio protocols and
read their private state. uvicorn may rename or drop any of it in a release, so the gateway
looks for every name it uses before choosing them; when one is missing it serves through
uvicorn's stock protocols and plain ASGI sends instead, and says so in one warning line.

The edge's bounds (server.edge.guard) are enforced in those protocols, where the head and the
frames are parsed, and nowhere else: served by the stock ones, the gateway writes slower and is
open to the attacks they stop, and the warning names each bound that is off. (The log filters
of server.edge.log_filter work on both.)
"""

from __future__ import annotations

import functools
import importlib
import logging
from types import CodeType, FunctionType
from typing import Any, TypeVar, cast

from server.edge.guard import EdgeGuard

log = logging.getLogger("tokenwire.fastpath")
P = TypeVar("P")

STOCK = {"http": "httptools", "ws": "websockets-sansio"}  # uvicorn's names for its own protocols
# What the stock protocols do not do (server.fastpath.http_protocol, ws_protocol).
OFF_WITHOUT_FAST_PATH = (
    "request head bounds (max_head_bytes, max_head_lines, 8 KiB lines)",
    "head_timeout_seconds",
    "max_open_connections",
    "the WebSocket control-frame budget",
)

# Every private name the fast path reads or overrides, by the class that defines it.
INTERNALS: dict[str, tuple[str, ...]] = {
    "uvicorn.protocols.websockets.websockets_sansio_impl:WebSocketsSansIOProtocol": (
        "handle_connect",
        "handle_parser_exception",
        "connection_lost",
        "client",
        "scope",
        "conn",
        "transport",
        "handshake_complete",
        "initial_response",
        "close_sent",
        "disconnected",
        "writable",
    ),
    "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol": (
        "on_message_begin",
        "on_url",
        "on_header",
        "on_headers_complete",
        "handle_websocket_upgrade",
        "_unset_keepalive_if_required",
        "_should_upgrade",
        "_unsupported_upgrade_warning",
        "send_400_response",
        "logger",
        "client",
        "transport",
        "cycle",
        "scope",
        "parser",
    ),
    "uvicorn.protocols.http.httptools_impl:RequestResponseCycle": (
        "scope",
        "transport",
        "flow",
        "response_started",
        "chunked_encoding",
        "response_complete",
        "disconnected",
    ),
    "uvicorn.protocols.http.flow_control:FlowControl": ("write_paused",),
    "websockets.protocol:Protocol": ("parser", "parser_exc", "state", "recv_frame", "fail"),
}

# What reading a lone text frame directly (ws_protocol.FrameWritingProtocol.data_received) also
# uses. websockets renamed its size state in 15-17: an older one is read through its own parser.
DIRECT_READ_INTERNALS: dict[str, tuple[str, ...]] = {
    "uvicorn.protocols.websockets.websockets_sansio_impl:WebSocketsSansIOProtocol": (
        "data_received",
        "curr_msg_data_type",
        "frames",
        "send_receive_event_to_app",
    ),
    "websockets.protocol:Protocol": (
        "current_size",
        "extensions",
        "debug",
        "max_message_size",
        "max_fragment_size",
    ),
    "websockets.streams:StreamReader": ("at_eof",),
}


def missing_internals(internals: dict[str, tuple[str, ...]] = INTERNALS) -> list[str]:
    """``module:Class.name`` for each name this uvicorn (and websockets) lacks."""
    missing: list[str] = []
    for path, names in internals.items():
        module, _, qualname = path.partition(":")
        try:
            cls = getattr(importlib.import_module(module), qualname)
        except (ImportError, AttributeError):
            missing.append(path)
            continue
        known = _names(cls)
        missing.extend(f"{path}.{name}" for name in names if name not in known)
    return missing


def _names(cls: type) -> set[str]:
    """The class's attributes, and every attribute its methods set or read: instance
    attributes exist only once ``__init__`` has run, but their names are in the bytecode."""
    names = set(dir(cls))
    for klass in cls.__mro__:
        for member in vars(klass).values():
            if isinstance(member, FunctionType):
                names.update(_code_names(member.__code__))
    return names


def _code_names(code: CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):  # nested functions and comprehensions
            names |= _code_names(const)
    return names


@functools.cache  # once per process: one warning, however many servers it runs
def fast_path() -> bool:
    """Whether this uvicorn has every internal the fast path uses; says which it lacks if not."""
    missing = missing_internals()
    if missing:
        log.warning(
            "uvicorn lacks %s: serving through its stock protocols and plain ASGI sends (slower "
            "writes), WITHOUT these defences: %s",
            ", ".join(missing),
            "; ".join(OFF_WITHOUT_FAST_PATH),
        )
    return not missing


def server_protocols(edge: EdgeGuard) -> dict[str, Any]:
    """uvicorn.Config's ``http`` and ``ws``: the fast path's protocols, bounded by ``edge``,
    when this uvicorn allows them."""
    if not fast_path():
        return dict(STOCK)
    from server.fastpath.http_protocol import BodyWritingHttpProtocol
    from server.fastpath.ws_protocol import FrameWritingProtocol

    ws = _serving(FrameWritingProtocol, edge, reads_directly=not missing_internals(DIRECT_READ_INTERNALS))
    return {"http": _serving(BodyWritingHttpProtocol, edge), "ws": ws}


def _serving(protocol: type[P], edge: EdgeGuard, **settings: Any) -> type[P]:
    """``protocol`` with ``edge``'s bounds (and other class ``settings``): uvicorn takes a class,
    and each server has its own."""
    return cast(type[P], type(protocol.__name__, (protocol,), {"edge": edge, **settings}))
