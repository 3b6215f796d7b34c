"""The processes under test (the fake upstream and the gateway) and helpers every scenario shares."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import psutil

from bench import gateway as procs
from bench.clients import Dialect, StreamResult
from bench.settings import Settings

HOST = "127.0.0.1"
Transport = Literal["direct", "ws", "sse"]
# Read over HTTP: the upstream, POST /v1/streams, POST /v1/ui/chat, and the AI SDK's Node route.
HttpTarget = Literal["direct", "sse", "ui", "ai_sdk"]
TRANSPORTS: tuple[Transport, ...] = ("direct", "ws", "sse")
DIALECTS: tuple[Dialect, ...] = ("openai", "anthropic")
GAP_LIMIT = 0.040  # a chunk gap above this is a stall
KEYS = itertools.count(1)  # stream keys for the upstream's write-time record
T = TypeVar("T")


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
        self.others: list[procs.Process] = []  # a scenario's own gateways, redis-server, Node route
        self.ai_sdk_port = 0
        self.me = psutil.Process()

    async def start_upstream(self) -> None:
        procs.pin(0, self.load_cpus)
        self.upstream, self.upstream_port = await procs.start_upstream(self.workdir, self.load_cpus)
        log(f"upstream: pid {self.upstream.pid}, port {self.upstream_port}")

    async def start_gateway(self, name: str = "gateway", extra_config: str = "") -> None:
        if self.gateway is not None:
            self.gateway.stop()
        self.gateway, self.gateway_port = await procs.start_gateway(
            self.workdir, self.upstream_port, self.gateway_cpus, name, self.gc_probe, extra_config
        )
        log(f"{name}: pid {self.gateway.pid}, port {self.gateway_port}, log {self.gateway.log_path}")

    async def start_other_gateway(self, name: str, extra_config: str = "") -> tuple[procs.Process, int]:
        """A gateway of a scenario's own, pinned like the main one; stopped with the bench at the latest."""
        proc, port = await procs.start_gateway(
            self.workdir, self.upstream_port, self.gateway_cpus, name, self.gc_probe, extra_config
        )
        self.others.append(proc)
        log(f"{name}: pid {proc.pid}, port {port}, log {proc.log_path}")
        return proc, port

    async def start_redis(self, executable: str) -> tuple[procs.Process, int]:
        """A throw-away redis-server on the load CPUs (like the upstream: not the gateway's core)."""
        proc, port = await procs.start_redis(self.workdir, self.load_cpus, executable)
        self.others.append(proc)
        log(f"redis: pid {proc.pid}, port {port}, log {proc.log_path}")
        return proc, port

    async def start_ai_sdk_route(self, node: Path) -> None:
        """The AI SDK's Node route, pinned like the gateway (the two never run streams at once)."""
        proc, self.ai_sdk_port = await procs.start_ai_sdk_route(
            self.workdir, self.upstream_port, self.gateway_cpus, node
        )
        self.others.append(proc)
        log(f"ai_sdk route: pid {proc.pid}, port {self.ai_sdk_port}, log {proc.log_path}")

    def stop_others(self) -> None:
        while self.others:
            self.others.pop().stop()

    def stop(self) -> None:
        self.stop_others()
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
        for proc in self.others:
            if proc.alive():
                out[proc.name] = proc.cpu_seconds()
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


def distinct_errors(streams: Sequence[StreamResult], limit: int = 3) -> list[str]:
    seen: list[str] = []
    for s in streams:
        if s.error is not None and s.error not in seen:
            seen.append(s.error)
            if len(seen) >= limit:
                break
    return seen
