"""The AI SDK's own ``WebSocketChatTransport`` and ``Chat`` (the ``ai`` npm package, on Node 22)
against a live gateway's ``GET /v1/ui/ws``: tests/ai_sdk_node/ws.test.mjs (text, reasoning, a
client-side tool round trip, stop, resume after a cut connection, an upstream error, a refusal,
three chats on one socket)."""

from __future__ import annotations

from tests.conftest import StartGateway
from tests.support.ai_sdk_node import node_or_skip, run_node_tests

TOKEN = "ui-ws-token"
CONFIG = {
    "server": {"auth_tokens": [TOKEN]},
    # Slow enough that a stream is still running when the test stops it or cuts its connection.
    "providers": {"rulebased": {"chunk_delay_ms": 60}},
    "resume": {"resume_grace_seconds": 30},
}


async def test_websocket_chat_transport(start_gateway: StartGateway) -> None:
    node_or_skip()
    gw = start_gateway(CONFIG)
    await run_node_tests("ws.test.mjs", {"TOKENWIRE_HTTP": gw.http, "TOKENWIRE_TOKEN": TOKEN}, passed=8)
    assert not gw.hub.running
