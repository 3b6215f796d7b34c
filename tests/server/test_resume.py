"""Resumable streams on one gateway (memory store): keys, resume by seq over WebSocket and SSE,
cancel by key, the grace period after a client goes away, retention and eviction."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection, connect

from server.streams.runner import Stream
from tests.conftest import Gateway, StartGateway
from tests.support.providers import ScriptedProvider
from tests.support.sseclient import read_events
from tests.support.wsclient import Message, collect, is_terminal, recv, send, start

LONG = {"prompt": "tell me about tides", "options": {"max_tokens": 400}}
PACED: dict[str, Any] = {
    "providers": {"rulebased": {"chunk_delay_ms": 10}},
    "resume": {"resume_grace_seconds": 5},
}


async def _first_events(ws: ClientConnection, sid: str, chunks: int) -> list[Message]:
    """The ack and the first ``chunks`` chunks of ``sid``."""
    events: list[Message] = []
    while sum(e["type"] == "chunk" for e in events) < chunks:
        message = await recv(ws)
        if message.get("id") == sid:
            events.append(message)
    return events


def _assert_continues(before: list[Message], after: list[Message]) -> None:
    """``after`` starts right after ``before``'s last seq: no gap, no duplicate, to the end."""
    expected = before[-1]["seq"] + 1
    for event in after:
        if event["type"] == "notice":
            continue
        assert event.get("from_seq", event["seq"]) == expected, event
        expected = event["seq"] + 1
    assert is_terminal(after[-1])


def _text(*parts: list[Message]) -> str:
    return "".join(e["content"] for events in parts for e in events if e["type"] == "chunk")


async def _resume(gw: Gateway, key: str, after_seq: int, **fields: Any) -> list[Message]:
    async with connect(gw.ws) as ws:
        await recv(ws)
        await send(ws, {"type": "resume", "key": key, "after_seq": after_seq, **fields})
        events: list[Message] = []
        while not events or not (is_terminal(events[-1]) or "seq" not in events[-1]):
            events.append(await recv(ws))  # the stream's events, or one refusal (no seq)
    return events


async def test_a_dropped_socket_resumes_on_a_new_one_with_nothing_lost(start_gateway: StartGateway) -> None:
    gw = start_gateway(PACED)
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "a", **LONG)
        before = await _first_events(ws, "a", 3)
    key = before[0]["key"]
    after = await _resume(gw, key, before[-1]["seq"])
    _assert_continues(before, after)
    done = after[-1]
    assert done["type"] == "done"
    assert done["finish_reason"] != "cancelled"
    assert _text(before, after) == done["content"]


async def test_resume_under_a_new_id_and_from_the_start(start_gateway: StartGateway) -> None:
    gw = start_gateway(PACED)
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "a", **LONG)
        before = await _first_events(ws, "a", 1)
    everything = await _resume(gw, before[0]["key"], -1, id="again")
    assert {e["id"] for e in everything} == {"again"}
    assert everything[0] == {**before[0], "id": "again"}  # the ack is replayed too
    assert _text(everything) == everything[-1]["content"]


async def test_an_ended_stream_stays_resumable_for_its_retention(start_gateway: StartGateway) -> None:
    gw = start_gateway({"resume": {"retention_seconds": 0.5}})
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "a", prompt="hi")
        per_id, _ = await collect(ws, {"a"})
    events = per_id["a"]
    key = events[0]["key"]
    tail = await _resume(gw, key, 1)
    _assert_continues(events[:2], tail)
    assert tail[-1] == events[-1]
    await asyncio.sleep(0.6)
    (expired,) = await _resume(gw, key, 1)
    assert expired["code"] == "stream_expired"
    assert expired["retryable"] is False
    assert "seq" not in expired


async def _start_watched(gw: Gateway, ws: ClientConnection) -> tuple[Message, weakref.ref[Stream]]:
    """Start stream ``a`` on the scripted provider: its ack, and a weak reference to its Stream."""
    await recv(ws)
    await start(ws, "a", provider="scripted", prompt="hi")
    ack = await recv(ws)
    (stream,) = gw.hub.running
    return ack, weakref.ref(stream)


async def test_an_ended_stream_is_kept_as_its_events_only(start_gateway: StartGateway) -> None:
    # Thousands of ended streams are kept for their retention: each must not hold its task,
    # provider request and timers (every object kept lengthens full garbage collections).
    gw = start_gateway(providers=[ScriptedProvider(first_delay=0.2, count=3)])
    async with connect(gw.ws) as ws:
        ack, ref = await _start_watched(gw, ws)
        per_id, _ = await collect(ws, {"a"})
    events = [ack, *per_id["a"]]
    await asyncio.sleep(0.05)  # the server thread finishes its end-of-stream bookkeeping
    gc.collect()
    assert ref() is None, "the ended Stream object is still referenced"
    replay = await _resume(gw, ack["key"], -1)  # its events are all still there (chunks merged)
    assert (replay[0], replay[-1]) == (ack, events[-1])
    assert _text(replay) == _text(events) == events[-1]["content"]


async def test_a_stream_that_ends_in_its_grace_period_is_let_go(start_gateway: StartGateway) -> None:
    # The grace timer of a dropped client must not hold the ended Stream for the whole period.
    gw = start_gateway({"resume": {"resume_grace_seconds": 30}}, [ScriptedProvider(first_delay=0.2, count=3)])
    async with connect(gw.ws) as ws:
        ack, ref = await _start_watched(gw, ws)
    for _ in range(100):  # it ends upstream on its own, nobody reading
        if not gw.hub.running:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.05)
    gc.collect()
    assert ref() is None, "the ended Stream is still held (by its grace timer?)"
    replay = await _resume(gw, ack["key"], 0)  # still resumable from its kept events
    assert replay[-1]["type"] == "done"


async def test_unknown_keys_and_bad_resumes_are_refused(gateway: Gateway) -> None:
    (unknown,) = await _resume(gateway, "x" * 32, 0)
    assert unknown["code"] == "stream_expired"
    async with connect(gateway.ws) as ws:
        await recv(ws)
        await send(ws, {"type": "resume", "key": "short"})
        bad = await recv(ws)
        assert bad["code"] == "bad_message"
        assert "$.key" in bad["message"]
        await start(ws, "a", prompt="hi")
        per_id, _ = await collect(ws, {"a"})
        done = per_id["a"][-1]
        await send(ws, {"type": "resume", "key": per_id["a"][0]["key"], "after_seq": done["seq"], "id": "b"})
        beyond = await recv(ws)
        assert beyond["code"] == "bad_message"
        assert f"ended at seq {done['seq']}" in beyond["message"]


async def test_sse_resumes_from_last_event_id_and_after(start_gateway: StartGateway) -> None:
    gw = start_gateway(PACED)
    async with aiohttp.ClientSession() as http:
        async with http.post(gw.http + "/v1/streams", json=LONG) as resp:
            head = (await read_events(resp, until={"chunk"})).events
        key, last = head[0].data["key"], head[-1].id
        assert last is not None
        headers = {"Last-Event-ID": last}
        async with http.get(f"{gw.http}/v1/streams/{key}", headers=headers) as resp:
            assert resp.status == 200
            tail = (await read_events(resp)).events
        async with http.get(f"{gw.http}/v1/streams/{key}?after=0") as resp:
            whole = (await read_events(resp)).events
        async with http.get(gw.http + "/v1/streams/" + "x" * 32) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "stream_expired"
    assert int(tail[0].id or -1) == int(last) + 1 or tail[0].data.get("from_seq") == int(last) + 1
    done = tail[-1].data
    assert done["type"] == "done"
    assert _text([e.data for e in head], [e.data for e in tail]) == done["content"]
    assert _text([e.data for e in whole]) == done["content"]


async def test_cancel_by_key_from_another_connection(start_gateway: StartGateway) -> None:
    upstream = ScriptedProvider(count=10_000, delay=0.01)
    gw = start_gateway({}, [upstream])
    async with connect(gw.ws) as owner, connect(gw.ws) as other:
        await recv(owner)
        await recv(other)
        await start(owner, "a", provider="scripted", prompt="hi")
        key = (await recv(owner))["key"]
        await send(other, {"type": "cancel", "id": "a"})  # the id is only the owner's label
        assert (await recv(other))["code"] == "unknown_stream"
        await send(other, {"type": "cancel", "key": key})
        per_id, _ = await collect(owner, {"a"})
    assert per_id["a"][-1]["finish_reason"] == "cancelled"
    assert upstream.closed == 1


async def test_delete_by_key(start_gateway: StartGateway) -> None:
    upstream = ScriptedProvider(count=10_000, delay=0.01)
    gw = start_gateway({}, [upstream])
    async with connect(gw.ws) as ws, aiohttp.ClientSession() as http:
        await recv(ws)
        await start(ws, "a", provider="scripted", prompt="hi")
        key = (await recv(ws))["key"]
        async with http.delete(f"{gw.http}/v1/streams/{key}") as resp:
            assert resp.status == 204
        per_id, _ = await collect(ws, {"a"})
    assert per_id["a"][-1]["finish_reason"] == "cancelled"


async def test_a_stream_nobody_resumes_is_cancelled_after_the_grace_period(
    start_gateway: StartGateway,
) -> None:
    upstream = ScriptedProvider(count=10_000, delay=0.01)
    gw = start_gateway({"resume": {"resume_grace_seconds": 0.5}}, [upstream])
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "a", provider="scripted", prompt="hi")
        await recv(ws)
    await asyncio.sleep(0.3)
    assert upstream.closed == 0, "still waiting for a resume"
    for _ in range(100):
        if upstream.closed:
            break
        await asyncio.sleep(0.02)
    assert upstream.closed == 1
    assert upstream.finished == 0


async def test_a_resumed_stream_outlives_the_grace_period(start_gateway: StartGateway) -> None:
    upstream = ScriptedProvider(count=150, delay=0.01)
    gw = start_gateway({"resume": {"resume_grace_seconds": 0.3}}, [upstream])
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "a", provider="scripted", prompt="hi")
        before = await _first_events(ws, "a", 1)
    after = await _resume(gw, before[0]["key"], before[-1]["seq"])  # takes ~1.5 s: beyond the grace
    assert after[-1]["type"] == "done"
    assert after[-1]["finish_reason"] == "stop"
    assert upstream.finished == 1


async def test_the_oldest_ended_streams_are_evicted_beyond_the_total_bound(
    start_gateway: StartGateway,
) -> None:
    gw = start_gateway({"resume": {"max_total_bytes": 4096}})
    keys = []
    async with connect(gw.ws) as ws:
        await recv(ws)
        for i in range(6):
            await start(ws, f"s{i}", prompt="tell me about tides", options={"max_tokens": 200})
            per_id, _ = await collect(ws, {f"s{i}"})
            keys.append(per_id[f"s{i}"][0]["key"])
    (evicted,) = await _resume(gw, keys[0], 0)
    assert evicted["code"] == "stream_expired"
    kept = await _resume(gw, keys[-1], 0)
    assert kept[-1]["type"] == "done"
