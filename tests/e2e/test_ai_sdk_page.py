"""The AI SDK's React hook, `useChat` from @ai-sdk/react, in headless Chromium against a real
gateway with the rulebased provider: a page (tests/ai_sdk_node/page/app.jsx, bundled here with the
pinned esbuild) runs three chats over ONE `WebSocketChatTransport` and one over
`DefaultChatTransport`, stops one, reloads and resumes another. The page and the gateway share one
origin through the example app's server (clients/examples/ai-sdk-react/serve.mjs, which proxies
/v1). tests/ai_sdk_node/page-check.mjs drives the browser over the DevTools protocol and reports.

Needs the system's Chromium and `make test`'s tests/ai_sdk_node/node_modules: without them the test
is skipped loudly, except under CI=true, where it fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StartGateway
from tests.support.ai_sdk_node import NODE_DIR, node_or_skip

TOKEN = "page-token-0123456789"
ROOT = Path(__file__).resolve().parents[2]
ESBUILD = NODE_DIR / "node_modules" / ".bin" / "esbuild"
EXAMPLE = ROOT / "clients" / "examples" / "ai-sdk-react"
SERVE = EXAMPLE / "serve.mjs"


def _chromium_or_skip() -> str:
    chromium = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else shutil.which("chromium")
    if chromium:
        return chromium
    message = "chromium is not installed: apt-get install chromium (the useChat page needs a real browser)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"the useChat page test cannot run under CI: {message}", pytrace=False)
    pytest.skip(f"!!! SKIPPING the useChat page test: {message} !!!")


def _bundle(source: Path, into: Path) -> None:
    """Build a page (index.html + app.jsx in ``source``) the way a front end would, with the
    packages of tests/ai_sdk_node (never committed: built for each run)."""
    shutil.copy(source / "index.html", into / "index.html")
    subprocess.run(
        [
            str(ESBUILD),
            str(source / "app.jsx"),
            "--bundle",
            "--format=iife",
            "--platform=browser",
            "--target=es2022",
            '--define:process.env.NODE_ENV="production"',
            f"--outfile={into / 'app.js'}",
            "--log-level=warning",
        ],
        cwd=NODE_DIR,
        env={**os.environ, "NODE_PATH": str(NODE_DIR / "node_modules")},  # for a source outside NODE_DIR
        check=True,
        timeout=120,
    )


def _directories(tmp_path: Path) -> tuple[Path, Path]:
    """The page's files, and the browser's profile (removed with tmp_path, after the browser)."""
    static, profile = tmp_path / "static", tmp_path / "chromium-profile"
    static.mkdir()
    profile.mkdir()
    return static, profile


async def _serve(node: Path, static: Path, gateway: str) -> tuple[asyncio.subprocess.Process, str]:
    env = {**os.environ, "GATEWAY": gateway, "PORT": "0", "STATIC_DIR": str(static)}
    server = await asyncio.create_subprocess_exec(
        str(node), str(SERVE), env=env, stdout=asyncio.subprocess.PIPE
    )
    assert server.stdout is not None
    async with asyncio.timeout(30):
        line = await server.stdout.readline()
    return server, json.loads(line)["url"]


async def _drive(node: Path, page: str, gateway: str, chromium: str, profile: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        **{
            "PAGE_URL": page,
            "GATEWAY": gateway,
            "TOKEN": TOKEN,
            "CHROMIUM": chromium,
            "PROFILE": str(profile),
        },
    }
    check = await asyncio.create_subprocess_exec(
        str(node),
        "page-check.mjs",
        cwd=NODE_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        stdout, stderr = await check.communicate()
    assert check.returncode == 0, stderr.decode()
    result: dict[str, Any] = json.loads(stdout)
    return result


async def test_use_chat_over_both_transports(start_gateway: StartGateway, tmp_path: Path) -> None:
    node = node_or_skip()
    chromium = _chromium_or_skip()
    static, profile = _directories(tmp_path)
    _bundle(NODE_DIR / "page", static)
    # A long resume grace: the reload drops the page's socket, and w-3 must wait for its resume.
    gw = start_gateway(
        {
            "server": {"auth_tokens": [TOKEN]},
            "providers": {"rulebased": {"chunk_delay_ms": 20}},
            "resume": {"resume_grace_seconds": 60},
        }
    )
    server, page = await _serve(node, static, gw.http)
    try:
        out = await _drive(node, page, gw.http, chromium, profile)
    finally:
        server.terminate()
        await server.wait()

    # Three chats, one socket: every WebSocketChatTransport chat of the page shares it.
    assert len(out["webSockets"]) == 1, out["webSockets"]
    assert "/v1/ui/ws?" in out["webSockets"][0]
    assert f"token={TOKEN}" in out["webSockets"][0]

    phase1 = out["phase1"]
    for chat in ("w-1", "h-1"):  # a whole answer each, over the WebSocket and over HTTP
        assert (phase1[chat]["status"], phase1[chat]["assistant"], phase1[chat]["error"]) == (
            "ready",
            1,
            None,
        )
        assert len(phase1[chat]["text"].split()) > 5, phase1[chat]
    assert phase1["w-1"]["text"] != phase1["h-1"]["text"]
    finished1 = {f["id"]: f for f in out["finished1"]}
    assert finished1["w-1"]["finishReason"] == finished1["h-1"]["finishReason"] == "stop"

    # Stopped after its first words: the page keeps them, and the stalled stream was cancelled
    # upstream (nothing else could end it: it stalls forever and the resume grace is a minute).
    assert out["beforeStop"]["w-2"]["status"] == "streaming"
    assert phase1["w-2"]["status"] == "ready"
    assert phase1["w-2"]["error"] is None
    assert phase1["w-2"]["text"] == out["beforeStop"]["w-2"]["text"]
    assert finished1["w-2"]["isAbort"] is True
    assert out["cancelledAfterStop"] == 1

    # w-3 was still waiting for its first token when the page reloaded: the new page resumed it,
    # and its reply arrived whole as one assistant message (the user message lived in the old page).
    assert phase1["w-3"]["status"] in ("submitted", "streaming")
    assert phase1["w-3"]["text"] == ""
    w3 = out["phase2"]["w-3"]
    assert (w3["status"], w3["messages"], w3["assistant"], w3["error"]) == ("ready", 1, 1, None)
    assert len(w3["text"].split()) > 5, w3
    assert w3["text"].count(w3["text"][:40]) == 1, w3  # replayed once, not twice
    assert [f["finishReason"] for f in out["finished2"] if f["id"] == "w-3"] == ["stop"]
    assert out["exceptions"] == []


def test_the_example_app_builds_with_the_tested_pins(tmp_path: Path) -> None:
    """clients/examples/ai-sdk-react pins exactly the versions tested here, and its page bundles."""
    node_or_skip()
    example = json.loads((EXAMPLE / "package.json").read_text())
    tested = json.loads((NODE_DIR / "package.json").read_text())["devDependencies"]
    pins = {**example["dependencies"], **example["devDependencies"]}
    assert pins == {name: tested[name] for name in pins}
    assert set(pins) == {"ai", "@ai-sdk/react", "react", "react-dom", "esbuild"}
    lock = json.loads((EXAMPLE / "package-lock.json").read_text())["packages"]
    assert {name: lock[f"node_modules/{name}"]["version"] for name in pins} == pins

    _bundle(EXAMPLE / "src", tmp_path)
    bundle = (tmp_path / "app.js").read_text()
    assert "/v1/ui/chat" in bundle
    assert "/v1/ui/ws" in bundle
