"""Two real gateways sharing one real Redis (``[resume] store = "redis"``): a stream started on
one is resumed, cancelled and counted against the limit through the other, and a client whose
stream's instance dies gets a retryable ``stream_lost`` instead of hanging."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import Gateway, StartGateway
from tests.support.process import free_port, tokenwire, wait_healthy
from tests.support.redis_server import RedisServer
from tests.support.sseclient import SSEEvent, read_events
from tests.support.wsclient import (
    Message,
    assert_gap_free,
    chunk_text,
    collect,
    is_terminal,
    recv,
    send,
    start,
)

# Scripts of ~240 and ~940 chunks, 20 ms apart: about 5 s and 19 s of streaming.
LONG: dict[str, Any] = {"brief": {"topic": "Tide pools"}, "plan": {"target_duration_seconds": 300}}
LONGER: dict[str, Any] = {"brief": {"topic": "Tide pools"}, "plan": {"target_duration_seconds": 1200}}


def config(
    url: str, *, resume: dict[str, Any] | None = None, streaming: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        # A grace period long enough to resume in (the tests' default is none: leaving cancels).
        "resume": {"store": "redis", "redis_url": url, "resume_grace_seconds": 3.0, **(resume or {})},
        "streaming": streaming or {},
        "providers": {"rulebased": {"chunk_delay_ms": 20}},
    }


async def start_and_read(ws: ClientConnection, stream_id: str, chunks: int, **fields: Any) -> list[Message]:
    """Start a stream and read its ack and ``chunks`` chunk messages."""
    await recv(ws)  # ready
    await start(ws, stream_id, **fields)
    events = [await recv(ws)]
    assert events[0]["type"] == "start", events
    while len(events) <= chunks:
        events.append(await recv(ws))
        assert events[-1]["type"] == "chunk", events[-1]
    return events


async def resume(url: str, key: str, after_seq: int, stream_id: str = "s1") -> list[Message]:
    """Resume over a new socket and read to the stream's end."""
    async with connect(url) as ws:
        await recv(ws)
        await send(ws, {"type": "resume", "key": key, "after_seq": after_seq})
        per_id, _ = await collect(ws, {stream_id})
    return per_id[stream_id]


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def pair(start_gateway: StartGateway, url: str, **kwargs: Any) -> tuple[Gateway, Gateway]:
    return start_gateway(config(url, **kwargs)), start_gateway(config(url, **kwargs))


async def test_ws_stream_resumes_on_another_instance(redis_url: str, start_gateway: StartGateway) -> None:
    a, b = pair(start_gateway, redis_url)
    async with connect(a.ws) as ws:
        first = await start_and_read(ws, "s1", 4, **LONG)
    key, last = first[0]["key"], first[-1]["seq"]
    rest = await resume(b.ws, key, last)
    events = first + rest
    assert_gap_free(events)  # every seq once: no gap, no duplicate at the seam
    done = events[-1]
    assert done["type"] == "done"
    assert done["finish_reason"] == "stop"
    assert chunk_text(events) == done["content"]
    assert not b.hub.running  # B relayed it; A ran it
    await until(lambda: not a.hub.running)


async def _sse_events(response: aiohttp.ClientResponse, count: int) -> list[SSEEvent]:
    """The first ``count`` events of an SSE response."""
    events: list[SSEEvent] = []
    fields: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line and not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
        elif fields:
            events.append(SSEEvent(fields["event"], json.loads(fields["data"]), fields.get("id")))
            fields = {}
            if len(events) == count:
                break
    return events


async def test_sse_stream_resumes_on_another_instance_with_last_event_id(
    redis_url: str, start_gateway: StartGateway
) -> None:
    a, b = pair(start_gateway, redis_url)
    async with aiohttp.ClientSession() as http:
        async with http.post(a.http + "/v1/streams", json={"id": "h1", **LONG}) as response:
            assert response.status == 200
            first = await _sse_events(response, 5)
        key, last = first[0].data["key"], int(first[-1].id or "")
        headers = {"Last-Event-ID": str(last)}
        async with http.get(f"{b.http}/v1/streams/{key}", headers=headers) as response:
            assert response.status == 200
            rest = (await read_events(response)).events
    events = [e.data for e in first + rest]
    assert [e.id for e in first + rest] == [str(e["seq"]) for e in events]
    assert_gap_free(events)
    done = events[-1]
    assert done["type"] == "done"
    assert done["finish_reason"] == "stop"
    assert chunk_text(events) == done["content"]
    await until(lambda: not a.hub.running)


async def test_cancel_by_key_through_another_instance(redis_url: str, start_gateway: StartGateway) -> None:
    a, b = pair(start_gateway, redis_url)
    async with connect(a.ws) as ws_a, connect(b.ws) as ws_b:
        first = await start_and_read(ws_a, "s1", 2, **LONGER)
        key = first[0]["key"]
        await recv(ws_b)
        await send(ws_b, {"type": "resume", "key": key, "after_seq": 0, "id": "mine"})
        await recv(ws_b)  # reading on B
        started = time.monotonic()
        await send(ws_b, {"type": "cancel", "key": key})
        on_b, _ = await collect(ws_b, {"mine"})
        on_a, _ = await collect(ws_a, {"s1"})
    assert time.monotonic() - started < 2
    for events in (on_b["mine"], first[1:] + on_a["s1"]):
        assert events[-1]["type"] == "done"
        assert events[-1]["finish_reason"] == "cancelled"
    assert on_b["mine"][-1]["seq"] == on_a["s1"][-1]["seq"]
    await until(lambda: not a.hub.running)


async def test_delete_by_key_through_another_instance(redis_url: str, start_gateway: StartGateway) -> None:
    a, b = pair(start_gateway, redis_url)
    async with aiohttp.ClientSession() as http:
        async with http.post(a.http + "/v1/streams", json={"id": "h1", **LONGER}) as stream:
            (ack,) = await _sse_events(stream, 1)
            async with http.delete(f"{b.http}/v1/streams/{ack.data['key']}") as response:
                assert response.status == 204
            events = (await read_events(stream)).events
        async with http.delete(f"{b.http}/v1/streams/{'x' * 32}") as response:
            assert response.status == 404
            assert (await response.json())["error"]["code"] == "unknown_stream"
    assert events[-1].event == "done"
    assert events[-1].data["finish_reason"] == "cancelled"
    await until(lambda: not a.hub.running)


async def test_max_concurrent_streams_is_gateway_wide(redis_url: str, start_gateway: StartGateway) -> None:
    a, b = pair(start_gateway, redis_url, streaming={"max_concurrent_streams": 1})
    async with connect(a.ws) as ws_a, connect(b.ws) as ws_b, aiohttp.ClientSession() as http:
        await start_and_read(ws_a, "s1", 1, **LONGER)
        await recv(ws_b)
        await start(ws_b, "s2", prompt="hi")
        refused = await recv(ws_b)
        assert refused["type"] == "error"
        assert refused["code"] == "server_busy"
        assert "seq" not in refused
        async with http.post(b.http + "/v1/streams", json={"prompt": "hi"}) as response:
            assert response.status == 503
            assert (await response.json())["error"]["code"] == "server_busy"
        await send(ws_a, {"type": "cancel", "id": "s1"})
        await collect(ws_a, {"s1"})
        client = aioredis.from_url(redis_url)
        try:
            async with asyncio.timeout(2):  # the lease goes with the stream's end
                while await client.zcard("tw:leases"):
                    await asyncio.sleep(0.01)
        finally:
            await client.aclose()
        await start(ws_b, "s3", prompt="hi")
        per_id, _ = await collect(ws_b, {"s3"})
    assert per_id["s3"][-1]["type"] == "done"


@contextlib.contextmanager
def owner_process(redis_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A gateway in a process of its own on the Redis store (so that a test can SIGKILL it), and
    its address; killed at the end if the test has not."""
    toml = tmp_path / "tokenwire.toml"
    toml.write_text(
        f'[resume]\nstore = "redis"\nredis_url = "{redis_url}"\n[providers.rulebased]\nchunk_delay_ms = 20\n'
    )
    port = free_port()
    owner = tokenwire("serve", "--port", str(port), "--config", str(toml))
    try:
        yield owner, f"127.0.0.1:{port}"
    finally:
        if owner.poll() is None:
            owner.kill()
        owner.communicate(timeout=10)


async def test_a_dead_owner_ends_a_remote_reader_with_stream_lost(
    redis_url: str, start_gateway: StartGateway, tmp_path: Path
) -> None:
    b = start_gateway(config(redis_url))
    with owner_process(redis_url, tmp_path) as (owner, base):
        await wait_healthy(base)
        async with connect(f"ws://{base}/v1/ws") as ws_a:
            first = await start_and_read(ws_a, "s1", 3, **LONGER)
        key = first[0]["key"]
        async with connect(b.ws) as ws_b:
            await recv(ws_b)
            await send(ws_b, {"type": "resume", "key": key, "after_seq": first[-1]["seq"]})
            rest = [await recv(ws_b) for _ in range(3)]
            owner.send_signal(signal.SIGKILL)  # no drain, no terminal event, no goodbye to Redis
            killed = time.monotonic()
            per_id, _ = await collect(ws_b, {"s1"}, timeout=15)
        detected = time.monotonic() - killed
    events = first + rest + per_id["s1"]
    assert_gap_free(events)  # what was mirrored before the death arrives whole
    lost = events[-1]
    assert lost["type"] == "error"
    assert lost["code"] == "stream_lost"
    assert lost["retryable"] is True
    assert detected < 6, detected  # heartbeat TTL 3 s, checked after 2 s of silence
    assert not b.hub.running


async def test_expired_streams_cannot_be_resumed_anywhere(
    redis_url: str, start_gateway: StartGateway
) -> None:
    a, b = pair(start_gateway, redis_url, resume={"retention_seconds": 1.0})
    async with connect(a.ws) as ws:
        await recv(ws)
        await start(ws, "s1", prompt="hello there", options={"max_tokens": 8})
        per_id, _ = await collect(ws, {"s1"})
    original = per_id["s1"]
    key = original[0]["key"]
    assert await resume(b.ws, key, -1) == original  # ended, still kept: replayed whole on B
    await asyncio.sleep(1.3)
    for gateway in (a, b):
        async with connect(gateway.ws) as ws:
            await recv(ws)
            await send(ws, {"type": "resume", "key": key, "after_seq": 0})
            refused = await recv(ws)
        assert refused["type"] == "error"
        assert refused["code"] == "stream_expired"
        async with aiohttp.ClientSession() as http, http.get(f"{gateway.http}/v1/streams/{key}") as response:
            assert response.status == 404
            assert (await response.json())["error"]["code"] == "stream_expired"


async def test_grace_period_honours_readers_on_other_instances(
    redis_url: str, start_gateway: StartGateway
) -> None:
    a, b = pair(start_gateway, redis_url, resume={"resume_grace_seconds": 0.5})
    # Read on B past A's grace: A keeps the stream running.
    async with connect(a.ws) as ws:
        first = await start_and_read(ws, "s1", 2, **LONG)
    rest = await resume(b.ws, first[0]["key"], first[-1]["seq"])
    assert rest[-1]["type"] == "done"
    assert rest[-1]["finish_reason"] == "stop"
    # Leave B too: B's grace ends it on A.
    async with connect(a.ws) as ws:
        second = await start_and_read(ws, "s2", 2, **LONGER)
    key = second[0]["key"]
    async with connect(b.ws) as ws:
        await recv(ws)
        await send(ws, {"type": "resume", "key": key, "after_seq": second[-1]["seq"]})
        await recv(ws)
    await until(lambda: not a.hub.running, timeout=5)
    events = await resume(b.ws, key, 0, stream_id="s2")
    assert events[-1]["type"] == "done"
    assert events[-1]["finish_reason"] == "cancelled"


async def test_unreachable_redis_stops_start_up_without_leaking_the_password(tmp_path: Path) -> None:
    port = free_port()
    toml = tmp_path / "tokenwire.toml"
    toml.write_text(f'[resume]\nstore = "redis"\nredis_url = "redis://:hunter2@127.0.0.1:{free_port()}/0"\n')
    process = tokenwire("serve", "--port", str(port), "--config", str(toml))
    output, _ = process.communicate(timeout=30)
    assert process.returncode != 0
    assert "cannot reach Redis at redis://:***@127.0.0.1:" in output
    assert "hunter2" not in output
    with pytest.raises(aiohttp.ClientConnectionError):
        await wait_healthy_once(f"127.0.0.1:{port}")


async def wait_healthy_once(base: str) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"http://{base}/healthz"):
        pass


async def _answers(ws: ClientConnection, sid: str, ts: int, sent: float) -> tuple[float, float, Message]:
    """Seconds after ``sent`` until the pong of ``ts`` and the answer to the start of ``sid``, and
    that answer; read on to the end of its stream."""
    pong_at = answer_at = 0.0
    events: list[Message] = []
    while not (pong_at and events and (is_terminal(events[-1]) or "seq" not in events[-1])):
        message = await recv(ws)
        if message["type"] == "pong" and message["ts"] == ts:
            pong_at = time.monotonic() - sent
        elif message.get("id") == sid:
            answer_at = answer_at or time.monotonic() - sent
            events.append(message)
    return pong_at, answer_at, events[0]


async def test_a_hanging_redis_holds_up_neither_starts_nor_the_socket(
    redis_process: RedisServer, redis_url: str, start_gateway: StartGateway
) -> None:
    budget = 0.4
    a, b = pair(start_gateway, redis_url, resume={"redis_timeout_seconds": budget})
    async with connect(a.ws) as ws:
        await recv(ws)
        with redis_process.frozen():
            for i in range(4):  # within and past the pause after a failure: every start is bounded
                sent = time.monotonic()
                await start(ws, f"s{i}", prompt="hi", options={"max_tokens": 4})
                await send(ws, {"type": "ping", "ts": i})
                pong_at, answer_at, answer = await _answers(ws, f"s{i}", i, sent)
                assert answer["type"] == "start", answer  # admitted on A's own count
                assert answer_at < budget + 0.5, answer_at
                assert pong_at < 0.25, pong_at  # at once, not behind the admission
                await asyncio.sleep(0.4)
            await asyncio.sleep(1.0)  # past the pause: the next look-ups ask Redis
            for probe, code in (
                ({"type": "resume", "key": "k" * 32}, "stream_expired"),
                ({"type": "cancel", "key": "k" * 32}, "unknown_stream"),
            ):
                sent = time.monotonic()
                await send(ws, probe)
                refused = await recv(ws)
                assert refused["code"] == code
                assert time.monotonic() - sent < budget + 0.5
                await asyncio.sleep(1.0)
    await asyncio.sleep(1.5)  # Redis answers again; A beats again
    async with connect(a.ws) as ws:
        first = await start_and_read(ws, "s1", 4, **LONG)
    rest = await resume(b.ws, first[0]["key"], first[-1]["seq"])
    assert_gap_free(first + rest)
    assert rest[-1]["type"] == "done"
    await until(lambda: not a.hub.running)


async def test_a_resumer_ahead_of_a_dead_owners_mirror_gets_stream_lost(
    redis_url: str, start_gateway: StartGateway, tmp_path: Path
) -> None:
    b = start_gateway(config(redis_url))
    with owner_process(redis_url, tmp_path) as (owner, base):
        await wait_healthy(base)
        async with connect(f"ws://{base}/v1/ws") as ws_a:
            first = await start_and_read(ws_a, "s1", 3, **LONGER)
        owner.send_signal(signal.SIGKILL)
    key, seen = first[0]["key"], first[-1]["seq"]
    # The owner died before its mirror caught up with what its client saw: the mirror ends at
    # seq 1, two behind the client (made certain by dropping the later entries).
    client = aioredis.from_url(redis_url)
    try:
        items: list[tuple[bytes, Any]] = await client.xrange(f"tw:s:{key}")  # type: ignore[assignment]
        later = [entry_id for entry_id, _ in items if int(entry_id.split(b"-")[0]) > 2]  # seq 2 on
        if later:
            await client.xdel(f"tw:s:{key}", *later)
    finally:
        await client.aclose()
    # While the owner's heartbeat lives (found running), and once it is known lost (found lost):
    # one retryable stream_lost, numbered right after what the client has.
    for _ in range(2):
        assert await resume(b.ws, key, seen) == [
            {
                "type": "error",
                "id": "s1",
                "seq": seen + 1,
                "code": "stream_lost",
                "message": "the instance running the stream is gone; start it again",
                "retryable": True,
                "provider": "rulebased",
            }
        ]
    replay = await resume(b.ws, key, -1)  # behind the mirror's end: the mirror, then the error
    assert_gap_free(replay)
    assert replay[-1]["code"] == "stream_lost"
    assert replay[-1]["seq"] == 2
    assert not b.hub.running
