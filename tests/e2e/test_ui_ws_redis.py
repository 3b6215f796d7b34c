"""``/v1/ui/ws`` across two gateways sharing Redis: a chat started on A is resumed on B (replayed
from its first chunk, then live), and an ``abort`` on B cancels the stream running on A."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import Gateway, StartGateway


def _url(gw: Gateway) -> str:
    return gw.ws.replace("/v1/ws", "/v1/ui/ws")


def _send(rid: str, chat: str) -> str:
    message = {"id": "u", "role": "user", "parts": [{"type": "text", "text": "Describe the water cycle."}]}
    frame = {"type": "send", "requestId": rid, "id": chat, "trigger": "submit-message", "messages": [message]}
    return json.dumps({**frame, "headers": {}, "body": {}})


def _resume(rid: str, chat: str) -> str:
    return json.dumps({"type": "resume", "requestId": rid, "id": chat, "headers": {}, "body": {}})


async def _frames(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    async with asyncio.timeout(10):
        return [json.loads(await ws.recv()) for _ in range(count)]


async def _until_end(ws: ClientConnection, request_id: str | None = None) -> list[dict[str, Any]]:
    """Frames up to the end of a request (``request_id``'s, when given)."""
    frames: list[dict[str, Any]] = []

    def ended() -> bool:
        last = frames[-1] if frames else None
        ours = last is not None and (request_id is None or last["requestId"] == request_id)
        return ours and last["type"] in ("end", "error", "no-active")  # type: ignore[index]

    async with asyncio.timeout(10):
        while not ended():
            frames.append(json.loads(await ws.recv()))
    return frames


def _text(frames: list[dict[str, Any]]) -> str:
    chunks = [f["chunk"] for f in frames if f["type"] == "chunk"]
    return "".join(c["delta"] for c in chunks if c["type"] == "text-delta")


async def test_resume_and_abort_on_another_instance(redis_url: str, start_gateway: StartGateway) -> None:
    config = {
        "resume": {"store": "redis", "redis_url": redis_url, "resume_grace_seconds": 30},
        "providers": {"rulebased": {"chunk_delay_ms": 60}},
    }
    a, b = start_gateway(config), start_gateway(config)
    async with connect(_url(a)) as ws:
        await ws.send(_send("r1", "c-far"))
        first = await _frames(ws, 4)
    async with connect(_url(b)) as ws:
        await ws.send(_resume("r2", "c-far"))
        resumed = await _until_end(ws)
    assert resumed[0] == {"type": "start", "requestId": "r2"}
    sequence = [f["sequence"] for f in resumed if f["type"] == "chunk"]
    assert sequence == list(range(len(sequence)))
    assert [f["chunk"] for f in resumed[1:4]] == [
        f["chunk"] for f in first[:3]
    ]  # start, start-step, text-start
    assert resumed[-2]["chunk"]["type"] == "finish"
    assert "Describe the water cycle." in _text(resumed)
    assert not b.hub.running  # B relayed it; A ran it

    async with connect(_url(a)) as ws:
        await ws.send(_send("r3", "c-stop"))
        await _frames(ws, 4)
    async with connect(_url(b)) as ws:
        await ws.send(_resume("r4", "c-stop"))
        await _frames(ws, 3)
        await ws.send(json.dumps({"type": "abort", "requestId": "r4"}))
        async with asyncio.timeout(5):  # far within the 30 s grace: the abort itself ended it
            while a.hub.running:
                await asyncio.sleep(0.01)
        await ws.send(_resume("r5", "c-stop"))
        # Frames r4 had in flight before its abort may still come: the SDK ignores them.
        after = [f for f in await _until_end(ws, "r5") if f["requestId"] == "r5"]
    # B learns of the end through Redis a moment after A: until then a resume replays the stream
    # to its interrupted finish; after, the chat has nothing to resume.
    if after[-1]["type"] == "no-active":
        assert after == [{"type": "no-active", "requestId": "r5"}]
    else:
        assert after[-1] == {"type": "end", "requestId": "r5"}
        assert after[-2]["chunk"]["finishReason"] == "interrupted"
