"""A hostile upstream against a gateway in a process of its own, whose memory is measured: what
an upstream sends must not grow the gateway beyond its documented bounds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from providers.framing import MAX_EVENT
from tests.support.fault_runs import OPENAI_KEY, ROLE, text_chunk
from tests.support.faulty_upstream import Connection, FaultyUpstream, PeerGone, chunked, sse_head
from tests.support.process import free_port, tokenwire, wait_healthy

MIB = 1024 * 1024
# The event bound, the line bound's buffer and socket buffers, with room for the allocator: the
# attack below grew the gateway by 294 MiB before the bound.
RSS_CEILING = 2 * MAX_EVENT + 48 * MIB


@pytest.fixture
async def fake() -> AsyncIterator[FaultyUpstream]:
    upstream = FaultyUpstream()
    await upstream.start()
    yield upstream
    await upstream.stop()


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


async def _peak_rss(pid: int, done: asyncio.Event) -> int:
    peak = 0
    while not done.is_set():
        peak = max(peak, _rss(pid))
        await asyncio.sleep(0.005)
    return max(peak, _rss(pid))


async def test_an_event_of_endless_data_lines_is_cut_within_the_bound(
    tmp_path: Path, fake: FaultyUpstream
) -> None:
    line = b"data: " + b"z" * MIB + b"\n"

    async def many_data_lines(conn: Connection) -> None:
        await conn.send(sse_head() + chunked(ROLE, text_chunk("Hel")))
        try:
            for _ in range(150):  # never a blank line: one event, 150 MiB of data
                await conn.send(chunked(line))
        except PeerGone:
            return
        await conn.hold()

    config = tmp_path / "tokenwire.toml"
    # Without the bound the stream would end only at the idle timeout (no event after "Hel").
    config.write_text(
        f'[streaming]\nidle_timeout_seconds = 5\n[providers.openai]\nbase_url = "{fake.url}/v1"\n'
        f'api_key = "{OPENAI_KEY}"\n'
    )
    port = free_port()
    process = tokenwire("serve", "--port", str(port), "--config", str(config))
    try:
        await wait_healthy(f"127.0.0.1:{port}")
        baseline = _rss(process.pid)
        fake.reply(many_data_lines)
        done = asyncio.Event()
        sampler = asyncio.create_task(_peak_rss(process.pid, done))
        body = {"provider": "openai", "prompt": "hi"}
        async with (
            aiohttp.ClientSession() as http,
            asyncio.timeout(20),
            http.post(f"http://127.0.0.1:{port}/v1/completions", json=body) as resp,
        ):
            error = (await resp.json())["error"]
        done.set()
        grown = await sampler - baseline
    finally:
        process.terminate()
        process.wait(10)
    assert grown < RSS_CEILING, f"the gateway grew by {grown / MIB:.0f} MiB"
    assert resp.status == 502
    assert error["code"] == "upstream_protocol"
    assert error["message"] == "openai sent an over-long event"
    assert error["retryable"] is False
    assert len(fake.requests) == 1  # not retried
    assert fake.connections[0].closed_by == "gateway"
    assert fake.connections[0].sent < 150 * MIB
