"""The ``memory`` scenario: the gateway's RSS per idle connection and per active stream."""

from __future__ import annotations

import asyncio
from typing import Any

from bench import gateway as procs
from bench.clients import Batch, StreamResult, WsConnection, gateway_body, perf
from bench.harness import HOST, Bench, Transport
from bench.scenario import Scenario
from bench.stats import median
from bench.streams import Sequential, open_many


async def _rss(proc: procs.Process, samples: int = 5, spacing: float = 0.1) -> int:
    values = []
    for _ in range(samples):
        values.append(proc.rss())
        await asyncio.sleep(spacing)
    return int(median(values))


async def scenario_memory(b: Bench) -> dict[str, Any]:
    """RSS per idle WebSocket connection and per active stream, on a freshly started gateway."""
    s = b.settings
    await b.start_gateway("gateway-memory")
    seq = Sequential(b)
    await seq.open()
    warm = Scenario(chunks=4, size=8, pacing_ms=1)
    gateway_transports: tuple[Transport, ...] = ("ws", "sse")
    for _ in range(s.warmup):
        for transport in gateway_transports:
            await seq.run(transport, "openai", warm)
    seq.close()
    await asyncio.sleep(s.settle)
    k = s.mem_connections
    rss0 = await _rss(b.gw, spacing=s.settle / 10)
    sockets = await open_many(lambda: WsConnection.open(HOST, b.gateway_port), k)
    await asyncio.sleep(s.settle)
    rss1 = await _rss(b.gw, spacing=s.settle / 10)
    slow = Scenario(chunks=1000, size=8, pacing_ms=1000)  # the first chunk at once, then one a second
    batch = Batch()
    streams = [batch.add(StreamResult(f"slow{i}", slow)) for i in range(k)]
    for ws, stream in zip(sockets, streams, strict=True):
        ws.start(stream, gateway_body(stream.sid, "openai", slow, ws=True))
    deadline = perf() + 20
    while perf() < deadline and sum(1 for st in streams if st.arrivals) < k:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # polling the client's own records
    started = sum(1 for st in streams if st.arrivals)
    await asyncio.sleep(s.settle / 2)
    rss2 = await _rss(b.gw, spacing=s.settle / 10)
    health = await b.healthz()
    for ws in sockets:
        ws.close()
    await asyncio.sleep(s.settle * 1.5)
    rss3 = await _rss(b.gw, spacing=s.settle / 10)
    probe = await WsConnection.open(HOST, b.gateway_port, deflate=True)
    deflate = probe.deflate is not None
    probe.close()
    b.gw.stop()
    b.gateway = None
    return {
        "connections": k,
        "rss_kib": {
            "warm": rss0 // 1024,
            "idle_connections": rss1 // 1024,
            "active_streams": rss2 // 1024,
            "after_close": rss3 // 1024,
        },
        "per_idle_connection_kib": round((rss1 - rss0) / k / 1024, 2),
        "per_active_stream_kib": round((rss2 - rss1) / k / 1024, 2),
        "streams_started": started,
        "gateway_active_streams": health.get("active_streams"),
        "permessage_deflate_negotiated": deflate,
    }
