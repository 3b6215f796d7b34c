"""Run a test against the gateway's own uvicorn protocols and against uvicorn's stock ones.

The gateway's protocols (server.fastpath.ws_protocol, server.fastpath.http_protocol) let it write WebSocket frames
and event-stream chunks straight to the transport; with the stock protocols the same code falls
back to plain ASGI sends. Both paths must behave the same.
"""

from __future__ import annotations

from typing import Any

import pytest

WS_PROTOCOLS = pytest.mark.parametrize("ws_protocol", ["tokenwire", "websockets-sansio"])
HTTP_PROTOCOLS = pytest.mark.parametrize("http_protocol", ["tokenwire", "httptools"])


def ws_options(ws_protocol: str) -> dict[str, Any]:
    return {} if ws_protocol == "tokenwire" else {"ws": ws_protocol}


def http_options(http_protocol: str) -> dict[str, Any]:
    return {} if http_protocol == "tokenwire" else {"http": http_protocol}
