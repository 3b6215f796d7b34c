"""The AI SDK's own ``DefaultChatTransport`` and ``Chat`` (the ``ai`` npm package, on Node 22)
against live gateways: tests/ai_sdk_node/http.test.mjs, run with ``node --test``."""

from __future__ import annotations

from tests.conftest import StartGateway
from tests.support.ai_sdk_node import node_or_skip, run_node_tests


async def test_default_chat_transport(start_gateway: StartGateway) -> None:
    node_or_skip()
    fast = start_gateway(
        {"streaming": {"retry_backoff_seconds": 0.01}, "providers": {"rulebased": {"chunk_delay_ms": 30}}}
    )
    # Resume after a cut connection needs a grace period, and an answer (~17 chunks) still running
    # when the SDK comes back; a stop is seen cancelled at once without a grace period.
    resumable = start_gateway(
        {"resume": {"resume_grace_seconds": 10}, "providers": {"rulebased": {"chunk_delay_ms": 150}}}
    )
    stopping = start_gateway({"providers": {"rulebased": {"chunk_delay_ms": 100}}})
    env = {
        "TOKENWIRE_URL": fast.http,
        "TOKENWIRE_RESUME_URL": resumable.http,
        "TOKENWIRE_STOP_URL": stopping.http,
    }
    await run_node_tests("http.test.mjs", env, passed=9)
    for gateway in (fast, resumable, stopping):
        assert not gateway.hub.running
