"""The AI SDK's own WebSocketChatTransport (``ai`` from npm, tests/ai_sdk_node/ws.test.mjs) against a
live gateway's ``GET /v1/ui/ws``: text, reasoning, a client-side tool round trip, stop, resume after
a dropped connection, an upstream error, a refusal and three chats on one socket."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.conftest import StartGateway

NODE_DIR = Path(__file__).resolve().parents[1] / "ai_sdk_node"
NODE_BIN = NODE_DIR / "node_modules" / ".bin"
TOKEN = "ui-ws-token"
CONFIG = {
    "server": {"auth_tokens": [TOKEN]},
    # Slow enough that a stream is still running when the test stops it or cuts its connection.
    "providers": {"rulebased": {"chunk_delay_ms": 60}},
    "resume": {"resume_grace_seconds": 30},
}


def _node_or_skip() -> Path:
    node = NODE_BIN / "node"
    if node.exists() and (NODE_DIR / "node_modules" / "ai" / "package.json").exists():
        return node
    message = (
        "tests/ai_sdk_node/node_modules is missing: run `make tests/ai_sdk_node/node_modules/.installed`"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"the AI SDK WebSocket test cannot run under CI: {message}", pytrace=False)
    pytest.skip(f"SKIPPING the AI SDK WebSocket test: {message}")


async def test_the_ai_sdk_websocket_transport(start_gateway: StartGateway) -> None:
    node = _node_or_skip()
    gw = start_gateway(CONFIG)
    env = {
        **os.environ,
        "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # Node 22, as ai@7 needs
        "TOKENWIRE_HTTP": gw.http,
        "TOKENWIRE_TOKEN": TOKEN,
    }
    process = await asyncio.create_subprocess_exec(
        str(node),
        "--test",
        "ws.test.mjs",
        cwd=NODE_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(120):
        stdout, _ = await process.communicate()
    report = stdout.decode()
    assert process.returncode == 0, report
    assert "# pass 8\n" in report, report
    assert "# fail 0\n" in report, report
