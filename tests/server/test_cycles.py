"""A closed connection leaves no reference cycles in the gateway: its objects are freed at once
by reference counting. Cycles would wait for a full garbage collection, which under steady load
comes minutes apart, so a gateway churning sockets would grow until then (the bench's soak).

Each test runs its traffic with the collector off and keeps everything it would have freed
(``gc.DEBUG_SAVEALL``), then looks for objects of the gateway's side: its own modules, uvicorn,
websockets' server protocol and the httptools parsers. The test's clients and fake upstream make
cycles of their own, which are not counted.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect

from server.app import create_app
from server.cli import FULL_COLLECTION_EVERY, GatewayServer
from server.config import Config
from tests.conftest import Gateway, StartGateway, server_thread, wait_for_no_gateway_leaks
from tests.support.faulty_upstream import Connection, FaultyUpstream, chunked, sse_head
from tests.support.openai_bytes import openai_chunk
from tests.support.process import free_port
from tests.support.sseclient import read_events
from tests.support.wsclient import collect, recv, start

GATEWAY_SIDE = ("server.", "providers.", "protocol.", "uvicorn.", "websockets.server", "httptools.")
ROUNDS = 5


@contextmanager
def garbage_kept() -> Iterator[None]:
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def gateway_garbage() -> Counter[str]:
    """The gateway's objects that only a cycle collection would have freed, by type."""
    gc.collect()
    names = (f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
    return Counter(name for name in names if name.startswith(GATEWAY_SIDE))


async def assert_no_cycles(gw: Gateway, fake: FaultyUpstream, traffic: Callable[[], Awaitable[None]]) -> None:
    with garbage_kept():
        for _ in range(ROUNDS):
            await traffic()
        await fake.wait_released()
        leaks = await asyncio.to_thread(wait_for_no_gateway_leaks, server_thread(gw))
        assert not leaks, leaks
        assert gateway_garbage() == Counter()


def _gateway(start_gateway: StartGateway, fake: FaultyUpstream) -> Gateway:
    providers: dict[str, Any] = {
        "rulebased": {"chunk_delay_ms": 0},
        "openai": {"base_url": fake.url + "/v1", "api_key": "sk-test-cycles"},
    }
    return start_gateway({"streaming": {"retry_attempts": 0}, "providers": providers})


async def _whole(conn: Connection) -> None:
    body = chunked(openai_chunk("Hello"), openai_chunk(None, "stop"), b"data: [DONE]\n\n")
    await conn.send(sse_head() + body + b"0\r\n\r\n")


async def _reset_after_hello(conn: Connection) -> None:
    await conn.send(sse_head() + chunked(openai_chunk("Hello")))
    await asyncio.sleep(0.05)
    conn.reset()


async def _hold_after_hello(conn: Connection) -> None:
    await conn.send(sse_head() + chunked(openai_chunk("Hello")))
    await conn.hold()  # until the gateway hangs up


async def _ws_stream(gw: Gateway, provider: str) -> dict[str, Any]:
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "a", provider=provider, prompt="hi")
        per_id, _ = await collect(ws, {"a"})
    terminal: dict[str, Any] = per_id["a"][-1]
    return terminal


async def test_a_websocket_without_streams(start_gateway: StartGateway, fake: FaultyUpstream) -> None:
    gw = _gateway(start_gateway, fake)

    async def traffic() -> None:
        async with connect(gw.ws) as ws:
            await recv(ws)

    await assert_no_cycles(gw, fake, traffic)


@pytest.mark.parametrize(
    ("provider", "script", "terminal"),
    [
        ("rulebased", None, "done"),
        ("openai", _whole, "done"),
        ("openai", _reset_after_hello, "error"),  # the HTTP client raises a BodyCut
    ],
    ids=["rulebased", "upstream", "upstream-reset"],
)
async def test_a_websocket_after_a_stream(
    start_gateway: StartGateway,
    fake: FaultyUpstream,
    provider: str,
    script: Callable[[Connection], Awaitable[None]] | None,
    terminal: str,
) -> None:
    gw = _gateway(start_gateway, fake)

    async def traffic() -> None:
        if script is not None:
            fake.reply(script)
        assert (await _ws_stream(gw, provider))["type"] == terminal

    await assert_no_cycles(gw, fake, traffic)


async def test_a_websocket_dropped_mid_stream(start_gateway: StartGateway, fake: FaultyUpstream) -> None:
    """The client leaves with the stream in flight: the gateway cancels it and drops the upstream
    connection."""
    gw = _gateway(start_gateway, fake)

    async def traffic() -> None:
        fake.reply(_hold_after_hello)
        async with connect(gw.ws) as ws:
            await recv(ws)
            await start(ws, "a", provider="openai", prompt="hi")
            while (await recv(ws))["type"] != "chunk":
                pass

    await assert_no_cycles(gw, fake, traffic)


async def test_an_sse_stream_whole_and_dropped(start_gateway: StartGateway, fake: FaultyUpstream) -> None:
    gw = _gateway(start_gateway, fake)

    async def traffic() -> None:
        fake.reply(_whole, _hold_after_hello)
        body = {"provider": "openai", "prompt": "hi"}
        async with aiohttp.ClientSession() as http:
            async with http.post(gw.http + "/v1/streams", json=body) as resp:
                assert [e.event for e in (await read_events(resp)).events][-1] == "done"
            async with http.post(gw.http + "/v1/streams", json=body) as resp:
                await read_events(resp, until={"chunk"})  # then hang up mid-stream

    await assert_no_cycles(gw, fake, traffic)


def test_the_process_owner_makes_full_collections_rarer_not_the_app(start_gateway: StartGateway) -> None:
    """Safe only because of the tests above: with no cycles, a full collection frees nothing. It is
    the process's choice (server.cli.GatewayServer): an app embedded elsewhere leaves it alone."""
    before = gc.get_threshold()
    start_gateway()
    assert gc.get_threshold() == before
    config = Config()
    server = GatewayServer(create_app(config, environ={}), config, port=free_port(), log_level="warning")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10  # it tunes right after uvicorn's start-up
        while gc.get_threshold()[2] != FULL_COLLECTION_EVERY and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started
        assert gc.get_threshold()[2] == FULL_COLLECTION_EVERY
    finally:
        server.should_exit = True
        thread.join(10)
        gc.set_threshold(*before)
        gc.unfreeze()


async def test_an_ai_sdk_websocket_after_chats_and_a_resume(
    start_gateway: StartGateway, fake: FaultyUpstream
) -> None:
    """``/v1/ui/ws``: its connection encodes through a callback its outbox holds. (An abort is
    left out: a stream cancelled right after its start leaves a cycle over /v1/ws too.)"""
    gw = _gateway(start_gateway, fake)
    url = gw.ws.replace("/v1/ws", "/v1/ui/ws")

    def send(rid: str, chat: str) -> str:
        message = {"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
        frame = {
            "type": "send",
            "requestId": rid,
            "id": chat,
            "trigger": "submit-message",
            "messages": [message],
        }
        return json.dumps({**frame, "headers": {}, "body": {}})

    async def traffic() -> None:
        async with connect(url) as ws:
            await ws.send(send("a", "c1"))
            await ws.send(send("b", "c2"))
            await ws.send(
                json.dumps({"type": "resume", "requestId": "c", "id": "c2", "headers": {}, "body": {}})
            )
            ended: set[str] = set()
            while len(ended) < 3:
                frame = json.loads(await ws.recv())
                if frame["type"] in ("end", "no-active"):
                    ended.add(frame["requestId"])

    await assert_no_cycles(gw, fake, traffic)
