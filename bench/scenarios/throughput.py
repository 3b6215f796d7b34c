"""The ``throughput`` scenario: relay throughput with zero pacing."""

from __future__ import annotations

import math
from typing import Any

from bench.clients import Batch, StreamResult, WsConnection, gateway_body, new_result
from bench.harness import HOST, TRANSPORTS, Bench, cpu_delta, distinct_errors, log, rotate
from bench.scenario import Scenario
from bench.stats import median
from bench.streams import concurrent_round, http_opener, open_many


async def scenario_throughput(b: Bench) -> dict[str, Any]:
    """Relay throughput with zero pacing: upstream chunks delivered per second."""
    return await relay_throughput(
        b, Scenario(chunks=b.settings.thr_chunks, size=8, pacing_ms=0), "throughput"
    )


def round_figures(
    streams: list[StreamResult], cpu0: dict[str, float], cpu1: dict[str, float], server: str
) -> dict[str, float] | None:
    """One round's chunks per second over its wall time (first request -> last end), with the
    CPU of each process and the ``server`` process's per chunk; None when no stream completed."""
    ok = [st for st in streams if st.ok]
    if not ok:
        return None
    wall = max(st.t_end for st in ok) - min(st.t_sent for st in streams)
    chunks = sum(st.delivered for st in ok)
    cpu = cpu_delta(cpu0, cpu1, wall)
    return {
        "chunks": chunks,
        "seconds": round(wall, 4),
        "chunks_per_s": round(chunks / wall, 1),
        "arrivals": sum(len(st.counts) for st in ok),
        f"{server}_us_per_chunk": round(cpu.get(f"{server}_s", 0) / chunks * 1e6, 3),
        **cpu,
    }


async def relay_throughput(b: Bench, scenario: Scenario, name: str) -> dict[str, Any]:
    """``thr_streams`` concurrent streams of ``scenario`` (unpaced), OpenAI format, one per
    connection, per transport, in ``thr_rounds`` rounds whose order of transports rotates: upstream
    chunks (text, argument fragments or reasoning deltas) delivered per second."""
    s = b.settings
    parts = scenario.kind != "text"
    results: dict[str, list[dict[str, float]]] = {t: [] for t in TRANSPORTS}
    failed: dict[str, list[StreamResult]] = {t: [] for t in TRANSPORTS}
    for r in range(s.thr_rounds):
        for transport in rotate(TRANSPORTS, r):
            sockets: list[WsConnection] = []
            conns: dict[str, Any] = {}
            if transport == "ws":  # one socket per stream, like the HTTP transports
                sockets = await open_many(
                    lambda: WsConnection.open(HOST, b.gateway_port, parts=parts), s.thr_streams
                )
            else:
                port = b.upstream_port if transport == "direct" else b.gateway_port
                conns[transport] = await open_many(http_opener(port), s.thr_streams)
            cpu0 = b.cpu()
            if transport == "ws":
                batch = Batch()
                streams = [batch.add(new_result(f"x{i}", scenario)) for i in range(s.thr_streams)]
                for ws, stream in zip(sockets, streams, strict=True):
                    ws.start(stream, gateway_body(stream.sid, "openai", scenario, ws=True))
                await batch.wait(60)
            else:
                streams = await concurrent_round(b, transport, scenario, s.thr_streams, 0.0, conns)
            failed[transport].extend(st for st in streams if not st.ok)
            if measured := round_figures(streams, cpu0, b.cpu(), "gateway"):
                results[transport].append(measured)
            for conn in [*sockets, *conns.get(transport, [])]:
                conn.close()
        log(f"{name}: round {r + 1}/{s.thr_rounds}")
    out: dict[str, Any] = {"scenario": scenario.model, "streams": s.thr_streams, "results": {}}
    for t in TRANSPORTS:
        rounds = results[t]
        out["results"][t] = {
            "chunks_per_s": median([x["chunks_per_s"] for x in rounds]) if rounds else math.nan,
            "rounds": rounds,
            "failed": len(failed[t]),
            "errors": distinct_errors(failed[t]),
        }
    return out
