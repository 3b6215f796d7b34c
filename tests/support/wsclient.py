"""A small protocol v1 client over a real `websockets` connection, for assertions."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

Message = dict[str, Any]


async def recv(ws: ClientConnection, timeout: float = 10) -> Message:
    async with asyncio.timeout(timeout):
        raw = await ws.recv()
    message: Message = json.loads(raw)
    return message


async def send(ws: ClientConnection, message: Message) -> None:
    await ws.send(json.dumps(message))


async def start(ws: ClientConnection, stream_id: str, **fields: Any) -> None:
    await send(ws, {"type": "start", "id": stream_id, **fields})


def is_terminal(message: Message) -> bool:
    return message["type"] == "done" or (message["type"] == "error" and "seq" in message)


async def collect(
    ws: ClientConnection, ids: set[str], timeout: float = 20
) -> tuple[dict[str, list[Message]], list[Message]]:
    """Read until every id in ``ids`` has its terminal event (or was refused before starting).
    Returns per-id events (in order) and every message in arrival order."""
    per_id: dict[str, list[Message]] = {i: [] for i in ids}
    arrival: list[Message] = []
    open_ids = set(ids)
    async with asyncio.timeout(timeout):
        while open_ids:
            message = await recv(ws)
            arrival.append(message)
            stream_id = message.get("id")
            if stream_id in per_id:
                events = per_id[stream_id]
                events.append(message)
                refused = message["type"] == "error" and "seq" not in message
                if is_terminal(message) or (refused and not any(e["type"] == "start" for e in events)):
                    open_ids.discard(stream_id)
    return per_id, arrival


def chunk_text(events: list[Message]) -> str:
    return "".join(e["content"] for e in events if e["type"] == "chunk")


def assert_gap_free(events: list[Message]) -> None:
    """ack seq 0, chunks covering 1..n with no gap (merged chunks cover from_seq..seq), terminal n+1."""
    assert events[0]["type"] == "start"
    assert events[0]["seq"] == 0
    expected = 1
    for event in events[1:-1]:
        assert event["type"] == "chunk", event
        assert event.get("from_seq", event["seq"]) == expected, event
        assert event["seq"] >= expected
        expected = event["seq"] + 1
    assert is_terminal(events[-1])
    assert events[-1]["seq"] == expected


def joined(events: list[Message]) -> list[Message]:
    """The parts between ack and terminal, adjacent deltas of one kind (and call) joined, without
    ids and seqs: the same whether or not the reader was behind."""
    out: list[Message] = []
    for event in events[1:-1]:
        body = {k: v for k, v in event.items() if k not in ("id", "seq", "from_seq")}
        last = out[-1] if out else None
        if last is not None and last["type"] == body["type"] and last.get("call_id") == body.get("call_id"):
            field = {"chunk": "content", "reasoning": "content", "tool_call_delta": "arguments_delta"}.get(
                body["type"]
            )
            if field is not None:
                last[field] += body[field]
                continue
        out.append(body)
    return out


def assert_seq_covers(events: list[Message]) -> None:
    """Every seq from the ack to the terminal event, once (a merged message covers from_seq..seq)."""
    expected = 0
    for event in events:
        assert event.get("from_seq", event["seq"]) == expected, event
        expected = event["seq"] + 1


async def stream_events(url: str, stream_id: str = "a", **fields: Any) -> list[Message]:
    """Open a socket, run one stream to its end (or refusal) and return its events."""
    async with connect(url) as ws:
        await recv(ws)
        await start(ws, stream_id, **fields)
        per_id, _ = await collect(ws, {stream_id})
    return per_id[stream_id]


def assert_cancelled(events: list[Message]) -> Message:
    """``events`` of one stream, cancelled: gap-free, ended by ``done``/``cancelled`` whose content
    is all the text sent. Returns the done."""
    assert_gap_free(events)
    done = events[-1]
    assert done["type"] == "done"
    assert done["finish_reason"] == "cancelled"
    assert done["content"] == chunk_text(events)
    return done
