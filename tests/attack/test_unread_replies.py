"""A client that sends but never reads must not grow the gateway's memory (issue: +612 MiB for 2 s
of pings carrying a 4 KB ``ts``). The gateway runs as a user runs it, in its own process, so its
RSS is the gateway's alone."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
from websockets.asyncio.client import connect

from tests.support.process import free_port, tokenwire, wait_healthy
from tests.support.wsclient import recv

PING = '{"type":"ping","ts":' + "9" * 4000 + "}"  # each pong echoes the 4 KB ts
SENDING_SECONDS = 2.0
RSS_CEILING_KIB = 8 * 1024  # 1 MiB of replies at most; the rest is buffers (unbounded: +40 MiB)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def flood_without_reading(url: str) -> int:
    """Pings for SENDING_SECONDS from a client that reads nothing; how many went out."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # set before connecting
    host, port = url.split("/")[2].split(":")
    sock.connect((host, int(port)))
    sent = 0
    async with connect(url, sock=sock, max_queue=1, max_size=None, close_timeout=0.1) as ws:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SENDING_SECONDS
        while loop.time() < deadline:
            try:
                await asyncio.wait_for(ws.send(PING), 0.25)
            except TimeoutError:
                await asyncio.sleep(0.05)  # the gateway stopped reading us: keep pushing a while
                continue
            sent += 1
        ws.transport.abort()
    return sent


async def test_a_client_that_never_reads_its_replies_is_no_longer_read(tmp_path: Path) -> None:
    port = free_port()
    process = tokenwire("serve", "--port", str(port))
    base = f"127.0.0.1:{port}"
    try:
        await wait_healthy(base)
        before = rss_kib(process.pid)
        sent = await flood_without_reading(f"ws://{base}/v1/ws")
        grown = rss_kib(process.pid) - before
        async with connect(f"ws://{base}/v1/ws") as ws:  # the gateway still serves everyone else
            await recv(ws)
            await ws.send('{"type":"ping","ts":1}')
            assert (await asyncio.wait_for(recv(ws), 2))["type"] == "pong"
        async with aiohttp.ClientSession() as http, http.get(f"http://{base}/metrics") as resp:
            metrics = await resp.text()
    finally:
        process.terminate()
        process.wait(10)
    assert sent > 256  # past the bound of replies: the flood reached it
    assert grown < RSS_CEILING_KIB, f"RSS grew {grown} KiB for {sent} unread pings"
    paused = [line for line in metrics.splitlines() if line.startswith("tokenwire_reads_paused_total")]
    assert paused
    assert float(paused[0].split()[1]) >= 1
