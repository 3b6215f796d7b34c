"""Running streams on kept-alive connections: one at a time, or a round of concurrent ones."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bench.clients import (
    Batch,
    Dialect,
    HttpConnection,
    StreamResult,
    WsConnection,
    direct_request,
    gateway_body,
    new_result,
    read_mode,
    sse_request,
    ui_chat_request,
)
from bench.harness import HOST, KEYS, Bench, HttpTarget, Transport
from bench.scenario import Scenario

T = TypeVar("T")


def http_opener(port: int) -> Callable[[], Awaitable[HttpConnection]]:
    return lambda: HttpConnection.open(HOST, port)


async def open_many(factory: Callable[[], Awaitable[T]], count: int, parallel: int = 128) -> list[T]:
    out: list[T] = []
    while len(out) < count:
        take = min(parallel, count - len(out))
        out.extend(await asyncio.gather(*(factory() for _ in range(take))))
    return out


UI_CHAT = "/v1/ui/chat"
AI_SDK_CHAT = "/api/chat"  # bench/ai_sdk_route/route.mjs


def http_target(
    b: Bench, target: HttpTarget, stream: StreamResult, dialect: Dialect = "openai"
) -> tuple[int, bytes, str]:
    """(port, request bytes, read mode) of ``stream`` read over HTTP from ``target``."""
    scenario = stream.scenario
    if target == "direct":
        return b.upstream_port, direct_request(dialect, scenario, b.up_host), read_mode(dialect, scenario)
    if target == "sse":
        request = sse_request(stream.sid, dialect, scenario, b.gw_host)
        return b.gateway_port, request, read_mode("gateway", scenario)
    if target == "ui":
        return b.gateway_port, ui_chat_request(stream.sid, scenario, b.gw_host, UI_CHAT), "ui"
    host = f"{HOST}:{b.ai_sdk_port}"
    return b.ai_sdk_port, ui_chat_request(stream.sid, scenario, host, AI_SDK_CHAT), "ui"


class Sequential:
    """A connection per transport, each running one stream at a time (``parts``: tool-call or
    reasoning streams too)."""

    def __init__(self, bench: Bench, parts: bool = False) -> None:
        self.b = bench
        self.parts = parts
        self.direct: HttpConnection | None = None
        self.sse: HttpConnection | None = None
        self.ws: WsConnection | None = None
        self.count = 0

    async def open(self) -> None:
        self.direct = await HttpConnection.open(HOST, self.b.upstream_port)
        self.sse = await HttpConnection.open(HOST, self.b.gateway_port)
        self.ws = await WsConnection.open(HOST, self.b.gateway_port, parts=self.parts)

    def close(self) -> None:
        for conn in (self.direct, self.sse, self.ws):
            if conn is not None:
                conn.close()

    async def run(self, transport: Transport, dialect: Dialect, scenario: Scenario) -> StreamResult:
        self.count += 1
        batch = Batch()
        stream = batch.add(new_result(f"q{self.count}", scenario))
        if transport == "direct":
            if self.direct is None or self.direct.transport is None:
                self.direct = await HttpConnection.open(HOST, self.b.upstream_port)
            request = direct_request(dialect, scenario, self.b.up_host)
            self.direct.request(stream, request, read_mode(dialect, scenario))
            await batch.wait(10 + scenario.duration_s)
            await self.direct.wait_idle()
        elif transport == "sse":
            if self.sse is None or self.sse.transport is None:
                self.sse = await HttpConnection.open(HOST, self.b.gateway_port)
            request = sse_request(stream.sid, dialect, scenario, self.b.gw_host)
            self.sse.request(stream, request, read_mode("gateway", scenario))
            await batch.wait(10 + scenario.duration_s)
            await self.sse.wait_idle()
        else:
            if self.ws is None or self.ws.transport is None:
                self.ws = await WsConnection.open(HOST, self.b.gateway_port, parts=self.parts)
            self.ws.start(stream, gateway_body(stream.sid, dialect, scenario, ws=True))
            await batch.wait(10 + scenario.duration_s)
        return stream


async def concurrent_round(
    b: Bench,
    transport: Transport | HttpTarget,
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
        batch.add(new_result(f"c{i}", scenario.keyed(next(KEYS)) if keyed else scenario))
        for i in range(count)
    ]
    http: list[HttpConnection] = conns.get(transport, []) if transport != "ws" else []

    def starter(i: int) -> Callable[[], None]:
        stream = streams[i]
        if transport != "ws":
            _, request, mode = http_target(b, transport, stream, dialect)
            return lambda: http[i].request(stream, request, mode)
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


async def kept_connections(b: Bench, count: int) -> dict[str, Any]:
    return {
        "direct": await open_many(lambda: HttpConnection.open(HOST, b.upstream_port), count),
        "sse": await open_many(lambda: HttpConnection.open(HOST, b.gateway_port), count),
        "ws": await WsConnection.open(HOST, b.gateway_port),
    }


def close_kept(conns: dict[str, Any]) -> None:
    for conn in [*conns["direct"], *conns["sse"], conns["ws"]]:
        conn.close()
