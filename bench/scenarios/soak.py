"""The ``soak`` scenario: a steady mixed load, watching the gateway's RSS for growth."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import gateway as procs
from bench.clients import (
    Batch,
    Dialect,
    HttpConnection,
    StreamResult,
    WsConnection,
    gateway_body,
    perf,
    sse_request,
)
from bench.harness import HOST, Bench, cpu_delta
from bench.scenario import Scenario
from bench.stats import median


@dataclass
class SoakCounts:
    ok: int = 0
    cancelled: int = 0
    aborted: int = 0
    failed: int = 0
    chunks: int = 0
    errors: list[str] = field(default_factory=list)

    def record(self, stream: StreamResult, expected_cut: str | None) -> None:
        self.chunks += stream.delivered
        if stream.ok:
            self.ok += 1
        elif expected_cut == "cancel":
            self.cancelled += 1
        elif expected_cut == "abort":
            self.aborted += 1
        else:
            self.failed += 1
            if stream.error and len(self.errors) < 5 and stream.error not in self.errors:
                self.errors.append(stream.error)


async def _soak_ws(b: Bench, worker: int, stop_at: float, counts: SoakCounts) -> None:
    """A socket with 4 streams at a time; every 20th is cancelled; the socket is dropped every few
    seconds with streams in flight, and opened again."""
    while perf() < stop_at:
        ws = await WsConnection.open(HOST, b.gateway_port)
        life_end = min(stop_at, perf() + 2.5 + 0.3 * worker)
        state = {"closing": False}
        tasks = [asyncio.create_task(_soak_slot(ws, f"w{worker}-{j}", state, counts)) for j in range(4)]
        await asyncio.sleep(max(0.0, life_end - perf()))
        state["closing"] = True
        ws.abort()  # streams in flight: the gateway must cancel them upstream
        await asyncio.gather(*tasks)


async def _soak_slot(ws: WsConnection, name: str, state: dict[str, bool], counts: SoakCounts) -> None:
    scenario = Scenario(chunks=40, size=8, pacing_ms=5)
    n = 0
    while not state["closing"] and ws.transport is not None:
        n += 1
        dialect: Dialect = "anthropic" if n % 3 == 0 else "openai"
        batch = Batch()
        stream = batch.add(StreamResult(f"{name}-{n}", scenario))
        ws.start(stream, gateway_body(stream.sid, dialect, scenario, ws=True))
        cancel = n % 20 == 7
        if cancel:
            await asyncio.sleep(0.05)
            ws.cancel(stream.sid)
        await batch.wait(15)
        counts.record(stream, "cancel" if cancel else ("abort" if state["closing"] else None))


async def _soak_sse(b: Bench, worker: int, stop_at: float, counts: SoakCounts) -> None:
    scenario = Scenario(chunks=40, size=8, pacing_ms=5)
    conn = await HttpConnection.open(HOST, b.gateway_port)
    n = 0
    while perf() < stop_at:
        n += 1
        dialect: Dialect = "anthropic" if n % 2 else "openai"
        batch = Batch()
        stream = batch.add(StreamResult(f"h{worker}-{n}", scenario))
        conn.request(stream, sse_request(stream.sid, dialect, scenario, b.gw_host), "gateway")
        abort = n % 10 == 3
        if abort:
            await asyncio.sleep(0.05)
            conn.abort()
        await batch.wait(15)
        counts.record(stream, "abort" if abort else None)
        if abort or conn.transport is None:
            conn = await HttpConnection.open(HOST, b.gateway_port)
        else:
            await conn.wait_idle()
    conn.close()


async def scenario_soak(b: Bench) -> dict[str, Any]:
    """Continuous streams (with cancels and dropped sockets) on a fresh gateway; RSS every second."""
    s = b.settings
    await b.start_gateway("gateway-soak", procs.SHORT_RETENTION)
    await asyncio.sleep(0.5)
    up0 = await b.upstream_stats()
    counts = SoakCounts()
    t0 = perf()
    stop_at = t0 + s.soak_seconds
    samples: list[tuple[float, int]] = []

    async def sample() -> None:
        while perf() < stop_at:
            samples.append((round(perf() - t0, 2), b.gw.rss()))
            await asyncio.sleep(1)

    cpu0 = b.cpu()
    workers = [_soak_ws(b, w, stop_at, counts) for w in range(8)]
    workers += [_soak_sse(b, w, stop_at, counts) for w in range(4)]
    await asyncio.gather(sample(), *workers)
    wall = perf() - t0
    gc_summary = None
    if b.gc_probe:
        full = [e for e in procs.gc_events(b.gw, t0, perf()) if e["generation"] == 2]
        gc_summary = {
            "full_collections": len(full),
            "max_ms": max((e["ms"] for e in full), default=0.0),
            "tracked_objects": [int(e["tracked"]) for e in full],  # after each full collection
        }
    cpu = cpu_delta(cpu0, b.cpu(), wall)
    await asyncio.sleep(2)
    health = await b.healthz()
    up1 = await b.upstream_stats()
    rss_final = b.gw.rss()
    b.gw.stop()
    b.gateway = None
    duration = s.soak_seconds

    def quarter(q: int) -> list[float]:
        lo, hi = duration * q / 4, duration * (q + 1) / 4
        return [float(v) for t, v in samples if lo <= t < hi]

    second, last = quarter(1), quarter(3)
    growth = (median(last) - median(second)) / 1024 if second and last else math.nan
    half = [(t, v / 1024) for t, v in samples if t >= duration / 2]
    slope = _slope(half) * 60 if len(half) >= 3 else math.nan
    return {
        "seconds": duration,
        "streams_ok": counts.ok,
        "streams_cancelled": counts.cancelled,
        "streams_cut_by_client": counts.aborted,
        "streams_failed": counts.failed,
        "errors": counts.errors,
        "chunks": counts.chunks,
        "rss_kib": [[t, v // 1024] for t, v in samples],
        "rss_final_kib": rss_final // 1024,
        "growth_kib": round(growth, 1),  # median of the last quarter - median of the second
        "slope_kib_per_min": round(slope, 1),  # least squares over the second half
        "gateway_active_streams_after": health.get("active_streams"),
        "upstream_responses_cut": up1["cut"] - up0["cut"],
        "upstream_open_connections_after": up1["open_connections"],
        "cpu": cpu,
        "gateway_gc": gc_summary,
    }


def _slope(points: Sequence[tuple[float, float]]) -> float:
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    den = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / den if den else math.nan
