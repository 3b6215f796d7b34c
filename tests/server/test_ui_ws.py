"""``GET /v1/ui/ws`` (the AI SDK's WebSocketChatTransport) over a real socket, frame by frame."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import Gateway, StartGateway
from tests.support.providers import ScriptedProvider

Frame = dict[str, Any]


def ui_url(gw: Gateway, query: str = "") -> str:
    return gw.ws.replace("/v1/ws", "/v1/ui/ws") + query


def user(text: str, mid: str = "u1") -> dict[str, Any]:
    return {"id": mid, "role": "user", "parts": [{"type": "text", "text": text}]}


async def send_chat(ws: ClientConnection, rid: str, chat: str, text: str, **body: Any) -> None:
    frame = {
        "type": "send",
        "requestId": rid,
        "id": chat,
        "trigger": "submit-message",
        "messages": [user(text)],
        "headers": {},
        "body": body,
    }
    await ws.send(json.dumps(frame))


async def until_done(ws: ClientConnection, rids: set[str]) -> tuple[dict[str, list[Frame]], list[Frame]]:
    """Frames per request until each of ``rids`` got ``end``, ``error`` or ``no-active``."""
    per: dict[str, list[Frame]] = {rid: [] for rid in rids}
    arrival: list[Frame] = []
    open_ = set(rids)
    async with asyncio.timeout(10):
        while open_:
            frame = json.loads(await ws.recv())
            assert isinstance(frame.get("requestId"), str), frame  # else the client fails them all
            arrival.append(frame)
            per.setdefault(frame["requestId"], []).append(frame)
            if frame["type"] in ("end", "error", "no-active"):
                open_.discard(frame["requestId"])
    return per, arrival


def chunks(frames: list[Frame]) -> list[Frame]:
    """The UI chunks of one request's frames, checking the sequence is 0, 1, 2, ... and the end."""
    seq = [f["sequence"] for f in frames if f["type"] == "chunk"]
    assert seq == list(range(len(seq))), seq
    assert frames[-1] == {"type": "end", "requestId": frames[-1]["requestId"]}
    return [f["chunk"] for f in frames if f["type"] == "chunk"]


def text_of(ui: list[Frame]) -> str:
    return "".join(c["delta"] for c in ui if c["type"] == "text-delta")


async def test_send_streams_chunks_with_gap_free_sequence_then_end(gateway: Gateway) -> None:
    async with connect(ui_url(gateway)) as ws:
        await send_chat(ws, "r1", "chat-1", "Why is the sky blue?")
        per, _ = await until_done(ws, {"r1"})
    frames = per["r1"]
    assert all(set(f) == {"type", "requestId", "sequence", "chunk"} for f in frames[:-1])
    ui = chunks(frames)
    assert ui[0]["type"] == "start"
    assert ui[0]["messageId"].startswith("msg_")
    assert ui[1] == {"type": "start-step"}
    assert ui[-1]["type"] == "finish"
    assert ui[-1]["finishReason"] == "stop"
    assert ui[-1]["messageMetadata"]["metrics"]["provider"] == "rulebased"
    assert "Why is the sky blue?" in text_of(ui)


async def test_continuation_echoes_message_id_and_body_fields_use_start_names(
    start_gateway: StartGateway,
) -> None:
    gw = start_gateway({"providers": {"rulebased": {"chunk_delay_ms": 0}}})
    tool = {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    async with connect(ui_url(gw)) as ws:
        frame = {
            "type": "send",
            "requestId": "r1",
            "id": "c",
            "trigger": "submit-message",
            "messageId": "msg_prev",
            "messages": [user("call get_weather for Oslo")],
            "headers": {"authorization": "Bearer x"},
            "body": {"provider": "rulebased", "tools": [tool], "id": "ignored", "extra": 1},
            "metadata": {"trace": "x"},
        }
        await ws.send(json.dumps(frame))
        per, _ = await until_done(ws, {"r1"})
    ui = chunks(per["r1"])
    assert ui[0] == {"type": "start", "messageId": "msg_prev"}
    kinds = [c["type"] for c in ui]
    assert "tool-input-start" in kinds
    assert "tool-input-available" in kinds
    available = next(c for c in ui if c["type"] == "tool-input-available")
    assert available["toolName"] == "get_weather"
    assert ui[-1]["finishReason"] == "tool-calls"


async def test_three_chats_interleave_on_one_socket(gateway: Gateway) -> None:
    async with connect(ui_url(gateway)) as ws:
        for n in range(3):
            await send_chat(ws, f"r{n}", f"chat-{n}", f"question number {n}")
        per, arrival = await until_done(ws, {"r0", "r1", "r2"})
    for n in range(3):
        assert f"question number {n}" in text_of(chunks(per[f"r{n}"]))
    order = [f["requestId"] for f in arrival if f["type"] == "chunk"]
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    assert switches >= 4, "the chats' chunks should interleave"


async def test_abort_cancels_upstream_at_once_and_sends_nothing_more(start_gateway: StartGateway) -> None:
    upstream = ScriptedProvider(count=1000, delay=0.01, text="tok ")
    # A long grace: only the abort itself can stop the upstream within the test.
    gw = start_gateway({"resume": {"resume_grace_seconds": 60}}, providers=[upstream])
    async with connect(ui_url(gw)) as ws:
        await send_chat(ws, "a", "chat-a", "hi", provider="scripted")
        await send_chat(ws, "b", "chat-b", "hi", provider="rulebased")
        early = [json.loads(await ws.recv()) for _ in range(6)]
        await ws.send(json.dumps({"type": "abort", "requestId": "a"}))
        async with asyncio.timeout(3):
            while upstream.closed == 0:
                await asyncio.sleep(0.01)
        per, _ = await until_done(ws, {"b"})
    assert upstream.closed == 1
    assert upstream.finished == 0
    a_frames = [f for f in early if f["requestId"] == "a"] + per.get("a", [])
    assert a_frames, "a was streaming when aborted"
    assert [f for f in a_frames if f["type"] in ("end", "error")] == []
    b_frames = [f for f in early if f["requestId"] == "b"] + per["b"]
    assert chunks(b_frames)[-1]["type"] == "finish"
    async with connect(ui_url(gw)) as ws:  # a stopped chat has nothing to resume
        await ws.send(
            json.dumps({"type": "resume", "requestId": "r", "id": "chat-a", "headers": {}, "body": {}})
        )
        assert json.loads(await ws.recv()) == {"type": "no-active", "requestId": "r"}


async def test_resume_replays_from_the_first_chunk_with_the_same_message_id(
    start_gateway: StartGateway,
) -> None:
    upstream = ScriptedProvider(count=40, delay=0.01, text="w ")
    gw = start_gateway({"resume": {"resume_grace_seconds": 30}}, providers=[upstream])
    async with connect(ui_url(gw)) as ws:
        await send_chat(ws, "first", "chat-r", "hi", provider="scripted")
        seen = [json.loads(await ws.recv()) for _ in range(5)]
    message_id = seen[0]["chunk"]["messageId"]
    async with connect(ui_url(gw)) as ws:
        await ws.send(
            json.dumps({"type": "resume", "requestId": "again", "id": "chat-r", "headers": {}, "body": {}})
        )
        per, _ = await until_done(ws, {"again"})
    frames = per["again"]
    assert frames[0] == {"type": "start", "requestId": "again"}
    ui = chunks(frames[1:])
    assert ui[0] == {"type": "start", "messageId": message_id}
    assert ui[1:3] == [c["chunk"] for c in seen[1:3]]  # start-step, text-start: the same part ids
    assert text_of(ui) == "w " * 40
    assert ui[-1]["type"] == "finish"


async def test_resume_of_a_chat_without_a_stream_answers_no_active(gateway: Gateway) -> None:
    async with connect(ui_url(gateway)) as ws:
        await ws.send(
            json.dumps({"type": "resume", "requestId": "q", "id": "nobody", "headers": {}, "body": {}})
        )
        assert json.loads(await ws.recv()) == {"type": "no-active", "requestId": "q"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"provider": "nope"}, "unknown_provider: "),
        ({"tools": [{"name": "bad name!"}]}, "bad_message: "),
        ({"options": {"temperature": "hot"}}, "bad_message: "),
    ],
)
async def test_refusals_are_error_frames_for_that_request(
    gateway: Gateway, body: dict[str, Any], expected: str
) -> None:
    async with connect(ui_url(gateway)) as ws:
        await send_chat(ws, "bad", "c", "hi", **body)
        await send_chat(ws, "good", "c2", "hi")
        per, _ = await until_done(ws, {"bad", "good"})
    assert len(per["bad"]) == 1
    error = per["bad"][0]
    assert set(error) == {"type", "requestId", "errorText"}
    assert error["type"] == "error"
    assert error["errorText"].startswith(expected), error
    assert chunks(per["good"])[-1]["type"] == "finish"


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '{"type": "send"}',  # no requestId: any answer would be fatal to the client
        '{"type": "send", "requestId": 7}',
        '{"type": "abort", "requestId": "' + "x" * 300 + '"}',
    ],
)
async def test_frames_without_a_readable_request_id_are_dropped_unanswered(
    gateway: Gateway, raw: str
) -> None:
    async with connect(ui_url(gateway)) as ws:
        await ws.send(raw)
        await send_chat(ws, "after", "c", "still served")
        per, arrival = await until_done(ws, {"after"})
    assert {f["requestId"] for f in arrival} == {"after"}
    assert "still served" in text_of(chunks(per["after"]))


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "heartbeat", "requestId": "r"},
        {"type": "send", "requestId": "r", "id": "c", "trigger": "submit-message", "messages": []},
        {
            "type": "send",
            "requestId": "r",
            "id": "c/../x",
            "trigger": "submit-message",
            "messages": [user("hi")],
        },
        {"type": "send", "requestId": "r", "id": "c", "trigger": "other", "messages": [user("hi")]},
        {"type": "resume", "requestId": "r", "id": "c", "lastSequence": -1},
        {
            "type": "send",
            "requestId": "r",
            "id": "c",
            "trigger": "submit-message",
            "messages": [{"role": "user"}],
        },
    ],
)
async def test_invalid_frames_with_a_request_id_get_an_error_frame(gateway: Gateway, frame: Frame) -> None:
    async with connect(ui_url(gateway)) as ws:
        await ws.send(json.dumps(frame))
        reply = json.loads(await ws.recv())
    assert reply["type"] == "error"
    assert reply["requestId"] == "r"
    assert reply["errorText"].startswith("bad_message: ")


async def test_stream_limit_per_connection_and_duplicate_request_id(start_gateway: StartGateway) -> None:
    upstream = ScriptedProvider(count=1000, delay=0.01)
    gw = start_gateway({"streaming": {"max_streams_per_connection": 2}}, providers=[upstream])
    async with connect(ui_url(gw)) as ws:
        await send_chat(ws, "a", "c1", "hi", provider="scripted")
        await send_chat(ws, "b", "c2", "hi", provider="scripted")
        await send_chat(ws, "a", "c1", "again", provider="scripted")
        await send_chat(ws, "c", "c3", "hi", provider="scripted")
        errors: dict[str, str] = {}
        async with asyncio.timeout(5):
            while len(errors) < 2:
                frame = json.loads(await ws.recv())
                if frame["type"] == "error":
                    errors[frame["requestId"]] = frame["errorText"]
        for rid in ("a", "b"):
            await ws.send(json.dumps({"type": "abort", "requestId": rid}))
    assert errors["a"].startswith("duplicate_stream: ")
    assert errors["c"].startswith("too_many_streams: at most 2 streams")


async def test_start_rate_limit_is_an_error_frame(start_gateway: StartGateway) -> None:
    gw = start_gateway({"streaming": {"starts_per_second": 1, "starts_burst": 1}})
    async with connect(ui_url(gw)) as ws:
        await send_chat(ws, "a", "c1", "hi")
        await send_chat(ws, "b", "c2", "hi")
        per, _ = await until_done(ws, {"a", "b"})
    assert per["b"][0]["errorText"].startswith("rate_limited: ")
    assert chunks(per["a"])[-1]["type"] == "finish"


async def test_upstream_error_ends_with_an_error_chunk_then_end(start_gateway: StartGateway) -> None:
    gw = start_gateway({"streaming": {"retry_attempts": 0}})
    async with connect(ui_url(gw)) as ws:
        await send_chat(ws, "r", "c", "hi", options={"fault": {"error_after_chunks": 2}})
        per, _ = await until_done(ws, {"r"})
    ui = chunks(per["r"])
    assert ui[-1]["type"] == "error"
    assert ui[-1]["errorText"].startswith("upstream_unavailable: ")


async def test_oversized_frame_closes_the_socket(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"max_message_bytes": 4096}})
    async with connect(ui_url(gw)) as ws:
        await send_chat(ws, "big", "c", "x" * 8000)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


async def test_first_offered_subprotocol_is_selected(gateway: Gateway) -> None:
    async with connect(ui_url(gateway), subprotocols=["tokenwire.ui.v1", "other"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "tokenwire.ui.v1"
    async with connect(ui_url(gateway)) as ws:
        assert ws.subprotocol is None


async def test_tokens_by_query_or_cookie(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"auth_tokens": ["s3cret"]}})
    async with connect(ui_url(gw)) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    for how in ({"query": "?token=s3cret"}, {"cookie": "tokenwire_token=s3cret"}):
        headers = {"cookie": how["cookie"]} if "cookie" in how else {}
        async with connect(ui_url(gw, how.get("query", "")), additional_headers=headers) as ws:
            await send_chat(ws, "r", "c", "hi")
            per, _ = await until_done(ws, {"r"})
        assert chunks(per["r"])[-1]["type"] == "finish"
    async with connect(ui_url(gw), additional_headers={"cookie": "a=b; tokenwire_token=wrong"}) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
