"""The ``stall`` scenario: the most simultaneous paced streams with no stall."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from typing import Any, cast

from bench import gateway as procs
from bench.clients import (
    Batch,
    HttpConnection,
    LagMonitor,
    StreamResult,
    WsConnection,
    gateway_body,
    perf,
)
from bench.harness import GAP_LIMIT, HOST, KEYS, Bench, HttpTarget, cpu_delta, distinct_errors, log, ms
from bench.scenario import Scenario
from bench.settings import Settings
from bench.stats import percentile
from bench.streams import http_target, open_many

HTTP_LAYOUTS = ("direct", "sse", "ui", "ai_sdk")


def _stall_scenario(s: Settings, count: int) -> tuple[float, Scenario]:
    """(ramp seconds, the streams' scenario): streams long enough to all run at once for a while."""
    ramp = count / s.stall_rate
    return ramp, Scenario(chunks=math.ceil((ramp + s.stall_steady) / 0.020) + 1, size=8, pacing_ms=20)


async def _stall_step(b: Bench, layout: str, count: int) -> dict[str, Any]:
    s = b.settings
    ramp, scenario = _stall_scenario(s, count)
    loop = asyncio.get_running_loop()
    batch = Batch()
    # keyed: the upstream's write times tell its own lateness from the path's
    streams = [batch.add(StreamResult(f"m{i}", scenario.keyed(next(KEYS)))) for i in range(count)]
    starters: list[Callable[[], None]] = []
    sockets: list[HttpConnection | WsConnection] = []
    try:
        if layout in HTTP_LAYOUTS:
            port = http_target(b, cast(HttpTarget, layout), streams[0])[0]
            https = await open_many(lambda: HttpConnection.open(HOST, port), count)
            sockets.extend(https)
            for conn, stream in zip(https, streams, strict=True):
                _, request, mode = http_target(b, cast(HttpTarget, layout), stream)
                starters.append(lambda c=conn, st=stream, rq=request, m=mode: c.request(st, rq, m))  # type: ignore[misc]
        else:
            per = 1 if layout == "ws-1" else 8
            wss = await open_many(lambda: WsConnection.open(HOST, b.gateway_port), math.ceil(count / per))
            sockets.extend(wss)
            for i, stream in enumerate(streams):
                body = gateway_body(stream.sid, "openai", stream.scenario, ws=True)
                starters.append(lambda w=wss[i // per], st=stream, bd=body: w.start(st, bd))  # type: ignore[misc]
    except (OSError, TimeoutError) as exc:
        for sock in sockets:
            sock.close()
        return {"streams": count, "passed": False, "setup_error": repr(exc)}
    await asyncio.sleep(0.2)
    lag = LagMonitor()
    lag.start()
    cpu0, t0 = b.cpu(), perf()
    for i, start in enumerate(starters):
        loop.call_later(i * ramp / count, start)
    # CPU while every stream runs: from shortly after the last start to shortly before the first end
    steady: list[tuple[float, dict[str, float]]] = []
    window = (ramp + 0.1, scenario.duration_s - 0.1)
    if window[1] > window[0]:
        for at in window:
            loop.call_later(at, lambda: steady.append((perf(), b.cpu())))
    await batch.wait(ramp + scenario.duration_s + 15)
    wall = perf() - t0
    cpu = cpu_delta(cpu0, b.cpu(), wall)
    if len(steady) == 2:
        cpu_steady = cpu_delta(steady[0][1], steady[1][1], steady[1][0] - steady[0][0])
        cpu |= {
            f"{k.removesuffix('_core')}_core_steady": v for k, v in cpu_steady.items() if k.endswith("_core")
        }
    max_lag = await lag.stop()
    t_end = perf()
    for sock in sockets:
        sock.close()
    ok = [st for st in streams if st.ok]
    sends = await b.sends()
    upstream_gaps: list[float] = []  # between the upstream's own writes
    delays: list[float] = []  # upstream write -> client read, every arrival
    for st in ok:
        written = sends.get(str(st.scenario.key))
        if written is None or len(written) != scenario.chunks + 1:
            continue
        upstream_gaps.append(max(written[i] - written[i - 1] for i in range(2, len(written))))
        delays.extend(st.delays(written[1:]))
    gaps = [g for st in ok for g in st.gaps()]
    ttfts = [st.ttft for st in ok if st.ttft is not None]
    max_gap = max(gaps, default=math.nan)
    stalled = sum(1 for st in ok if max(st.gaps(), default=0) > GAP_LIMIT)
    passed = len(ok) == count and stalled == 0
    steady_gaps = [
        st.arrivals[i] - st.arrivals[i - 1]
        for st in ok
        for i in range(1, len(st.arrivals))
        if t0 + window[0] <= st.arrivals[i] <= t0 + window[1]
    ]
    stall_times = sorted(
        round(st.arrivals[i] - t0, 2)
        for st in ok
        for i in range(1, len(st.arrivals))
        if st.arrivals[i] - st.arrivals[i - 1] > GAP_LIMIT
    )
    upstream_max_gap = max(upstream_gaps, default=0.0)
    limited_by = None
    if not passed:
        # the load generator's core is shared by the client and the upstream: if either ran late
        # (the client's loop, or the upstream's own writes), the step says nothing about the path
        late = max_lag > 0.010 or upstream_max_gap > GAP_LIMIT
        limited_by = "load generator" if late or layout == "direct" else "gateway"
    result: dict[str, Any] = {
        "streams": count,
        "passed": passed,
        "limited_by": limited_by,
        "stall_times_s": sorted(set(stall_times))[:20],  # when (after the first start) gaps > 40 ms ended
        "complete": len(ok),
        "stalled_streams": stalled,
        "gaps_over_40ms": sum(1 for g in gaps if g > GAP_LIMIT),
        "gap_p50_ms": ms(percentile(gaps, 50)) if gaps else math.nan,
        "gap_p99_ms": ms(percentile(gaps, 99)) if gaps else math.nan,
        "gap_max_ms": ms(max_gap) if gaps else math.nan,
        "steady_gap_max_ms": ms(max(steady_gaps)) if steady_gaps else math.nan,
        "upstream_gap_max_ms": ms(upstream_max_gap),
        "delay_p50_ms": ms(percentile(delays, 50)) if delays else math.nan,
        "delay_p99_ms": ms(percentile(delays, 99)) if delays else math.nan,
        "ramp_s": round(ramp, 3),
        "chunks_per_stream": scenario.chunks,
        "ttft_p50_ms": ms(percentile(ttfts, 50)) if ttfts else math.nan,
        "ttft_max_ms": ms(max(ttfts)) if ttfts else math.nan,
        "merged_arrivals": sum(1 for st in ok for c in st.counts if c > 1),
        "client_max_lag_ms": ms(max_lag),
        "errors": distinct_errors(streams),
        **cpu,
    }
    if b.gc_probe:
        events = procs.gc_events(b.gw, t0, t_end)
        result["gateway_gc"] = {
            "collections_over_1ms": len(events),
            "full_collections": sum(1 for e in events if e["generation"] == 2),
            "max_ms": max((e["ms"] for e in events), default=0.0),
            "tracked_objects": max((e["tracked"] for e in events), default=0),
            "long": [
                {"at_s": round(e["at"] - t0, 3), "gen": e["generation"], "ms": round(e["ms"], 1)}
                for e in events
                if e["ms"] > 5
            ][:20],
        }
    await asyncio.sleep(0.5)  # let the gateway close the cancelled or finished upstreams
    return result


async def scenario_stall(b: Bench) -> dict[str, Any]:
    """Largest N of simultaneous 20 ms-paced streams with no gap above 40 ms and nothing lost."""
    return await stall_ladder(b, list(b.settings.stall_layouts), b.settings.stall_steps, "stall")


async def stall_ladder(b: Bench, layouts: list[str], counts: Sequence[int], name: str) -> dict[str, Any]:
    """Each step of ``counts`` for every layout that has not failed yet (``HTTP_LAYOUTS``: one
    stream per connection; ``ws-1``/``ws-8``: streams per WebSocket)."""
    s = b.settings
    steps: dict[str, list[dict[str, Any]]] = {layout: [] for layout in layouts}
    active = list(layouts)
    for count in counts:
        for layout in list(active):
            result = await _stall_step(b, layout, count)
            steps[layout].append(result)
            log(
                f"{name}: {layout:6} N={count:5}: {'pass' if result['passed'] else 'FAIL'} "
                f"complete={result.get('complete')} gap max={result.get('gap_max_ms')} ms "
                f"gw core={result.get('gateway_core')} client lag={result.get('client_max_lag_ms')} ms"
            )
            if not result["passed"]:
                active.remove(layout)
        if not active:
            break
    best = {
        layout: max((r["streams"] for r in steps[layout] if r["passed"]), default=0) for layout in layouts
    }
    ceiling = {layout: all(r["passed"] for r in steps[layout]) for layout in layouts}
    return {
        "pacing_ms": 20,
        "start_rate_per_s": s.stall_rate,
        "steady_s": s.stall_steady,
        "steps_tried": list(counts),
        "max_streams": best,
        "never_failed": ceiling,  # true: the largest step passed, the real limit is higher
        "steps": steps,
    }
