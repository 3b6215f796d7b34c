"""The ``ai_sdk`` scenario: ``POST /v1/ui/chat`` against the AI SDK's own Node route.

The peer is what an app built on the SDK runs: ``streamText({model: openai.chat(model), ...})
.toUIMessageStreamResponse()`` (bench/ai_sdk_route/route.mjs) on the same fake upstream, on the
gateway's core. Both answer the UI message stream, read by the same client (a ``text-delta`` is
checked like a gateway chunk); the upstream read directly is the reference. Three figures, the
targets interleaved: time to the first ``text-delta`` at concurrency 1, the most simultaneous
20 ms-paced chats with no stall, and relay throughput with no pacing.
"""

from __future__ import annotations

import math
from typing import Any

from bench import gateway as procs
from bench.clients import Batch, HttpConnection, StreamResult, new_result, perf
from bench.harness import HOST, Bench, HttpTarget, cpu_delta, distinct_errors, log, ms, rotate
from bench.scenario import Scenario
from bench.scenarios.stall import stall_ladder
from bench.scenarios.throughput import round_figures
from bench.stats import median, summary
from bench.streams import concurrent_round, http_opener, http_target, open_many

TARGETS: tuple[HttpTarget, ...] = ("direct", "ui", "ai_sdk")
NOT_INSTALLED = (
    "tests/ai_sdk_node/node_modules is not installed (make tests/ai_sdk_node/node_modules/.installed)"
)


async def scenario_ai_sdk(b: Bench) -> dict[str, Any]:
    node = procs.ai_sdk_node()
    if node is None:
        log(f"ai_sdk: skipped: {NOT_INSTALLED}")
        return {"skipped": NOT_INSTALLED}
    await b.start_ai_sdk_route(node)
    try:
        return {
            "first_part": await _first_part(b),
            "stall": await stall_ladder(b, ["ui", "ai_sdk"], b.settings.ai_sdk_steps, "ai_sdk stall"),
            "throughput": await _throughput(b),
        }
    finally:
        b.stop_others()


async def _run_one(
    b: Bench, conns: dict[HttpTarget, HttpConnection], target: HttpTarget, n: int
) -> StreamResult:
    """One stream of the first-part scenario on the target's kept connection."""
    scenario = Scenario(chunks=2, size=8, pacing_ms=2)
    batch = Batch()
    stream = batch.add(new_result(f"a{n}", scenario))
    port, request, mode = http_target(b, target, stream)
    conn = conns.get(target)
    if conn is None or conn.transport is None:
        conn = conns[target] = await HttpConnection.open(HOST, port)
    conn.request(stream, request, mode)
    await batch.wait(10 + scenario.duration_s)
    await conn.wait_idle()
    return stream


async def _first_part(b: Bench) -> dict[str, Any]:
    """Request written -> first text read (direct: the first content chunk; the UI streams: the
    first ``text-delta``), at concurrency 1, in rounds whose order of targets rotates."""
    s = b.settings
    conns: dict[HttpTarget, HttpConnection] = {}
    count = 0
    for _ in range(s.warmup):
        for target in TARGETS:
            count += 1
            await _run_one(b, conns, target, count)
    samples: dict[str, list[float]] = {t: [] for t in TARGETS}
    failed: dict[str, list[StreamResult]] = {t: [] for t in TARGETS}
    per_round = max(1, s.ai_sdk_samples // s.ai_sdk_rounds)
    cpu0, t0 = b.cpu(), perf()
    for r in range(s.ai_sdk_rounds):
        for target in rotate(TARGETS, r):
            for _ in range(per_round):
                count += 1
                stream = await _run_one(b, conns, target, count)
                if stream.ok and stream.ttft is not None:
                    samples[target].append(stream.ttft)
                else:
                    failed[target].append(stream)
        log(f"ai_sdk first part: round {r + 1}/{s.ai_sdk_rounds}")
    cpu = cpu_delta(cpu0, b.cpu(), perf() - t0)
    for conn in conns.values():
        conn.close()
    results: dict[str, Any] = {}
    for target in TARGETS:
        values = samples[target]
        results[target] = {
            **summary(values, 1000),
            "failed": len(failed[target]),
            "errors": distinct_errors(failed[target]),
            "samples_ms": [ms(v) for v in values],
        }
    return {"scenario": "bench-n2-s8-p2", "rounds": s.ai_sdk_rounds, "cpu": cpu, "results": results}


async def _throughput(b: Bench) -> dict[str, Any]:
    """``thr_streams`` concurrent unpaced streams of ``ai_sdk_thr_chunks`` chunks, one per connection,
    per target, in ``thr_rounds`` rounds whose order rotates: chunks delivered per second."""
    s = b.settings
    scenario = Scenario(chunks=s.ai_sdk_thr_chunks, size=8, pacing_ms=0)
    rounds: dict[str, list[dict[str, float]]] = {t: [] for t in TARGETS}
    failed: dict[str, list[StreamResult]] = {t: [] for t in TARGETS}
    for r in range(s.thr_rounds):
        for target in rotate(TARGETS, r):
            opened = await open_many(http_opener(_port(b, target)), s.thr_streams)
            conns: dict[str, Any] = {target: opened}
            cpu0 = b.cpu()
            streams = await concurrent_round(b, target, scenario, s.thr_streams, 0.0, conns)
            failed[target].extend(st for st in streams if not st.ok)
            server = "ai_sdk_route" if target == "ai_sdk" else "gateway"
            if measured := round_figures(streams, cpu0, b.cpu(), server):
                measured["server_us_per_chunk"] = measured[f"{server}_us_per_chunk"]
                rounds[target].append(measured)
            for conn in conns[target]:
                conn.close()
        log(f"ai_sdk throughput: round {r + 1}/{s.thr_rounds}")
    results: dict[str, Any] = {}
    for target in TARGETS:
        done = rounds[target]
        results[target] = {
            "chunks_per_s": median([x["chunks_per_s"] for x in done]) if done else math.nan,
            "server_us_per_chunk": median([x["server_us_per_chunk"] for x in done]) if done else math.nan,
            "rounds": done,
            "failed": len(failed[target]),
            "errors": distinct_errors(failed[target]),
        }
    return {"scenario": scenario.model, "streams": s.thr_streams, "results": results}


def _port(b: Bench, target: HttpTarget) -> int:
    return {"direct": b.upstream_port, "ai_sdk": b.ai_sdk_port}.get(target, b.gateway_port)
