"""The gateway as a user runs it: `python -m server.cli` in a process of its own."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import msgspec

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_OFFLINE_CHILD = (
    "import sys, msgspec\n"
    "from providers.base import GenerationRequest\n"
    "from providers.offline import rulebased\n"
    "requests = msgspec.json.decode(sys.stdin.buffer.read(), type=list[GenerationRequest])\n"
    "sys.stdout.buffer.write(msgspec.json.encode([getattr(rulebased, sys.argv[1])(r) for r in requests]))\n"
)


def rulebased_in_subprocess(function: str, requests: list[object], hash_seed: str) -> bytes:
    """``providers.offline.rulebased.<function>`` of each request, as JSON, computed in a fresh
    interpreter with ``PYTHONHASHSEED=hash_seed``: the offline output must not depend on the process."""
    result = subprocess.run(
        [sys.executable, "-c", _OFFLINE_CHILD, function],
        input=msgspec.json.encode(requests),
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)},
        check=True,
        timeout=60,
    )
    return result.stdout


def tokenwire(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "server.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A shell's background job starts with Ctrl-C ignored, and a child inherits that: the
        # gateway would then never see the interrupt its shutdown tests send.
        preexec_fn=_default_interrupt,
    )


def _default_interrupt() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def wait_healthy(base: str) -> None:
    async with aiohttp.ClientSession() as http, asyncio.timeout(20):
        while True:
            try:
                async with http.get(f"http://{base}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
