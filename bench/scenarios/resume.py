"""The ``resume`` scenario: resuming a stream after a dropped socket, and the Redis store's relay cost.

It runs on gateways of its own, pinned to the gateway's core like the main one: one with the memory
store and, when a ``redis-server`` is found, two (A and B) with ``[resume] store = "redis"`` on a
throw-away redis-server of their own (on the load CPUs, like the upstream). The method and what
limits each figure: docs/benchmarks.md, "Resume and the Redis store".

1. Resume latency. A 20 ms-paced OpenAI-format stream runs; the client reads 2 chunks, closes its
   socket, opens a new one and starts a one-chunk probe stream there (``start`` sent -> ``start``
   ack read: the baseline, one round trip through the same gateway). 50 ms after the drop (two
   chunks were produced meanwhile, unread) it sends ``resume`` with the last seq it has and
   measures ``resume`` sent -> first replayed event read. It reads on until 2 events arrived after
   the resume (the replay, then a live chunk), then cancels. Every sample checks the stream across
   the drop: seqs gap-free with no duplicate and the expected text (``StreamResult``); the
   upstream's write record tells whether the first event after the resume really was a replay
   (its first chunk written before the resume was sent).
   Memory store: dropped and resumed on the same gateway. Redis: started on A, resumed on B.
2. Relay throughput, no pacing: the throughput scenario's WebSocket method (one socket per stream,
   upstream chunks delivered per second, request written -> last chunk read) on the memory-store
   gateway, on A (Redis store, read on its owner), and started on A then resumed from seq 0 on B
   as soon as the ack arrives (read on the other instance), interleaved round by round.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from bench import gateway as procs
from bench.clients import Batch, StreamResult, WsConnection, gateway_body, perf
from bench.clients.messages import Message, dispatch
from bench.harness import HOST, KEYS, Bench, distinct_errors, log, ms, rotate
from bench.scenario import Scenario
from bench.settings import Settings
from bench.stats import median, summary

PACED = Scenario(chunks=1000, size=8, pacing_ms=20)  # 20 s: still running whenever it is dropped
PROBE = Scenario(chunks=1, size=8, pacing_ms=0)  # the baseline: start -> ack on the same gateway
BEFORE_DROP = 2  # chunks read before the socket is closed
DROP_WAIT = 0.050  # s from the drop to the resume: two chunks are produced meanwhile
AFTER_RESUME = 2  # events read after the resume (the replay, then a live one) before cancelling
STAGGER = 0.055  # s between the workers' first samples
REDIS_CONFIG = '\n[resume]\nstore = "redis"\nredis_url = "redis://127.0.0.1:{port}/0"\n'
LATENCY_PARTS = ("memory", "redis")
RELAY_VARIANTS = ("memory", "redis_owner", "redis_other")
SAMPLES = itertools.count(1)


class ResumeWs(WsConnection):
    """A WebSocket that also records each stream's ``start`` ack (when, and its key) and terminal."""

    def __init__(self, host: str, path: str = "/v1/ws", deflate: bool = False, parts: bool = False) -> None:
        super().__init__(host, path, deflate, parts)
        self.acks: dict[str, tuple[float, str]] = {}
        self.terminal: dict[str, str] = {}  # stream id -> "done" or the error's code
        self.unrouted: list[str] = []  # errors without an id (e.g. a refused resume)
        self.on_ack: Callable[[str, str], None] | None = None  # (stream id, key), as the ack is read
        self.tick = asyncio.Event()  # set on every message

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.tick.set()

    def on_message(self, message: Message, t: float) -> None:
        sid, kind = message.id, message.type
        if sid is None:
            if kind == "ready" and not self.ready.done():
                self.ready.set_result(None)
            elif kind == "error":
                self.unrouted.append(f"{message.code}: {message.message}")
        else:
            if kind == "start":
                self.acks[sid] = (t, message.key or "")
                if self.on_ack is not None:
                    self.on_ack(sid, message.key or "")
            elif kind in ("done", "error"):
                self.terminal[sid] = message.code or kind
            stream = self.streams.get(sid)
            if stream is not None:
                dispatch(stream, message, t)
                if stream.ended:
                    del self.streams[sid]
        self.tick.set()

    def shut(self) -> None:
        """Close the socket (once)."""
        if self.transport is not None and not self.transport.is_closing():
            self.close()


async def connect(port: int, timeout: float = 30) -> ResumeWs:
    return cast(ResumeWs, await ResumeWs.open(HOST, port, timeout=timeout))


def resume_message(key: str, after_seq: int) -> bytes:
    return b'{"type":"resume","key":"%s","after_seq":%d}' % (key.encode(), after_seq)


async def until(ws: ResumeWs, done: Callable[[], bool], timeout: float) -> bool:
    """Until ``done()`` holds, checked on each of ``ws``'s messages; False after ``timeout``."""
    deadline = perf() + timeout
    while not done():
        left = deadline - perf()
        if left <= 0 or ws.transport is None:
            return done()
        ws.tick.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ws.tick.wait(), left)
    return True


# ---- 1. resume latency ---------------------------------------------------------------------------


@dataclass
class Sample:
    key: int  # the stream's key in the upstream's write record
    error: str | None = None
    start_ack: float | None = None  # probe: start sent -> ack read, on the resuming gateway
    after_seq: int = 0  # the last seq read before the drop
    t_resume: float = 0.0
    first: float | None = None  # resume sent -> first event read
    replayed: int = 0  # upstream chunks that first event carried
    live_first: bool = False  # that event's first chunk was written after the resume: not a replay


async def _cancel_by_key(port: int, key: str) -> None:
    with contextlib.suppress(OSError, TimeoutError, ConnectionError):
        ws = await connect(port, 5)
        ws.send(b'{"type":"cancel","key":"%s"}' % key.encode())
        await until(ws, lambda: bool(ws.unrouted), 0.5)  # an unknown key is refused; else no reply
        ws.shut()


async def _sample(start_port: int, resume_port: int) -> Sample:
    """One stream: read, drop the socket, probe start -> ack on a new socket, resume there."""
    n = next(SAMPLES)
    scenario = PACED.keyed(next(KEYS))
    sid = f"r{n}"
    stream = StreamResult(sid, scenario)
    sample = Sample(scenario.key)
    key = ""
    first = await connect(start_port)
    second: ResumeWs | None = None
    try:
        first.start(stream, gateway_body(sid, "openai", scenario, ws=True))
        await until(first, lambda: stream.delivered >= BEFORE_DROP or stream.ended, 10)
        key = first.acks.get(sid, (0.0, ""))[1]
        if stream.ended or stream.delivered < BEFORE_DROP or not key:
            reason = stream.error or ("no key in the ack" if key == "" else "timed out")
            sample.error = f"before the drop: {reason}"
            return sample
        first.streams.pop(sid)  # what the dropped socket still gets is not read
        first.shut()
        dropped = perf()
        second = ws = await connect(resume_port)
        probe = StreamResult(f"p{n}", PROBE)
        ws.start(probe, gateway_body(probe.sid, "openai", PROBE, ws=True))
        await until(ws, lambda: probe.ended, 10)
        ack = ws.acks.get(probe.sid)
        if not probe.ok or ack is None:
            sample.error = f"probe: {probe.error or 'no ack'}"
            return sample
        sample.start_ack = ack[0] - probe.t_sent
        await asyncio.sleep(max(0.0, dropped + DROP_WAIT - perf()))
        sample.after_seq = after = stream.delivered
        seen = len(stream.arrivals)
        ws.streams[sid] = stream
        sample.t_resume = perf()
        ws.send(resume_message(key, after))
        await until(
            ws, lambda: len(stream.arrivals) >= seen + AFTER_RESUME or stream.ended or bool(ws.unrouted), 10
        )
        if len(stream.arrivals) > seen:
            sample.first = stream.arrivals[seen] - sample.t_resume
            sample.replayed = stream.counts[seen]
        if stream.ended or len(stream.arrivals) < seen + AFTER_RESUME:
            reason = stream.error or "; ".join(ws.unrouted) or "timed out"
            sample.error = f"after the resume: {reason}"
            return sample
        ws.streams.pop(sid)
        ws.cancel(sid)
        if await until(ws, lambda: sid in ws.terminal, 5):
            key = ""  # cancelled
        return sample
    finally:
        first.shut()
        if second is not None:
            second.shut()
        if key:  # not cancelled: it would run on for resume_grace_seconds
            await _cancel_by_key(resume_port, key)


async def _resumes(b: Bench, count: int, start_port: int, resume_port: int) -> list[Sample]:
    """``count`` samples, ``resume_workers`` at a time; then the upstream's record says which
    first events after a resume were replays."""
    numbers = iter(range(count))
    out: list[Sample] = []

    async def worker(w: int) -> None:
        await asyncio.sleep(w * STAGGER)
        for _ in numbers:
            out.append(await _sample(start_port, resume_port))

    await asyncio.gather(*(worker(w) for w in range(b.settings.resume_workers)))
    written = await b.sends()
    for sample in out:
        times = written.get(str(sample.key), [])
        seq = sample.after_seq + 1  # times[seq]: when the upstream wrote the chunk of that seq
        replay = len(times) > seq and times[seq] < sample.t_resume
        sample.live_first = sample.first is not None and not replay
    return out


def _latency(samples: Sequence[Sample]) -> dict[str, Any]:
    ok = [x for x in samples if x.error is None]
    replays = [x for x in ok if x.first is not None and not x.live_first]
    resume = [x.first for x in replays if x.first is not None]
    acks = [x.start_ack for x in ok if x.start_ack is not None]
    r, a = summary(resume, 1000), summary(acks, 1000)
    errors: list[str] = []
    for x in samples:
        if x.error is not None and x.error not in errors and len(errors) < 3:
            errors.append(x.error)
    return {
        "samples": len(samples),
        "verified": len(ok),
        "failed": len(samples) - len(ok),
        "errors": errors,
        "live_first": len(ok) - len(replays),  # left out of resume_ms: the replay had nothing
        "resume_ms": r,
        "start_ack_ms": a,
        "ratio_p50": r["p50"] / a["p50"] if a["p50"] else float("nan"),
        "ratio_p99": r["p99"] / a["p99"] if a["p99"] else float("nan"),
        "replayed_chunks": summary([float(x.replayed) for x in replays]),
        "resume_samples_ms": [ms(v) for v in resume],
        "start_ack_samples_ms": [ms(v) for v in acks],
    }


# ---- 2. relay throughput -------------------------------------------------------------------------


def _cpu(watched: dict[str, procs.Process]) -> dict[str, float]:
    return {name: proc.cpu_seconds() for name, proc in watched.items() if proc.alive()}


async def _quiet(watched: dict[str, procs.Process], timeout: float = 10.0) -> float:
    """Until the watched processes stop using CPU (the mirror catching up, a pool closing); the
    seconds waited. psutil's CPU times tick in 10 ms: quiet is at most one tick in 100 ms."""
    t0 = perf()
    last = sum(_cpu(watched).values())
    while perf() - t0 < timeout:
        await asyncio.sleep(0.1)
        now = sum(_cpu(watched).values())
        if now - last <= 0.0101:
            break
        last = now
    return perf() - t0


def _handover(start: ResumeWs, read: ResumeWs, stream: StreamResult) -> Callable[[str, str], None]:
    """On the ack from A: drop A's socket and resume the stream from seq 0 on B."""

    def on_ack(sid: str, key: str) -> None:
        if sid != stream.sid:
            return
        start.streams.pop(sid, None)
        start.shut()
        read.streams[sid] = stream
        read.send(resume_message(key, 0))

    return on_ack


async def _relay(
    s: Settings, start_port: int, read_port: int | None, watched: dict[str, procs.Process]
) -> tuple[dict[str, Any] | None, list[StreamResult]]:
    """One round of ``thr_streams`` unpaced streams, one socket each (read on ``read_port`` if given)."""
    scenario = Scenario(chunks=s.thr_chunks, size=8, pacing_ms=0)
    count = s.thr_streams
    starts = [await connect(start_port) for _ in range(count)]
    reads = [await connect(read_port) for _ in range(count)] if read_port is not None else []
    batch = Batch()
    streams = [batch.add(StreamResult(f"t{next(SAMPLES)}", scenario)) for _ in range(count)]
    for ws, read, stream in zip(starts, reads, streams, strict=False):
        ws.on_ack = _handover(ws, read, stream)
    cpu0 = _cpu(watched)
    for ws, stream in zip(starts, streams, strict=True):
        ws.start(stream, gateway_body(stream.sid, "openai", scenario, ws=True))
    await batch.wait(60)
    cpu1 = _cpu(watched)
    for ws in [*starts, *reads]:
        ws.shut()
    waited = await _quiet(watched)
    cpu2 = _cpu(watched)
    ok = [st for st in streams if st.ok]
    failed = [st for st in streams if not st.ok]
    if not ok:
        return None, failed
    wall = max(st.t_end for st in ok) - min(st.t_sent for st in streams)
    chunks = sum(st.delivered for st in ok)

    def gateways_us(cpu: dict[str, float]) -> float:
        used = sum(cpu[k] - cpu0.get(k, cpu[k]) for k in cpu if k.startswith("gateway"))
        return round(used / chunks * 1e6, 3)

    return {
        "chunks": chunks,
        "seconds": round(wall, 4),
        "chunks_per_s": round(chunks / wall, 1),
        "arrivals": sum(len(st.counts) for st in ok),
        "cpu_s": {k: round(v - cpu0.get(k, v), 3) for k, v in cpu1.items()},
        "cpu_until_quiet_s": {k: round(v - cpu0.get(k, v), 3) for k, v in cpu2.items()},
        "quiet_after_s": round(waited, 2),
        "gateway_us_per_chunk": gateways_us(cpu1),
        "gateway_us_per_chunk_until_quiet": gateways_us(cpu2),
    }, failed


# ---- the scenario --------------------------------------------------------------------------------


def _redis_version(executable: str) -> str:
    try:
        text = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return next((w[2:] for w in text.split() if w.startswith("v=")), text.strip())


async def scenario_resume(b: Bench) -> dict[str, Any]:
    """Resume latency (memory store; Redis across instances) and the Redis store's relay throughput."""
    s = b.settings
    executable = procs.redis_server()
    skipped = None if executable is not None else "redis-server not found (PATH or $BENCH_REDIS_SERVER)"
    out: dict[str, Any] = {
        "stream": PACED.model,
        "chunks_before_drop": BEFORE_DROP,
        "drop_wait_ms": DROP_WAIT * 1000,
        "events_after_resume": AFTER_RESUME,
        "workers": s.resume_workers,
        "rounds": s.resume_rounds,
        "redis": {"skipped": skipped} if executable is None else {"version": _redis_version(executable)},
        "latency": {},
        "throughput": {},
    }
    try:
        # Ports: (start, resume) for each latency part; the processes each relay round watches.
        if executable is None:
            log(f"resume: {skipped}: only the memory store is measured")
            mem, mem_port = await b.start_other_gateway("gateway-resume-memory")
            parts = {"memory": (mem_port, mem_port)}
            watched = {"gateway_memory": mem}
        else:
            redis, redis_port = await b.start_redis(executable)
            config = REDIS_CONFIG.format(port=redis_port)
            (mem, mem_port), (gw_a, a_port), (gw_b, b_port) = await asyncio.gather(
                b.start_other_gateway("gateway-resume-memory"),
                b.start_other_gateway("gateway-redis-a", config),
                b.start_other_gateway("gateway-redis-b", config),
            )
            parts = {"memory": (mem_port, mem_port), "redis": (a_port, b_port)}
            watched = {"gateway_memory": mem, "gateway_a": gw_a, "gateway_b": gw_b, "redis": redis}

        # 1. resume latency
        samples: dict[str, list[Sample]] = {p: [] for p in parts}
        for start_port, resume_port in parts.values():
            await _resumes(b, s.resume_warmup, start_port, resume_port)
        per_round = -(-s.resume_samples // s.resume_rounds)
        for r in range(s.resume_rounds):
            for part in rotate(list(parts), r):
                start_port, resume_port = parts[part]
                samples[part].extend(await _resumes(b, per_round, start_port, resume_port))
            log(f"resume: latency round {r + 1}/{s.resume_rounds}")
        for part in LATENCY_PARTS:
            out["latency"][part] = _latency(samples[part]) if part in samples else {"skipped": skipped}

        # 2. relay throughput
        if executable is None:
            out["throughput"] = {"skipped": skipped}
        else:
            routes = {
                "memory": (mem_port, None),
                "redis_owner": (a_port, None),
                "redis_other": (a_port, b_port),
            }
            rounds: dict[str, list[dict[str, Any]]] = {v: [] for v in RELAY_VARIANTS}
            failed: dict[str, list[StreamResult]] = {v: [] for v in RELAY_VARIANTS}
            await _quiet(watched)
            for r in range(s.resume_thr_rounds):
                for variant in rotate(RELAY_VARIANTS, r):
                    result, lost = await _relay(s, *routes[variant], watched)
                    failed[variant].extend(lost)
                    if result is not None:
                        result["round"] = r
                        rounds[variant].append(result)
                log(f"resume: relay round {r + 1}/{s.resume_thr_rounds}")
            out["throughput"] = _throughput(s, rounds, failed)
    finally:
        b.stop_others()
    return out


def _throughput(
    s: Settings, rounds: dict[str, list[dict[str, Any]]], failed: dict[str, list[StreamResult]]
) -> dict[str, Any]:
    """Medians per variant, and the Redis variants' median per-round ratio to the memory store."""
    results: dict[str, Any] = {}
    memory = {x["round"]: x["chunks_per_s"] for x in rounds["memory"]}
    for variant in RELAY_VARIANTS:
        rates = [x["chunks_per_s"] for x in rounds[variant]]
        ratios = [x["chunks_per_s"] / memory[x["round"]] for x in rounds[variant] if x["round"] in memory]
        results[variant] = {
            "chunks_per_s": median(rates),
            "ratio_to_memory": median(ratios),
            "gateway_us_per_chunk": median([x["gateway_us_per_chunk"] for x in rounds[variant]]),
            "gateway_us_per_chunk_until_quiet": median(
                [x["gateway_us_per_chunk_until_quiet"] for x in rounds[variant]]
            ),
            "rounds": rounds[variant],
            "failed": len(failed[variant]),
            "errors": distinct_errors(failed[variant]),
        }
    return {
        "scenario": Scenario(chunks=s.thr_chunks, size=8, pacing_ms=0).model,
        "streams": s.thr_streams,
        "rounds": s.resume_thr_rounds,
        "results": results,
    }
