"""``POST /v1/ui/chat`` and ``GET /v1/ui/chat/{chatId}/stream`` (the AI SDK's DefaultChatTransport)
through a real gateway: the UI message stream's exact chunks, refusals, resume, and resume on
another instance sharing one real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import StartGateway

DONE = "[DONE]"
USER = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "What is a tide pool?"}]}


def chat(chat_id: str = "c1", **extra: Any) -> dict[str, Any]:
    return {"id": chat_id, "messages": [USER], "trigger": "submit-message", **extra}


async def data_lines(response: aiohttp.ClientResponse) -> AsyncIterator[Any]:
    """The ``data:`` payloads of a UI message stream, decoded (``[DONE]`` as the string)."""
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            yield payload if payload == DONE else json.loads(payload)


async def read_all(response: aiohttp.ClientResponse) -> list[Any]:
    return [item async for item in data_lines(response)]


async def read_some(response: aiohttp.ClientResponse, count: int) -> list[Any]:
    items: list[Any] = []
    async for item in data_lines(response):
        items.append(item)
        if len(items) == count:
            break
    return items


async def completion_text(base: str, **fields: Any) -> str:
    """What the same request answers through ``POST /v1/completions``."""
    body = {"messages": [{"role": "user", "content": "What is a tide pool?"}], **fields}
    async with aiohttp.ClientSession() as http, http.post(base + "/v1/completions", json=body) as r:
        assert r.status == 200
        text: str = (await r.json())["content"]
        return text


def assert_ui_headers(response: aiohttp.ClientResponse) -> None:
    assert response.status == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert response.headers["x-accel-buffering"] == "no"


def assert_text_message(items: list[Any], message_id: str, text: str) -> None:
    """A whole text answer: start, one text part whose deltas join to ``text``, finish, [DONE]."""
    assert items[:2] == [{"type": "start", "messageId": message_id}, {"type": "start-step"}]
    part = items[2]
    assert part["type"] == "text-start"
    assert part["id"].startswith("t")
    deltas = items[3:-4]
    assert deltas
    assert all(d == {"type": "text-delta", "id": part["id"], "delta": d["delta"]} for d in deltas)
    assert "".join(d["delta"] for d in deltas) == text
    assert items[-4:-2] == [{"type": "text-end", "id": part["id"]}, {"type": "finish-step"}]
    finish = items[-2]
    assert finish["type"] == "finish"
    assert finish["finishReason"] == "stop"
    assert set(finish["messageMetadata"]) == {"usage", "metrics"}
    assert finish["messageMetadata"]["usage"]["completion_tokens"] > 0
    assert items[-1] == DONE


async def test_text_answer_is_the_ui_message_stream(start_gateway: StartGateway) -> None:
    gw = start_gateway({"providers": {"rulebased": {"chunk_delay_ms": 1}}})
    expected = await completion_text(gw.http)
    async with aiohttp.ClientSession() as http, http.post(gw.http + "/v1/ui/chat", json=chat()) as r:
        assert_ui_headers(r)
        items = await read_all(r)
    message_id = items[0]["messageId"]
    assert message_id.startswith("msg_")
    assert len(message_id) > 12
    assert_text_message(items, message_id, expected)


async def test_continuation_keeps_the_request_message_id(start_gateway: StartGateway) -> None:
    gw = start_gateway({"providers": {"rulebased": {"chunk_delay_ms": 0}}})
    async with aiohttp.ClientSession() as http:
        async with http.post(gw.http + "/v1/ui/chat", json=chat(messageId="m-7")) as r:
            items = await read_all(r)
        assert items[0] == {"type": "start", "messageId": "m-7"}
        async with http.post(gw.http + "/v1/ui/chat", json=chat()) as r:
            other = (await read_all(r))[0]["messageId"]
    assert other not in ("m-7", "")
    assert other.startswith("msg_")


async def test_reasoning_and_tool_call_chunks(start_gateway: StartGateway) -> None:
    gw = start_gateway({"providers": {"rulebased": {"chunk_delay_ms": 0}}})
    tool = {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    user = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Use get_weather for Paris"}]}
    body = {"id": "c1", "messages": [user], "tools": [tool], "reasoning": {}}
    async with aiohttp.ClientSession() as http, http.post(gw.http + "/v1/ui/chat", json=body) as r:
        items = await read_all(r)
    kinds = [item if item == DONE else item["type"] for item in items]
    assert kinds[:3] == ["start", "start-step", "reasoning-start"]
    assert "reasoning-delta" in kinds
    assert "tool-input-start" in kinds
    call = next(item for item in items if item != DONE and item["type"] == "tool-input-available")
    assert call["toolName"] == "get_weather"
    assert call["input"] == {"city": "Paris"}
    deltas = [i["inputTextDelta"] for i in items if i != DONE and i["type"] == "tool-input-delta"]
    assert json.loads("".join(deltas)) == {"city": "Paris"}
    assert items[-2]["finishReason"] == "tool-calls"
    assert items[-1] == DONE


async def test_upstream_error_ends_with_an_error_chunk(start_gateway: StartGateway) -> None:
    gw = start_gateway({"providers": {"rulebased": {"chunk_delay_ms": 0}}})
    body = chat(options={"fault": {"error_after_chunks": 1}})
    async with aiohttp.ClientSession() as http, http.post(gw.http + "/v1/ui/chat", json=body) as r:
        items = await read_all(r)
    assert items[-1] == DONE
    error = items[-2]
    assert error["type"] == "error"
    assert error["errorText"] == (
        "upstream_unavailable: rulebased answered HTTP 503: injected fault (error_after_chunks = 1)"
    )


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        (b"{not json", 400, "bad_message", "not valid JSON"),
        (
            json.dumps({"id": "c1", "messages": [{"role": "robot", "parts": []}]}).encode(),
            400,
            "bad_message",
            "$.messages[0].role",
        ),
        (json.dumps({"id": "c/1", "messages": []}).encode(), 400, "bad_message", "$.id"),
        (
            json.dumps(
                chat(
                    messages=[
                        {
                            "role": "user",
                            "parts": [
                                {
                                    "type": "file",
                                    "mediaType": "application/pdf",
                                    "url": "data:application/pdf;base64,AA==",
                                }
                            ],
                        }
                    ]
                )
            ).encode(),
            400,
            "unsupported_input",
            "application/pdf",
        ),
        (json.dumps(chat(provider="nope")).encode(), 404, "unknown_provider", "nope"),
    ],
)
async def test_refusals_are_the_json_errors_of_v1_streams(
    start_gateway: StartGateway, body: bytes, status: int, code: str, says: str
) -> None:
    gw = start_gateway()
    async with aiohttp.ClientSession() as http:
        async with http.post(gw.http + "/v1/ui/chat", data=body) as r:
            assert r.status == status
            error = (await r.json())["error"]
        assert error["code"] == code, error
        assert says in error["message"], error
    assert not gw.hub.running


async def test_refusals_match_post_v1_streams_for_the_same_request(start_gateway: StartGateway) -> None:
    gw = start_gateway()
    async with aiohttp.ClientSession() as http:
        async with http.post(gw.http + "/v1/ui/chat", json=chat(model="x" * 5, provider="nope")) as r:
            ui = r.status, await r.json()
        v1 = {"messages": [{"role": "user", "content": "hi"}], "model": "xxxxx", "provider": "nope"}
        async with http.post(gw.http + "/v1/streams", json=v1) as r:
            assert (r.status, await r.json()) == ui


async def test_resume_is_204_without_an_active_stream(start_gateway: StartGateway) -> None:
    gw = start_gateway({"providers": {"rulebased": {"chunk_delay_ms": 0}}})
    async with aiohttp.ClientSession() as http:
        async with http.get(gw.http + "/v1/ui/chat/nobody/stream") as r:
            assert r.status == 204
            assert await r.read() == b""
        async with http.post(gw.http + "/v1/ui/chat", json=chat("done-chat")) as r:
            await read_all(r)
        async with http.get(gw.http + "/v1/ui/chat/done-chat/stream") as r:
            assert r.status == 204  # it ended: nothing to resume
        async with http.get(gw.http + "/v1/ui/chat/bad%2Fid/stream") as r:
            assert r.status in (400, 404)


async def test_resume_replays_from_the_start_with_the_same_message_id(start_gateway: StartGateway) -> None:
    config = {"resume": {"resume_grace_seconds": 5}, "providers": {"rulebased": {"chunk_delay_ms": 60}}}
    gw = start_gateway(config)
    expected = await completion_text(gw.http)
    async with aiohttp.ClientSession() as http:
        async with http.post(gw.http + "/v1/ui/chat", json=chat("c-res")) as r:
            first = await read_some(r, 4)  # start, start-step, text-start, a delta; then drop
        message_id = first[0]["messageId"]
        async with http.get(gw.http + "/v1/ui/chat/c-res/stream") as r:
            assert_ui_headers(r)
            replay = await read_all(r)
    assert replay[:4] == first
    assert_text_message(replay, message_id, expected)


# ---- two instances on one Redis --------------------------------------------------------------


async def test_resume_on_another_instance(redis_url: str, start_gateway: StartGateway) -> None:
    config = {
        "resume": {"store": "redis", "redis_url": redis_url, "resume_grace_seconds": 5},
        "providers": {"rulebased": {"chunk_delay_ms": 60}},
    }
    a, b = start_gateway(config), start_gateway(config)
    expected = await completion_text(a.http)
    async with aiohttp.ClientSession() as http:
        async with http.get(b.http + "/v1/ui/chat/c-far/stream") as r:
            assert r.status == 204
        async with http.post(a.http + "/v1/ui/chat", json=chat("c-far", messageId="m-far")) as r:
            first = await read_some(r, 4)
        async with http.get(b.http + "/v1/ui/chat/c-far/stream") as r:
            assert_ui_headers(r)
            replay = await read_all(r)
        assert replay[:4] == first
        assert_text_message(replay, "m-far", expected)
        assert not b.hub.running  # B relayed it; A ran it
        async with asyncio.timeout(5):
            while a.hub.running:
                await asyncio.sleep(0.01)
        for gw in (a, b):
            async with http.get(gw.http + "/v1/ui/chat/c-far/stream") as r:
                assert r.status == 204  # ended: a stale binding never answers
