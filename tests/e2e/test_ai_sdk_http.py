"""The AI SDK's own ``DefaultChatTransport`` and ``Chat`` (the ``ai`` npm package, on Node 22)
against live gateways: tests/ai_sdk_node/http.test.mjs, run with ``node --test``."""

from __future__ import annotations

from tests.conftest import StartGateway
from tests.support.ai_sdk_node import node_or_skip, run_node_tests


async def test_default_chat_transport(start_gateway: StartGateway) -> None:
    node_or_skip()
    # Resume after a cut connection needs a grace period; a stop is seen cancelled at once without.
    resumable = start_gateway(
        {"resume": {"resume_grace_seconds": 10}, "providers": {"rulebased": {"chunk_delay_ms": 30}}}
    )
    stopping = start_gateway({"providers": {"rulebased": {"chunk_delay_ms": 100}}})
    env = {"TOKENWIRE_URL": resumable.http, "TOKENWIRE_STOP_URL": stopping.http}
    await run_node_tests("http.test.mjs", env, passed=8)
    assert not resumable.hub.running
    assert not stopping.hub.running
