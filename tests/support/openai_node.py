"""Running a script of tests/openai_node (the official ``openai`` and ``@anthropic-ai/sdk`` npm
packages) against a live gateway; what it prints is the test's to check."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "openai_node"  # its package holds both SDKs
SDKS = {"openai": "openai", "anthropic": "@anthropic-ai/sdk"}  # what each test needs: its package
NAMES = {"openai": "OpenAI", "anthropic": "Anthropic"}


def node_or_skip(sdk: str) -> str:
    """``node``, with ``sdk``'s package installed; skipped loudly outside CI, failed under CI."""
    node = shutil.which("node")
    if node and (NODE_DIR / "node_modules" / SDKS[sdk] / "package.json").exists():
        return node
    why = "node is not on PATH" if not node else "tests/openai_node/node_modules is missing"
    message = f"{why}: run `npm ci --prefix tests/openai_node`"
    if os.environ.get("CI") == "true":
        pytest.fail(f"the {NAMES[sdk]} Node.js client test cannot run under CI: {message}", pytrace=False)
    pytest.skip(f"SKIPPING the {NAMES[sdk]} Node.js client test: {message}")


async def run_script(sdk: str, script: str, env: dict[str, str]) -> Any:
    """Run ``script`` with ``env`` added; it must exit 0. What it printed, as JSON (None: nothing)."""
    process = await asyncio.create_subprocess_exec(
        node_or_skip(sdk),
        script,
        cwd=NODE_DIR,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout) if stdout.strip() else None
