"""The SSE fallback and non-streaming routes over real HTTP against a real uvicorn server."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest

from tests.conftest import Gateway, StartGateway
from tests.support.providers import ScriptedProvider
from tests.support.server_protocols import HTTP_PROTOCOLS, http_options
from tests.support.sseclient import read_events

BRIEF = {"topic": "Tide pools", "audience": "kids", "tone": "playful"}


async def _post(gw: Gateway, path: str, body: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(gw.http + path, json=body, **kwargs) as resp:
        return resp.status, await resp.json()


async def _active(gw: Gateway) -> int:
    async with aiohttp.ClientSession() as http, http.get(gw.http + "/healthz") as resp:
        body = await resp.json()
        assert body["status"] == "ok"
        return int(body["active_streams"])


@HTTP_PROTOCOLS
async def test_post_streams_serves_v1_events_with_seq_ids(
    start_gateway: StartGateway, http_protocol: str
) -> None:
    gateway = start_gateway(uvicorn_options=http_options(http_protocol))
    async with (
        aiohttp.ClientSession() as http,
        http.post(gateway.http + "/v1/streams", json={"id": "s1", "brief": BRIEF}) as resp,
    ):
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        assert resp.headers["cache-control"] == "no-cache"
        transcript = await read_events(resp)
    events = transcript.events
    assert events[0].event == "start"
    key = events[0].data.pop("key")
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", key), "192 random bits, URL-safe"
    assert events[0].data == {
        "type": "start",
        "id": "s1",
        "seq": 0,
        "provider": "rulebased",
        "model": "script",
    }
    assert [e.id for e in events] == [str(i) for i in range(len(events))]
    assert all(e.event == "chunk" for e in events[1:-1])
    done = events[-1]
    assert done.event == "done"
    assert done.data["seq"] == len(events) - 1
    assert "".join(e.data["content"] for e in events[1:-1]) == done.data["content"]
    assert done.data["content"].startswith("Title: Tide pools")


async def test_post_streams_generates_an_id(gateway: Gateway) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(gateway.http + "/v1/streams", json={"prompt": "hi"}) as resp,
    ):
        transcript = await read_events(resp)
    sid = transcript.events[0].data["id"]
    assert sid.startswith("s-")
    assert len(sid) == 18
    assert {e.data["id"] for e in transcript.events} == {sid}


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        ({"prompt": "x", "provider": "nope"}, 404, "unknown_provider", "nope"),
        ({"prompt": "x", "agent": "nope"}, 404, "unknown_agent", "nope"),
        ({"prompt": 5}, 400, "bad_message", "$.prompt"),
        ({"prompt": "x", "messages": [{"role": "user", "content": "y"}]}, 400, "bad_message", "exactly one"),
        ({}, 400, "bad_message", "exactly one"),
        ({"id": "no spaces allowed", "prompt": "x"}, 400, "bad_message", "$.id"),
    ],
)
async def test_problems_before_streaming_are_http_errors(
    gateway: Gateway, body: dict[str, Any], status: int, code: str, fragment: str
) -> None:
    got_status, payload = await _post(gateway, "/v1/streams", body)
    assert got_status == status
    assert payload["error"]["code"] == code
    assert fragment in payload["error"]["message"]
    assert payload["error"]["retryable"] is False


async def test_malformed_json_and_oversized_bodies(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"max_message_bytes": 2048}})
    async with aiohttp.ClientSession() as http:
        async with http.post(gw.http + "/v1/streams", data=b"{nope") as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == "bad_message"
        async with http.post(gw.http + "/v1/streams", json={"prompt": "x" * 5000}) as resp:
            assert resp.status == 413
            assert "2048" in (await resp.json())["error"]["message"]


async def test_duplicate_running_http_id_is_409(start_gateway: StartGateway) -> None:
    gw = start_gateway(providers=[ScriptedProvider(count=100, delay=0.02)])
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gw.http + "/v1/streams", json={"id": "dup", "provider": "scripted", "prompt": "x"}
        ) as first,
    ):
        await first.content.readline()
        status, payload = await _post(gw, "/v1/streams", {"id": "dup", "prompt": "y"})
        assert status == 409
        assert payload["error"]["code"] == "duplicate_stream"


async def test_server_busy_is_503(start_gateway: StartGateway) -> None:
    gw = start_gateway(
        {"streaming": {"max_concurrent_streams": 1}}, [ScriptedProvider(count=100, delay=0.02)]
    )
    async with (
        aiohttp.ClientSession() as http,
        http.post(gw.http + "/v1/streams", json={"provider": "scripted", "prompt": "x"}) as first,
    ):
        await first.content.readline()
        status, payload = await _post(gw, "/v1/streams", {"prompt": "y"})
    assert status == 503
    assert payload["error"] == {
        "code": "server_busy",
        "message": "the gateway is at its stream limit; try again shortly",
        "retryable": True,
    }


@HTTP_PROTOCOLS
async def test_delete_cancels_a_running_stream(start_gateway: StartGateway, http_protocol: str) -> None:
    upstream = ScriptedProvider(count=1000, delay=0.01)
    gw = start_gateway(providers=[upstream], uvicorn_options=http_options(http_protocol))
    async with aiohttp.ClientSession() as http:
        async with http.post(
            gw.http + "/v1/streams", json={"id": "d1", "provider": "scripted", "prompt": "x"}
        ) as resp:
            head = await read_events(resp, until={"chunk"})
            key = head.events[0].data["key"]
            async with http.delete(gw.http + "/v1/streams/d1") as by_id:  # an id alone is not enough
                assert by_id.status == 404
                assert (await by_id.json())["error"]["code"] == "unknown_stream"
            async with http.delete(gw.http + f"/v1/streams/{key}") as deleted:
                assert deleted.status == 204
            rest = await read_events(resp)
        async with http.delete(gw.http + f"/v1/streams/{key}") as again:
            assert again.status == 204  # ended: a no-op, like a late cancel
    done = rest.events[-1]
    assert done.event == "done"
    assert done.data["finish_reason"] == "cancelled"
    chunks = [e for e in head.events + rest.events if e.event == "chunk"]
    assert done.data["content"] == "".join(e.data["content"] for e in chunks)
    assert upstream.closed == 1
    assert upstream.finished == 0


async def test_client_going_away_cancels_upstream_after_the_grace_period(start_gateway: StartGateway) -> None:
    upstream = ScriptedProvider(count=1000, delay=0.01)
    gw = start_gateway({"resume": {"resume_grace_seconds": 0.4}}, [upstream])
    async with aiohttp.ClientSession() as http:
        resp = await http.post(gw.http + "/v1/streams", json={"provider": "scripted", "prompt": "x"})
        await read_events(resp, until={"chunk"})
        assert await _active(gw) == 1
        resp.close()
    await asyncio.sleep(0.2)
    assert await _active(gw) == 1, "the stream waits for a resume"
    async with asyncio.timeout(3):
        while await _active(gw):
            await asyncio.sleep(0.02)
    assert upstream.closed == 1
    assert upstream.finished == 0


@HTTP_PROTOCOLS
async def test_idle_sse_connection_gets_keepalive_comments(
    start_gateway: StartGateway, http_protocol: str
) -> None:
    gw = start_gateway(
        {"streaming": {"keepalive_seconds": 0.05}},
        [ScriptedProvider(count=2, delay=0.4)],
        uvicorn_options=http_options(http_protocol),
    )
    async with (
        aiohttp.ClientSession() as http,
        http.post(gw.http + "/v1/streams", json={"provider": "scripted", "prompt": "x"}) as resp,
    ):
        transcript = await read_events(resp)
    assert transcript.comments >= 3
    assert transcript.events[-1].event == "done"


async def test_completions_returns_one_json_document(gateway: Gateway) -> None:
    status, body = await _post(gateway, "/v1/completions", {"prompt": "Name three rivers"})
    assert status == 200
    assert set(body) == {"id", "content", "finish_reason", "usage", "metrics"}
    assert "Name three rivers" in body["content"]
    assert body["finish_reason"] == "stop"
    assert body["usage"]["total_tokens"] > 0
    assert body["metrics"]["provider"] == "rulebased"


async def test_completions_error_after_start_maps_to_http_status(start_gateway: StartGateway) -> None:
    gw = start_gateway(providers=[ScriptedProvider(count=5, fail_after=2)])
    async with (
        aiohttp.ClientSession() as http,
        http.post(gw.http + "/v1/completions", json={"provider": "scripted", "prompt": "x"}) as resp,
    ):
        assert resp.status == 429
        assert resp.headers["retry-after"] == "2"
        body = await resp.json()
    assert body["error"] == {
        "code": "upstream_rate_limited",
        "message": "slow down",
        "retryable": True,
        "retry_after_s": 2.0,
    }


async def test_completions_honours_max_tokens(gateway: Gateway) -> None:
    status, body = await _post(gateway, "/v1/completions", {"brief": BRIEF, "options": {"max_tokens": 20}})
    assert status == 200
    assert body["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] <= 20


async def test_original_script_route_event_format(gateway: Gateway) -> None:
    body = {
        "brief": {
            "topic": "Tide pools",
            "audience": "kids",
            "goal": "spark curiosity",
            "tone": "playful",
            "language": "en",
        },
        "planSpec": {
            "targetDurationSeconds": 30,
            "pacing": "fast",
            "density": "dense",
            "style": "documentary",
        },
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(gateway.http + "/api/scripts/generate-stream", json=body) as resp,
    ):
        assert resp.status == 200
        transcript = await read_events(resp)
    events = transcript.events
    chunks, done = events[:-1], events[-1]
    assert {e.event for e in chunks} == {"chunk"}
    assert done.event == "done"
    assert done.data["finishReason"] == "stop"
    metadata = done.data["metadata"]
    assert metadata["provider"] == "rulebased"
    assert (
        metadata["usage"]["totalTokens"]
        == metadata["usage"]["promptTokens"] + metadata["usage"]["completionTokens"]
    )
    assert metadata["estimatedCostUsd"] == 0
    accumulated = ""
    for index, chunk in enumerate(chunks):
        data = chunk.data
        assert set(data) == {"provider", "content", "accumulated", "tokenIndex", "isFinal", "metadata"}
        accumulated += data["content"]
        assert data["accumulated"] == accumulated
        assert data["tokenIndex"] == index
        assert data["isFinal"] is (index == len(chunks) - 1)
        assert data["provider"] == "rulebased"
    final = chunks[-1].data
    assert final["content"] == ""
    assert "Pacing: fast (180 wpm)" in final["accumulated"]
    assert "documentary" in final["accumulated"]


async def test_original_script_route_validates_camel_case_body(gateway: Gateway) -> None:
    status, payload = await _post(
        gateway,
        "/api/scripts/generate-stream",
        {"brief": {"topic": "x"}, "planSpec": {"targetDurationSeconds": 1}},
    )
    assert status == 400
    assert "$.planSpec.targetDurationSeconds" in payload["error"]["message"]
    status, payload = await _post(
        gateway, "/api/scripts/generate-stream", {"brief": {"topic": "x"}, "providerName": "nope"}
    )
    assert status == 404
    assert payload["error"]["code"] == "unknown_provider"


async def test_original_agent_chat_route(gateway: Gateway) -> None:
    body = {
        "prompt": "What should I film first?",
        "conversationHistory": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
        ],
        "additionalContext": {"project": "Tide pools"},
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(gateway.http + "/api/agents/assistant/chat/stream", json=body) as resp,
    ):
        transcript = await read_events(resp)
    tokens, done = transcript.events[:-1], transcript.events[-1]
    assert tokens
    assert {e.event for e in tokens} == {"token"}
    assert all(set(e.data) == {"content"} for e in tokens)
    assert "What should I film first?" in "".join(e.data["content"] for e in tokens)
    assert done.event == "done"
    assert done.data["finishReason"] == "stop"
    assert done.data["totalTokens"] > 0


async def test_original_agent_chat_route_errors(start_gateway: StartGateway) -> None:
    gw = start_gateway(
        {"agents": {"flaky": {"provider": "scripted"}}}, [ScriptedProvider(count=5, fail_after=1)]
    )
    status, payload = await _post(gw, "/api/agents/nope/chat/stream", {"prompt": "x"})
    assert status == 404
    assert payload["error"]["code"] == "unknown_agent"
    status, payload = await _post(gw, "/api/agents/flaky/chat/stream", {"conversationHistory": []})
    assert status == 400
    assert "prompt" in payload["error"]["message"]
    status, payload = await _post(gw, "/api/agents/flaky/chat/stream", {"prompt": "   "})
    assert status == 400
    assert payload["error"]["message"] == "`prompt` is empty - at `$.prompt`"
    async with (
        aiohttp.ClientSession() as http,
        http.post(gw.http + "/api/agents/flaky/chat/stream", json={"prompt": "x"}) as resp,
    ):
        transcript = await read_events(resp)
    assert [e.event for e in transcript.events] == ["token", "error"]
    assert transcript.events[-1].data == {"message": "slow down", "code": "upstream_rate_limited"}


async def test_streaming_switched_off_over_sse(start_gateway: StartGateway) -> None:
    gw = start_gateway({"streaming": {"enabled": False}})
    async with (
        aiohttp.ClientSession() as http,
        http.post(gw.http + "/v1/streams", json={"prompt": "hi"}) as resp,
    ):
        transcript = await read_events(resp)
    assert [e.event for e in transcript.events] == ["start", "chunk", "done"]


async def test_unknown_route_is_a_json_404(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http, http.get(gateway.http + "/v2/nothing") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"


async def test_auth_tokens_guard_http_and_websocket(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"auth_tokens": ["sekrit"]}})
    async with aiohttp.ClientSession() as http:
        async with http.post(gw.http + "/v1/completions", json={"prompt": "x"}) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "unauthorized"
        headers = {"Authorization": "Bearer sekrit"}
        async with http.post(gw.http + "/v1/completions", json={"prompt": "x"}, headers=headers) as resp:
            assert resp.status == 200
        async with http.post(gw.http + "/v1/completions?token=sekrit", json={"prompt": "x"}) as resp:
            assert resp.status == 200
        for open_path in ("/healthz", "/", "/clients/js/src/index.js"):
            async with http.get(gw.http + open_path) as resp:
                assert resp.status == 200, open_path
        async with http.ws_connect(gw.ws) as ws:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.CLOSE
            assert msg.data == 1008
        async with http.ws_connect(gw.ws + "?token=sekrit") as ws:
            ready = await ws.receive_json()
            assert ready["type"] == "ready"


async def test_origin_allowlist(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"allowed_origins": ["https://app.example"]}})
    async with aiohttp.ClientSession() as http:
        bad = {"Origin": "https://evil.example"}
        async with http.post(gw.http + "/v1/completions", json={"prompt": "x"}, headers=bad) as resp:
            assert resp.status == 403
        async with http.ws_connect(gw.ws, headers=bad) as ws:
            assert (await ws.receive()).data == 1008
        good = {"Origin": "https://app.example"}
        async with http.post(gw.http + "/v1/completions", json={"prompt": "x"}, headers=good) as resp:
            assert resp.status == 200


async def test_root_serves_the_live_page(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http, http.get(gateway.http + "/") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        page = await resp.text()
    assert "/clients/js/src/index.js" in page or "dashboard.js" in page


async def test_only_the_js_client_sources_are_served(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(gateway.http + "/clients/js/src/index.js") as resp:
            assert resp.status == 200
            assert "TokenwireClient" in await resp.text()
        for private in (
            "/clients/js/package.json",
            "/clients/js/test/gateway.js",
            "/clients/js/node_modules/ws/package.json",
        ):
            async with http.get(gateway.http + private) as resp:
                assert resp.status == 404, private
