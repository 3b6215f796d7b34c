"""The benchmark: ``python -m bench.run [--quick] [--only SCENARIO ...] [--no-pin]``.

Starts the fake upstream and the gateway (each its own process), measures the same streams read
directly from the upstream and through the gateway over WebSocket and SSE, interleaved round by
round, prints a table, and writes ``bench/results/<UTC timestamp>.json``, ``latest.json`` and
``chart.png``. The method and what limits each figure: docs/benchmarks.md.

Exit status: 0 when the harness ran (whether or not a target was met), 1 when it could not.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import itertools
import json
import math
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, TypeVar

import psutil

from bench import gateway as procs
from bench.clients import (
    Batch,
    Dialect,
    HttpConnection,
    LagMonitor,
    StreamResult,
    WsConnection,
    direct_request,
    gateway_body,
    perf,
    sse_request,
)
from bench.scenario import Scenario
from bench.stats import median, percentile, summary

HOST = "127.0.0.1"
RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("ttft", "gap", "throughput", "stall", "memory", "soak")
Transport = Literal["direct", "ws", "sse"]
TRANSPORTS: tuple[Transport, ...] = ("direct", "ws", "sse")
DIALECTS: tuple[Dialect, ...] = ("openai", "anthropic")
GAP_LIMIT = 0.040  # a chunk gap above this is a stall
KEYS = itertools.count(1)  # stream keys for the upstream's write-time record
T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    ttft_samples: int  # per transport, OpenAI format
    ttft_samples_anthropic: int
    ttft_rounds: int
    gap_streams: int  # concurrent, started 5 ms apart
    gap_chunks: int
    gap_rounds: int
    stall_steps: tuple[int, ...]
    stall_rate: float  # streams started per second: N streams start over N / rate seconds
    stall_steady: float  # seconds every stream of a step runs at once (streams last ramp + steady)
    thr_streams: int
    thr_chunks: int
    thr_rounds: int
    mem_connections: int
    soak_seconds: float
    warmup: int
    settle: float  # seconds to let the gateway settle before an RSS reading
    stall_layouts: tuple[str, ...] = ("direct", "ws-1", "ws-8", "sse")


FULL = Settings(
    ttft_samples=600,
    ttft_samples_anthropic=200,
    ttft_rounds=10,
    gap_streams=4,
    gap_chunks=100,
    gap_rounds=4,
    stall_steps=(64, 128, 256, 384, 512, 768, 1024),
    stall_rate=250,
    stall_steady=2.0,
    thr_streams=4,
    thr_chunks=25000,
    thr_rounds=3,
    mem_connections=500,
    soak_seconds=60,
    warmup=30,
    settle=1.0,
)
QUICK = Settings(
    ttft_samples=60,
    ttft_samples_anthropic=20,
    ttft_rounds=3,
    gap_streams=4,
    gap_chunks=25,
    gap_rounds=1,
    stall_steps=(16, 64),
    stall_rate=500,
    stall_steady=0.3,
    thr_streams=2,
    thr_chunks=1000,
    thr_rounds=1,
    mem_connections=50,
    soak_seconds=4,
    warmup=5,
    settle=0.3,
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rotate(items: Sequence[T], by: int) -> list[T]:
    by %= len(items)
    return [*items[by:], *items[:by]]


def ms(value: float) -> float:
    return round(value * 1000, 4)


# ---- the processes under test ------------------------------------------------------------------


class Bench:
    def __init__(self, settings: Settings, pin: bool, gc_probe: bool = False) -> None:
        self.settings = settings
        self.gc_probe = gc_probe
        self.workdir = procs.workdir()
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.pinned = pin and len(cpus) >= 2
        self.gateway_cpus = {cpus[-1]} if self.pinned else None
        self.load_cpus = set(cpus[:-1]) if self.pinned else None  # the client and the upstream
        self.upstream: procs.Process | None = None
        self.upstream_port = 0
        self.gateway: procs.Process | None = None
        self.gateway_port = 0
        self.me = psutil.Process()

    async def start_upstream(self) -> None:
        procs.pin(0, self.load_cpus)
        self.upstream, self.upstream_port = await procs.start_upstream(self.workdir, self.load_cpus)
        log(f"upstream: pid {self.upstream.pid}, port {self.upstream_port}")

    async def start_gateway(self, name: str = "gateway") -> None:
        if self.gateway is not None:
            self.gateway.stop()
        self.gateway, self.gateway_port = await procs.start_gateway(
            self.workdir, self.upstream_port, self.gateway_cpus, name, self.gc_probe
        )
        log(f"{name}: pid {self.gateway.pid}, port {self.gateway_port}, log {self.gateway.log_path}")

    def stop(self) -> None:
        for proc in (self.gateway, self.upstream):
            if proc is not None:
                proc.stop()

    @property
    def gw(self) -> procs.Process:
        assert self.gateway is not None
        return self.gateway

    @property
    def up_host(self) -> str:
        return f"{HOST}:{self.upstream_port}"

    @property
    def gw_host(self) -> str:
        return f"{HOST}:{self.gateway_port}"

    def cpu(self) -> dict[str, float]:
        times = self.me.cpu_times()
        out = {"client": float(times.user + times.system)}
        if self.gateway is not None:
            out["gateway"] = self.gateway.cpu_seconds()
        if self.upstream is not None:
            out["upstream"] = self.upstream.cpu_seconds()
        return out

    async def healthz(self) -> dict[str, Any]:
        return await get_json(self.gateway_port, "/healthz")

    async def upstream_stats(self) -> dict[str, Any]:
        return await get_json(self.upstream_port, "/stats")

    async def sends(self) -> dict[str, list[float]]:
        """The upstream's write times of keyed streams since the last call, by key."""
        return await get_json(self.upstream_port, "/sends")


async def get_json(port: int, path: str) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(f"GET {path} HTTP/1.1\r\nhost: {HOST}\r\nconnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    body = data.partition(b"\r\n\r\n")[2]
    if b"transfer-encoding: chunked" in data.partition(b"\r\n\r\n")[0].lower():
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    result: dict[str, Any] = json.loads(body)
    return result


def cpu_delta(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, float]:
    """CPU seconds per process, and the share of one core over the wall time."""
    out: dict[str, float] = {}
    for name, value in after.items():
        used = value - before.get(name, value)
        out[f"{name}_s"] = round(used, 3)
        out[f"{name}_core"] = round(used / wall, 3) if wall > 0 else math.nan
    return out


def _http(port: int) -> Callable[[], Awaitable[HttpConnection]]:
    return lambda: HttpConnection.open(HOST, port)


async def open_many(factory: Callable[[], Awaitable[T]], count: int, parallel: int = 128) -> list[T]:
    out: list[T] = []
    while len(out) < count:
        take = min(parallel, count - len(out))
        out.extend(await asyncio.gather(*(factory() for _ in range(take))))
    return out


# ---- one stream at a time, on kept-alive connections --------------------------------------------


class Sequential:
    """A connection per transport, each running one stream at a time."""

    def __init__(self, bench: Bench) -> None:
        self.b = bench
        self.direct: HttpConnection | None = None
        self.sse: HttpConnection | None = None
        self.ws: WsConnection | None = None
        self.count = 0

    async def open(self) -> None:
        self.direct = await HttpConnection.open(HOST, self.b.upstream_port)
        self.sse = await HttpConnection.open(HOST, self.b.gateway_port)
        self.ws = await WsConnection.open(HOST, self.b.gateway_port)

    def close(self) -> None:
        for conn in (self.direct, self.sse, self.ws):
            if conn is not None:
                conn.close()

    async def run(self, transport: Transport, dialect: Dialect, scenario: Scenario) -> StreamResult:
        self.count += 1
        batch = Batch()
        stream = batch.add(StreamResult(f"q{self.count}", scenario))
        if transport == "direct":
            if self.direct is None or self.direct.transport is None:
                self.direct = await HttpConnection.open(HOST, self.b.upstream_port)
            request = direct_request(dialect, scenario, self.b.up_host)
            self.direct.request(stream, request, dialect)
            await batch.wait(10 + scenario.duration_s)
            await self.direct.wait_idle()
        elif transport == "sse":
            if self.sse is None or self.sse.transport is None:
                self.sse = await HttpConnection.open(HOST, self.b.gateway_port)
            request = sse_request(stream.sid, dialect, scenario, self.b.gw_host)
            self.sse.request(stream, request, "gateway")
            await batch.wait(10 + scenario.duration_s)
            await self.sse.wait_idle()
        else:
            if self.ws is None or self.ws.transport is None:
                self.ws = await WsConnection.open(HOST, self.b.gateway_port)
            self.ws.start(stream, gateway_body(stream.sid, dialect, scenario, ws=True))
            await batch.wait(10 + scenario.duration_s)
        return stream


# ---- scenarios -----------------------------------------------------------------------------------


def _errors(streams: Sequence[StreamResult], limit: int = 3) -> list[str]:
    seen: list[str] = []
    for s in streams:
        if s.error is not None and s.error not in seen:
            seen.append(s.error)
            if len(seen) >= limit:
                break
    return seen


async def scenario_ttft(b: Bench) -> dict[str, Any]:
    """Time to first token at concurrency 1: request written -> first content read.

    The upstream's record splits it in two legs: request written -> request read by the
    upstream, and first chunk written by the upstream -> read by the client.
    """
    s = b.settings
    scenario = Scenario(chunks=2, size=8, pacing_ms=2)
    seq = Sequential(b)
    await seq.open()
    for _ in range(s.warmup):
        for transport in TRANSPORTS:
            for dialect in DIALECTS:
                await seq.run(transport, dialect, scenario)
    samples: dict[str, list[float]] = {}
    legs: dict[str, tuple[list[float], list[float]]] = {}
    failed: dict[str, list[StreamResult]] = {}
    cpu0, t0 = b.cpu(), perf()
    per_round = max(1, s.ttft_samples // s.ttft_rounds)
    per_round_a = max(1, s.ttft_samples_anthropic // s.ttft_rounds)
    for r in range(s.ttft_rounds):
        measured: list[tuple[str, StreamResult]] = []
        for transport in rotate(TRANSPORTS, r):
            for dialect, count in zip(DIALECTS, (per_round, per_round_a), strict=True):
                key = f"{transport}/{dialect}"
                for _ in range(count):
                    stream = await seq.run(transport, dialect, scenario.keyed(next(KEYS)))
                    if stream.ok and stream.ttft is not None:
                        samples.setdefault(key, []).append(stream.ttft)
                        measured.append((key, stream))
                    else:
                        failed.setdefault(key, []).append(stream)
        sends = await b.sends()
        for key, stream in measured:
            written = sends.get(str(stream.scenario.key))
            if written and len(written) >= 2:
                request, response = legs.setdefault(key, ([], []))
                request.append(written[0] - stream.t_sent)
                response.append(stream.arrivals[0] - written[1])
        log(f"ttft: round {r + 1}/{s.ttft_rounds}")
    cpu = cpu_delta(cpu0, b.cpu(), perf() - t0)
    seq.close()
    out: dict[str, Any] = {
        "scenario": scenario.model,
        "concurrency": 1,
        "rounds": s.ttft_rounds,
        "cpu": cpu,
        "results": {},
    }
    for key, values in samples.items():
        request, response = legs.get(key, ([], []))
        out["results"][key] = {
            **summary(values, 1000),
            "request_leg": summary(request, 1000),
            "response_leg": summary(response, 1000),
            "failed": len(failed.get(key, [])),
            "errors": _errors(failed.get(key, [])),
            "samples_ms": [ms(v) for v in values],
        }
    for key, streams in failed.items():
        if key not in out["results"]:
            out["results"][key] = {"n": 0, "failed": len(streams), "errors": _errors(streams)}
    return out


async def _concurrent_round(
    b: Bench,
    transport: Transport,
    scenario: Scenario,
    count: int,
    spacing: float,
    conns: dict[str, Any],
    dialect: Dialect = "openai",
    keyed: bool = False,
) -> list[StreamResult]:
    """``count`` streams, started ``spacing`` s apart, on the transport's kept connections."""
    loop = asyncio.get_running_loop()
    batch = Batch()
    streams = [
        batch.add(StreamResult(f"c{i}", scenario.keyed(next(KEYS)) if keyed else scenario))
        for i in range(count)
    ]
    http: list[HttpConnection] = conns.get(transport, []) if transport != "ws" else []

    def starter(i: int) -> Callable[[], None]:
        stream = streams[i]
        if transport == "direct":
            request = direct_request(dialect, stream.scenario, b.up_host)
            return lambda: http[i].request(stream, request, dialect)
        if transport == "sse":
            request = sse_request(stream.sid, dialect, stream.scenario, b.gw_host)
            return lambda: http[i].request(stream, request, "gateway")
        ws: WsConnection = conns["ws"]
        body = gateway_body(stream.sid, dialect, stream.scenario, ws=True)
        return lambda: ws.start(stream, body)

    for i in range(count):
        loop.call_later(i * spacing, starter(i))
    await batch.wait(count * spacing + scenario.duration_s + 15)
    for conn in http:
        if conn.transport is not None:
            await conn.wait_idle()
    return streams


async def _kept_connections(b: Bench, count: int) -> dict[str, Any]:
    return {
        "direct": await open_many(lambda: HttpConnection.open(HOST, b.upstream_port), count),
        "sse": await open_many(lambda: HttpConnection.open(HOST, b.gateway_port), count),
        "ws": await WsConnection.open(HOST, b.gateway_port),
    }


def _close_kept(conns: dict[str, Any]) -> None:
    for conn in [*conns["direct"], *conns["sse"], conns["ws"]]:
        conn.close()


async def scenario_gap(b: Bench) -> dict[str, Any]:
    """Inter-chunk gaps at 20 ms pacing: a few concurrent streams started 5 ms apart.

    Besides the gaps as the client sees them, the upstream's write times give each arrival's
    delay (upstream write -> client read) and each gap's stretch (client gap - upstream gap),
    which leave out the upstream's own timer jitter (about 1 ms: its loop clock has millisecond
    resolution).
    """
    s = b.settings
    scenario = Scenario(chunks=s.gap_chunks, size=8, pacing_ms=20)
    gaps: dict[str, list[float]] = {t: [] for t in TRANSPORTS}
    delays: dict[str, list[float]] = {t: [] for t in TRANSPORTS}
    stretch: dict[str, list[float]] = {t: [] for t in TRANSPORTS}
    failed: dict[str, list[StreamResult]] = {t: [] for t in TRANSPORTS}
    merged: dict[str, int] = {t: 0 for t in TRANSPORTS}
    arrivals: dict[str, int] = {t: 0 for t in TRANSPORTS}
    for r in range(s.gap_rounds):
        done: list[tuple[Transport, StreamResult]] = []
        # new connections each round: the gateway closes HTTP connections idle for 5 s (uvicorn)
        conns = await _kept_connections(b, s.gap_streams)
        for transport in rotate(TRANSPORTS, r):
            streams = await _concurrent_round(b, transport, scenario, s.gap_streams, 0.005, conns, keyed=True)
            for stream in streams:
                if not stream.ok:
                    failed[transport].append(stream)
                    continue
                done.append((transport, stream))
                gaps[transport].extend(stream.gaps())
                merged[transport] += sum(1 for c in stream.counts if c > 1)
                arrivals[transport] += len(stream.counts)
        sends = await b.sends()
        for transport, stream in done:
            written = sends.get(str(stream.scenario.key))
            if written is None or len(written) != scenario.chunks + 1:
                continue
            d = stream.delays(written[1:])
            delays[transport].extend(d)
            stretch[transport].extend(d[j] - d[j - 1] for j in range(1, len(d)))
        _close_kept(conns)
        log(f"gap: round {r + 1}/{s.gap_rounds}")
    return {
        "scenario": scenario.model,
        "streams": s.gap_streams,
        "rounds": s.gap_rounds,
        "results": {
            t: {
                **summary(gaps[t], 1000),
                "over_40ms": sum(1 for g in gaps[t] if g > GAP_LIMIT),
                "stretch": summary(stretch[t], 1000),
                "delay": summary(delays[t], 1000),
                "merged_arrivals": merged[t],
                "arrivals": arrivals[t],
                "failed": len(failed[t]),
                "errors": _errors(failed[t]),
                "samples_ms": [ms(g) for g in gaps[t]],
                "delay_samples_ms": [ms(g) for g in delays[t]],
            }
            for t in TRANSPORTS
        },
    }


async def scenario_throughput(b: Bench) -> dict[str, Any]:
    """Relay throughput with zero pacing: upstream chunks delivered per second."""
    s = b.settings
    scenario = Scenario(chunks=s.thr_chunks, size=8, pacing_ms=0)
    results: dict[str, list[dict[str, float]]] = {t: [] for t in TRANSPORTS}
    failed: dict[str, list[StreamResult]] = {t: [] for t in TRANSPORTS}
    for r in range(s.thr_rounds):
        for transport in rotate(TRANSPORTS, r):
            sockets: list[WsConnection] = []
            conns: dict[str, Any] = {}
            if transport == "ws":  # one socket per stream, like the HTTP transports
                sockets = await open_many(lambda: WsConnection.open(HOST, b.gateway_port), s.thr_streams)
            else:
                port = b.upstream_port if transport == "direct" else b.gateway_port
                conns[transport] = await open_many(_http(port), s.thr_streams)
            cpu0 = b.cpu()
            if transport == "ws":
                batch = Batch()
                streams = [batch.add(StreamResult(f"x{i}", scenario)) for i in range(s.thr_streams)]
                for ws, stream in zip(sockets, streams, strict=True):
                    ws.start(stream, gateway_body(stream.sid, "openai", scenario, ws=True))
                await batch.wait(60)
            else:
                streams = await _concurrent_round(b, transport, scenario, s.thr_streams, 0.0, conns)
            ok = [st for st in streams if st.ok]
            failed[transport].extend(st for st in streams if not st.ok)
            if ok:
                wall = max(st.t_end for st in ok) - min(st.t_sent for st in streams)
                chunks = sum(st.delivered for st in ok)
                cpu = cpu_delta(cpu0, b.cpu(), wall)
                results[transport].append(
                    {
                        "chunks": chunks,
                        "seconds": round(wall, 4),
                        "chunks_per_s": round(chunks / wall, 1),
                        "arrivals": sum(len(st.counts) for st in ok),
                        "gateway_us_per_chunk": round(cpu.get("gateway_s", 0) / chunks * 1e6, 3),
                        **cpu,
                    }
                )
            for conn in [*sockets, *conns.get(transport, [])]:
                conn.close()
        log(f"throughput: round {r + 1}/{s.thr_rounds}")
    out: dict[str, Any] = {"scenario": scenario.model, "streams": s.thr_streams, "results": {}}
    for t in TRANSPORTS:
        rounds = results[t]
        out["results"][t] = {
            "chunks_per_s": median([x["chunks_per_s"] for x in rounds]) if rounds else math.nan,
            "rounds": rounds,
            "failed": len(failed[t]),
            "errors": _errors(failed[t]),
        }
    return out


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
        if layout in ("direct", "sse"):
            port = b.upstream_port if layout == "direct" else b.gateway_port
            https = await open_many(lambda: HttpConnection.open(HOST, port), count)
            sockets.extend(https)
            for conn, stream in zip(https, streams, strict=True):
                if layout == "direct":
                    request = direct_request("openai", stream.scenario, b.up_host)
                    starters.append(lambda c=conn, st=stream, rq=request: c.request(st, rq, "openai"))  # type: ignore[misc]
                else:
                    request = sse_request(stream.sid, "openai", stream.scenario, b.gw_host)
                    starters.append(lambda c=conn, st=stream, rq=request: c.request(st, rq, "gateway"))  # type: ignore[misc]
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
        "errors": _errors(streams),
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
    s = b.settings
    layouts = list(s.stall_layouts)
    steps: dict[str, list[dict[str, Any]]] = {layout: [] for layout in layouts}
    active = list(layouts)
    for count in s.stall_steps:
        for layout in list(active):
            result = await _stall_step(b, layout, count)
            steps[layout].append(result)
            log(
                f"stall: {layout:6} N={count:5}: {'pass' if result['passed'] else 'FAIL'} "
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
        "steps_tried": list(s.stall_steps),
        "max_streams": best,
        "never_failed": ceiling,  # true: the largest step passed, the real limit is higher
        "steps": steps,
    }


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
    await b.start_gateway("gateway-soak")
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


# ---- the table ------------------------------------------------------------------------------------


@dataclass
class Row:
    metric: str
    direct: str
    ws: str
    sse: str
    added: str
    target: str
    result: str


def _f(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _signed(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:+.3f}"


def _verdict(checks: Sequence[bool | None]) -> str:
    known = [c for c in checks if c is not None]
    if not known:
        return "—"
    return "pass" if all(known) else "FAIL"


def _stall_verdict(best: int, never_failed: bool, steps: Sequence[int]) -> str:
    if best >= 512:
        return "pass"
    if never_failed and max(steps) < 512:
        return "not reached"  # a quick run does not try 512
    return "FAIL"


def build_table(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    ttft = results.get("ttft")
    if ttft:
        r = ttft["results"]

        def get(key: str, stat: str) -> float:
            return float(r.get(key, {}).get(stat, math.nan))

        for stat, ws_target, sse_target in (("p50", 0.3, 0.5), ("p99", 0.6, None)):
            d, w, e = get("direct/openai", stat), get("ws/openai", stat), get("sse/openai", stat)
            checks: list[bool | None] = [w - d <= ws_target]
            target = f"WS ≤ {ws_target}"
            if sse_target is not None:
                checks.append(e - d <= sse_target)
                target += f", SSE ≤ {sse_target}"
            rows.append(
                Row(
                    f"TTFT {stat}, concurrency 1 (ms)",
                    _f(d),
                    _f(w),
                    _f(e),
                    f"WS {_signed(w - d)}, SSE {_signed(e - d)}",
                    target + " added",
                    _verdict(checks),
                )
            )
        d, w, e = get("direct/anthropic", "p50"), get("ws/anthropic", "p50"), get("sse/anthropic", "p50")
        rows.append(
            Row(
                "TTFT p50, Anthropic format (ms)",
                _f(d),
                _f(w),
                _f(e),
                f"WS {_signed(w - d)}, SSE {_signed(e - d)}",
                "(info)",
                "—",
            )
        )
    gap = results.get("gap")
    if gap:
        g = gap["results"]
        lost = any(g[t]["failed"] for t in TRANSPORTS)
        d, w, e = g["direct"]["p99"], g["ws"]["p99"], g["sse"]["p99"]
        rows.append(
            Row(
                "chunk gap p99 at 20 ms pacing, as read (ms)",
                _f(d),
                _f(w),
                _f(e),
                f"WS {_signed(w - d)}, SSE {_signed(e - d)}",
                "(info: ±1 ms upstream timer)",
                "—",
            )
        )
        d, w, e = (g[t]["stretch"]["p99"] for t in TRANSPORTS)
        rows.append(
            Row(
                "chunk gap p99 beyond the upstream's gap (ms)",
                _f(d),
                _f(w),
                _f(e),
                f"WS {_signed(w - d)}, SSE {_signed(e - d)}",
                "≤ 0.5 added",
                _verdict([w - d <= 0.5, e - d <= 0.5, not lost]),
            )
        )
        for stat in ("p50", "p99"):
            d, w, e = (g[t]["delay"][stat] for t in TRANSPORTS)
            rows.append(
                Row(
                    f"chunk delay {stat}, upstream write -> read (ms)",
                    _f(d),
                    _f(w),
                    _f(e),
                    f"WS {_signed(w - d)}, SSE {_signed(e - d)}",
                    "(info)",
                    "—",
                )
            )
    stall = results.get("stall")
    if stall:
        best, never, steps = stall["max_streams"], stall["never_failed"], stall["steps"]

        def n(layout: str) -> str:
            if layout not in best:
                return "—"
            text = f"{best[layout]}{'+' if never[layout] else ''}"
            failed = [r for r in steps[layout] if not r["passed"]]
            if failed and failed[0].get("limited_by") == "load generator":
                text += " (client-bound)"
            return text

        def verdict(layout: str) -> str:
            if layout not in best:
                return "—"
            return _stall_verdict(best[layout], never[layout], stall["steps_tried"])

        ratio = "—"
        if best.get("direct") and "ws-1" in best:
            ratio = f"WS {best['ws-1'] / best['direct']:.0%} of direct"
        rows.append(
            Row(
                "stall-free streams, 1 per socket",
                n("direct"),
                n("ws-1"),
                n("sse"),
                ratio,
                "WS ≥ 512",
                verdict("ws-1"),
            )
        )
        rows.append(
            Row("stall-free streams, 8 per socket", "—", n("ws-8"), "—", "", "WS ≥ 512", verdict("ws-8"))
        )
    thr = results.get("throughput")
    if thr:
        t = thr["results"]
        d, w, e = t["direct"]["chunks_per_s"], t["ws"]["chunks_per_s"], t["sse"]["chunks_per_s"]
        rows.append(
            Row(
                "relay throughput, no pacing (chunks/s)",
                _f(d, 0),
                _f(w, 0),
                _f(e, 0),
                f"WS {w / d:.0%}, SSE {e / d:.0%} of direct",
                "≥ 50% of direct",
                _verdict([w / d >= 0.5, e / d >= 0.5]),
            )
        )
    mem = results.get("memory")
    if mem:
        rows.append(
            Row(
                "RSS per idle WebSocket connection (KiB)",
                "—",
                _f(mem["per_idle_connection_kib"], 1),
                "—",
                "",
                "≤ 25",
                _verdict([mem["per_idle_connection_kib"] <= 25]),
            )
        )
        rows.append(
            Row(
                "RSS per active stream (KiB)",
                "—",
                _f(mem["per_active_stream_kib"], 1),
                "—",
                "",
                "(info)",
                "—",
            )
        )
    soak = results.get("soak")
    if soak:
        growth = soak["growth_kib"]
        rows.append(
            Row(
                f"RSS growth over a {soak['seconds']:g} s soak (KiB)",
                "—",
                f"{_f(growth, 0)} (slope {_f(soak['slope_kib_per_min'], 0)}/min)",
                "",
                f"{soak['streams_ok']} streams, {soak['streams_failed']} failed",
                "no growth (≤ 1024)",
                _verdict([growth <= 1024 and soak["streams_failed"] == 0]),
            )
        )
    return rows


def format_table(rows: Sequence[Row]) -> str:
    header = Row("metric", "direct", "gateway WS", "gateway SSE", "added / ratio", "target", "result")
    cells = [list(asdict(r).values()) for r in (header, *rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header.__dict__))]
    lines = []
    for k, c in enumerate(cells):
        lines.append("| " + " | ".join(v.ljust(widths[i]) for i, v in enumerate(c)) + " |")
        if k == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


# ---- the machine ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for package in ("uvicorn", "starlette", "websockets", "aiohttp", "msgspec", "uvloop", "httptools"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model or platform.processor(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_accounts() -> dict[str, float]:
    """CPU seconds: the machine busy (all CPUs), hypervisor steal, and this run's own processes
    (the bench and its children once they are waited for)."""
    import resource

    machine_times = psutil.cpu_times()
    ours = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        ours += usage.ru_utime + usage.ru_stime
    busy = sum(
        getattr(machine_times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "guest")
    )
    return {
        "wall": time.monotonic(),
        "busy": busy,
        "steal": getattr(machine_times, "steal", 0.0),
        "ours": ours,
    }


def _cpu_report(start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
    """Other processes' CPU during the run shows a machine that was not quiet."""
    delta = {k: end[k] - start[k] for k in start}
    return {
        "wall_s": round(delta["wall"], 1),
        "bench_processes_cpu_s": round(delta["ours"], 1),
        "other_processes_cpu_s": round(max(0.0, delta["busy"] - delta["ours"]), 1),
        "steal_s": round(delta["steal"], 1),
    }


def source_digest() -> str:
    """The gateway's source as measured (server/, providers/, protocol/): sha256 of the .py files."""
    digest = hashlib.sha256()
    for directory in ("server", "providers", "protocol"):
        for path in sorted((procs.REPO / directory).rglob("*.py")):
            digest.update(str(path.relative_to(procs.REPO)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# ---- main -------------------------------------------------------------------------------------------

RUNNERS: dict[str, Callable[[Bench], Awaitable[dict[str, Any]]]] = {
    "ttft": scenario_ttft,
    "gap": scenario_gap,
    "throughput": scenario_throughput,
    "stall": scenario_stall,
    "memory": scenario_memory,
    "soak": scenario_soak,
}


async def run(
    settings: Settings, only: Sequence[str], pin: bool, quick: bool, gc_probe: bool = False
) -> dict[str, Any]:
    bench = Bench(settings, pin, gc_probe)
    started = datetime.now(UTC)
    out: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "machine": machine(),
        "gateway_source_sha256": source_digest(),
        "pinning": {
            "enabled": bench.pinned,
            "gateway_cpus": sorted(bench.gateway_cpus or []),
            "client_and_upstream_cpus": sorted(bench.load_cpus or []),
        },
        "settings": asdict(settings),
        "gc_probe": gc_probe,
        "results": {},
    }
    gc.collect()
    gc.freeze()  # the client's own collections would show up as gaps
    cpu_start = _cpu_accounts()
    try:
        await bench.start_upstream()
        for name in only:
            if name in ("ttft", "gap", "throughput", "stall") and bench.gateway is None:
                await bench.start_gateway()
            log(f"{name} ...")
            t0 = perf()
            out["results"][name] = await RUNNERS[name](bench)
            out["results"][name]["wall_s"] = round(perf() - t0, 1)
            gc.collect()
    finally:
        bench.stop()
    out["cpu_accounting"] = _cpu_report(cpu_start, _cpu_accounts())
    out["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    out["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    out["workdir"] = str(bench.workdir)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds per scenario")
    parser.add_argument(
        "--only",
        action="append",
        choices=SCENARIOS,
        metavar="SCENARIO",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin the gateway to a CPU of its own")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write JSON and the chart")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument("--stall-steps", help="comma-separated stream counts, e.g. 256,512")
    parser.add_argument("--stall-layouts", help="comma-separated: direct, ws-1, ws-8, sse")
    parser.add_argument("--stall-steady", type=float, help="seconds all streams of a step run at once")
    parser.add_argument("--soak-seconds", type=float)
    parser.add_argument(
        "--gc-probe",
        action="store_true",
        help="log the gateway's garbage collections (bench/gcprobe) and match them with stalls",
    )
    args = parser.parse_args(argv)
    only = [s for s in SCENARIOS if s in (args.only or SCENARIOS)]
    settings = QUICK if args.quick else FULL
    if args.stall_steps:
        settings = replace(settings, stall_steps=tuple(int(n) for n in args.stall_steps.split(",")))
    if args.stall_layouts:
        settings = replace(settings, stall_layouts=tuple(args.stall_layouts.split(",")))
    if args.stall_steady:
        settings = replace(settings, stall_steady=args.stall_steady)
    if args.soak_seconds:
        settings = replace(settings, soak_seconds=args.soak_seconds)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    t0 = time.monotonic()
    try:
        results = asyncio.run(run(settings, only, not args.no_pin, args.quick, args.gc_probe))
    except Exception as exc:  # a harness failure, not a missed target
        log(f"harness failure: {exc!r}")
        return 1
    rows = build_table(results["results"])
    results["table"] = [asdict(r) for r in rows]
    results["wall_s"] = round(time.monotonic() - t0, 1)
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = results["started"].replace(":", "").replace("-", "").replace("+0000", "Z")
    for name in (f"{stamp}.json", "latest.json"):
        (args.results / name).write_text(json.dumps(_clean(results), indent=1, allow_nan=False))
    chart = None
    if not args.no_chart:
        try:
            from bench.chart import render

            chart = render(results, args.results / "chart.png")
        except ImportError as exc:
            log(f"no chart: {exc}")
    m, pinning, acct = results["machine"], results["pinning"], results["cpu_accounting"]
    pinned = f"pinned to CPU {pinning['gateway_cpus']}" if pinning["enabled"] else "not pinned"
    print(
        f"\ntokenwire bench ({results['mode']}), {results['started']}, {m['nproc']} x {m['cpu_model']}, "
        f"gateway {pinned}, load {m['loadavg_before']}, source {results['gateway_source_sha256']}, "
        f"{results['wall_s']} s; CPU used by other processes meanwhile: {acct['other_processes_cpu_s']} s, "
        f"steal {acct['steal_s']} s\n"
    )
    print(format_table(rows))
    print(f"\nresults: {args.results / 'latest.json'}" + (f", chart: {chart}" if chart else ""))
    return 0


def _clean(value: Any) -> Any:
    """NaN and infinity become null (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
