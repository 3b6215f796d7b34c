"""``GET /metrics`` against a real uvicorn server, parsed with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

import server.edge.access
import server.transports.ws
from protocol.errors import ErrorCode
from tests.conftest import Gateway, StartGateway
from tests.support.providers import ScriptedProvider
from tests.support.sseclient import read_events
from tests.support.upstream import FakeUpstream, Reply
from tests.support.wsclient import collect, recv, send, start, stream_events

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

FAMILIES = {
    "tokenwire_active_connections",
    "tokenwire_active_streams",
    "tokenwire_streams",
    "tokenwire_errors",
    "tokenwire_ttft_seconds",
    "tokenwire_stream_duration_seconds",
    "tokenwire_tokens",
}


async def scrape_text(gw: Gateway, **kwargs: Any) -> str:
    async with aiohttp.ClientSession() as http, http.get(gw.http + "/metrics", **kwargs) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        return await resp.text()


async def scrape(gw: Gateway) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(await scrape_text(gw)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def until(condition: Callable[[], bool], timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def settled(gw: Gateway, name: str, expected: float, **labels: str) -> Samples:
    """Scrape until a sample has the expected value (a closed socket is noticed a little later)."""
    async with asyncio.timeout(5):
        while True:
            samples = await scrape(gw)
            if value(samples, name, **labels) == expected:
                return samples
            await asyncio.sleep(0.02)


async def idle(gw: Gateway) -> None:
    """Every stream has ended (and so was recorded: the hub records as it lets a stream go)."""
    await until(lambda: not gw.hub.running)


async def test_fresh_gateway_exposes_every_family_at_zero(gateway: Gateway) -> None:
    text = await scrape_text(gateway)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) >= FAMILIES
    assert families["tokenwire_streams"].type == "counter"
    assert families["tokenwire_ttft_seconds"].type == "histogram"
    samples = await scrape(gateway)
    assert value(samples, "tokenwire_active_streams") == 0
    assert value(samples, "tokenwire_active_connections", transport="ws") == 0
    assert value(samples, "tokenwire_active_connections", transport="sse") == 0
    for outcome in ("done", "cancelled", "error"):
        assert value(samples, "tokenwire_streams_total", provider="openai", outcome=outcome) == 0
    for code in ErrorCode:
        assert value(samples, "tokenwire_errors_total", code=code.value) == 0
    assert value(samples, "tokenwire_tokens_total", provider="rulebased", kind="prompt") == 0
    assert value(samples, "tokenwire_ttft_seconds_count", provider="rulebased") == 0


async def test_done_cancelled_and_failed_streams_are_counted(start_gateway: StartGateway) -> None:
    gw = start_gateway(
        providers=[
            ScriptedProvider("ok", count=4),
            ScriptedProvider("slow", count=1000, delay=0.01),
            ScriptedProvider("failing", count=5, fail_after=2),
        ]
    )
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "done", provider="ok", prompt="hi")
        await start(ws, "failed", provider="failing", prompt="hi")
        per_id, _ = await collect(ws, {"done", "failed"})
        assert per_id["done"][-1]["type"] == "done"
        assert per_id["failed"][-1]["code"] == "upstream_rate_limited"

        await start(ws, "slow", provider="slow", prompt="hi")
        assert (await recv(ws))["type"] == "start"
        assert (await recv(ws))["type"] == "chunk"
        running = await scrape(gw)
        assert value(running, "tokenwire_active_streams") == 1
        assert value(running, "tokenwire_active_connections", transport="ws") == 1
        await send(ws, {"type": "cancel", "id": "slow"})
        per_id, _ = await collect(ws, {"slow"})
        assert per_id["slow"][-1]["finish_reason"] == "cancelled"
    await idle(gw)
    samples = await settled(gw, "tokenwire_active_connections", 0, transport="ws")

    assert value(samples, "tokenwire_active_streams") == 0
    assert value(samples, "tokenwire_active_connections", transport="ws") == 0
    streams = {
        (p, o): value(samples, "tokenwire_streams_total", provider=p, outcome=o)
        for p in ("ok", "slow", "failing")
        for o in ("done", "cancelled", "error")
    }
    assert {k: v for k, v in streams.items() if v} == {
        ("ok", "done"): 1,
        ("slow", "cancelled"): 1,
        ("failing", "error"): 1,
    }
    assert value(samples, "tokenwire_errors_total", code="upstream_rate_limited") == 1
    assert sum(v for (name, _), v in samples.items() if name == "tokenwire_errors_total") == 1
    # ScriptedProvider reports 3 prompt tokens and one completion token per chunk.
    assert value(samples, "tokenwire_tokens_total", provider="ok", kind="prompt") == 3
    assert value(samples, "tokenwire_tokens_total", provider="ok", kind="completion") == 4
    assert value(samples, "tokenwire_tokens_total", provider="failing", kind="completion") == 0
    for provider in ("ok", "slow", "failing"):
        assert value(samples, "tokenwire_stream_duration_seconds_count", provider=provider) == 1
    assert value(samples, "tokenwire_ttft_seconds_count", provider="ok") == 1
    assert value(samples, "tokenwire_ttft_seconds_count", provider="slow") == 1
    assert value(samples, "tokenwire_ttft_seconds_count", provider="failing") == 0  # errors: no ttft
    assert 0 < value(samples, "tokenwire_ttft_seconds_sum", provider="ok") < 5
    slow_seconds = value(samples, "tokenwire_stream_duration_seconds_sum", provider="slow")
    assert slow_seconds >= value(samples, "tokenwire_ttft_seconds_sum", provider="slow")


async def test_timeout_is_an_error_outcome_with_a_duration(start_gateway: StartGateway) -> None:
    gw = start_gateway(
        {"streaming": {"first_token_timeout_seconds": 0.2}},
        [ScriptedProvider("sleepy", first_delay=30)],
    )
    events = await stream_events(gw.ws, provider="sleepy", prompt="hi")
    assert events[-1]["code"] == "timeout"
    await idle(gw)
    samples = await scrape(gw)
    assert value(samples, "tokenwire_streams_total", provider="sleepy", outcome="error") == 1
    assert value(samples, "tokenwire_errors_total", code="timeout") == 1
    assert value(samples, "tokenwire_stream_duration_seconds_count", provider="sleepy") == 1
    # The deadline runs on the loop's clock, which may have millisecond resolution.
    assert 0.15 <= value(samples, "tokenwire_stream_duration_seconds_sum", provider="sleepy") < 5


async def test_open_event_streams_are_sse_connections(start_gateway: StartGateway) -> None:
    gw = start_gateway(providers=[ScriptedProvider("slow", count=1000, delay=0.01)])
    async with aiohttp.ClientSession() as http:
        resp = await http.post(gw.http + "/v1/streams", json={"provider": "slow", "prompt": "x"})
        await read_events(resp, until={"chunk"})
        samples = await scrape(gw)
        assert value(samples, "tokenwire_active_connections", transport="sse") == 1
        assert value(samples, "tokenwire_active_connections", transport="ws") == 0
        assert value(samples, "tokenwire_active_streams") == 1
        resp.close()
    await idle(gw)
    samples = await settled(gw, "tokenwire_active_connections", 0, transport="sse")
    assert value(samples, "tokenwire_streams_total", provider="slow", outcome="cancelled") == 1


async def test_completions_are_not_event_streams_and_count_their_outcome(gateway: Gateway) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(gateway.http + "/v1/completions", json={"prompt": "hello"}) as resp,
    ):
        assert resp.status == 200
    await idle(gateway)
    samples = await scrape(gateway)
    assert value(samples, "tokenwire_streams_total", provider="rulebased", outcome="done") == 1
    assert value(samples, "tokenwire_active_connections", transport="sse") == 0
    assert value(samples, "tokenwire_tokens_total", provider="rulebased", kind="completion") > 0


async def test_http_refusals_are_counted_by_code(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"max_message_bytes": 2048}})
    async with aiohttp.ClientSession() as http:
        requests = [
            http.post(gw.http + "/v1/streams", json={"prompt": "x", "provider": "nope"}),
            http.post(gw.http + "/v1/streams", json={"prompt": "x", "agent": "nope"}),
            http.post(gw.http + "/v1/streams", data=b"{nope"),
            http.post(gw.http + "/v1/streams", json={"prompt": "x" * 5000}),
            http.post(gw.http + "/v1/completions", json={}),
            http.delete(gw.http + "/v1/streams/missing"),
            http.post(gw.http + "/api/agents/a/chat/stream", json={"prompt": " "}),
        ]
        for request in requests:
            async with request as resp:
                assert resp.status >= 400
    samples = await scrape(gw)
    counted = {
        dict(labels)["code"]: v
        for (name, labels), v in samples.items()
        if name == "tokenwire_errors_total" and v
    }
    assert counted == {"unknown_provider": 1, "unknown_agent": 1, "bad_message": 4, "unknown_stream": 1}


async def test_access_refusals_are_counted_as_unauthorized(start_gateway: StartGateway) -> None:
    token = "tw-test-token"
    gw = start_gateway({"server": {"auth_tokens": [token], "allowed_origins": ["https://app.example"]}})
    async with aiohttp.ClientSession() as http:
        async with http.post(gw.http + "/v1/streams", json={"prompt": "x"}) as no_token:
            assert no_token.status == 401
        async with http.post(gw.http + "/v1/chat/completions", json={}) as openai_route:
            assert openai_route.status == 401
        evil = {"origin": "https://evil.example", "authorization": f"Bearer {token}"}
        async with http.get(gw.http + "/v1/models", headers=evil) as bad_origin:
            assert bad_origin.status == 403
        async with http.ws_connect(gw.ws) as ws:  # no token: accepted, then closed 1008
            await ws.receive()
            assert ws.close_code == 1008
    text = await scrape_text(gw, headers={"authorization": f"Bearer {token}"})
    counted = {
        s.labels["code"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "tokenwire_errors_total" and s.value
    }
    assert counted == {"unauthorized": 4}


async def test_hub_refused_counts_an_error(gateway: Gateway) -> None:
    gateway.hub.refused(ErrorCode.TOO_MANY_STREAMS)
    gateway.hub.refused(ErrorCode.TOO_MANY_STREAMS)
    samples = await scrape(gateway)
    assert value(samples, "tokenwire_errors_total", code="too_many_streams") == 2


async def test_websocket_refusals_are_counted_by_code(start_gateway: StartGateway) -> None:
    gw = start_gateway(
        {"streaming": {"max_streams_per_connection": 1}},
        [ScriptedProvider("slow", count=1000, delay=0.01)],
    )
    async with connect(gw.ws) as ws:
        await recv(ws)
        await ws.send("{not json")
        await send(ws, {"type": "cancel", "id": "ghost"})
        await start(ws, "a", provider="nope", prompt="x")
        await start(ws, "b", provider="slow", prompt="x")
        await start(ws, "c", provider="slow", prompt="x")
        refusals: list[str] = []
        while len(refusals) < 4:
            message = await recv(ws)
            if message["type"] == "error":
                refusals.append(message["code"])
        await send(ws, {"type": "cancel", "id": "b"})
        await collect(ws, {"b"})
    await idle(gw)
    samples = await scrape(gw)
    counted = {
        dict(labels)["code"]: v
        for (name, labels), v in samples.items()
        if name == "tokenwire_errors_total" and v
    }
    assert counted == {
        "bad_message": 1,
        "unknown_stream": 1,
        "unknown_provider": 1,
        "too_many_streams": 1,
    }


async def test_each_app_has_its_own_registry(start_gateway: StartGateway) -> None:
    first, second = start_gateway(), start_gateway()
    assert first.hub.metrics.registry is not second.hub.metrics.registry
    await stream_events(first.ws, prompt="hi")
    await idle(first)
    one, other = await scrape(first), await scrape(second)
    assert value(one, "tokenwire_streams_total", provider="rulebased", outcome="done") == 1
    assert value(other, "tokenwire_streams_total", provider="rulebased", outcome="done") == 0
    default = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    assert "tokenwire_" not in default


@pytest.mark.skipif(
    not "/metrics".startswith(server.edge.access.GUARDED_PREFIXES),
    reason="server/edge/access.py does not guard /metrics yet",
)
async def test_metrics_need_a_token_when_tokens_are_configured(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"auth_tokens": ["t0ken"]}})
    async with aiohttp.ClientSession() as http:
        async with http.get(gw.http + "/metrics") as resp:
            assert resp.status == 401
        async with http.get(gw.http + "/metrics", headers={"authorization": "Bearer nope"}) as resp:
            assert resp.status == 401
    assert "tokenwire_streams_total" in await scrape_text(gw, headers={"authorization": "Bearer t0ken"})
    assert "tokenwire_streams_total" in await scrape_text(gw, params={"token": "t0ken"})


async def test_metrics_are_open_without_tokens(gateway: Gateway) -> None:
    assert "tokenwire_active_streams" in await scrape_text(gateway)


CANARY = "sk-canary-XXXX"


async def test_canary_key_never_leaks(
    start_gateway: StartGateway, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tokenwire")
    caplog.set_level(logging.DEBUG, logger="uvicorn")
    gw = start_gateway({"providers": {"openai": {"api_key": CANARY, "base_url": upstream.url + "/v1"}}})
    body = json.dumps(
        {
            "error": {
                "message": f"Incorrect API key provided: {CANARY}. You can find your API key at ...",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        }
    ).encode()
    unauthorized = Reply(status=401, headers={"content-type": "application/json"}, pieces=[body])
    upstream.reply(unauthorized, unauthorized, unauthorized)

    seen: list[str] = []
    async with connect(gw.ws) as ws:
        seen.append(json.dumps(await recv(ws)))
        await start(ws, "a", provider="openai", prompt="hi")
        per_id, arrival = await collect(ws, {"a"})
    seen += [json.dumps(m) for m in arrival]
    assert per_id["a"][-1]["code"] == "upstream_auth"
    async with aiohttp.ClientSession() as http:
        async with http.post(gw.http + "/v1/streams", json={"provider": "openai", "prompt": "hi"}) as resp:
            seen.append(await resp.text())
        async with http.post(
            gw.http + "/v1/completions", json={"provider": "openai", "prompt": "hi"}
        ) as resp:
            assert resp.status == 502
            seen.append(await resp.text())
    await idle(gw)
    assert all(r.headers.get("Authorization") == f"Bearer {CANARY}" for r in upstream.requests)
    assert len(upstream.requests) == 3

    metrics = await scrape_text(gw)
    samples = await scrape(gw)
    assert value(samples, "tokenwire_errors_total", code="upstream_auth") == 3
    assert value(samples, "tokenwire_streams_total", provider="openai", outcome="error") == 3
    assert CANARY not in metrics
    assert all(CANARY not in message for message in seen), seen
    stream_lines = [
        r for r in caplog.records if r.name == "tokenwire.stream" and r.getMessage().startswith("{")
    ]
    assert len(stream_lines) == 3
    for record in caplog.records:
        assert CANARY not in record.getMessage()
        assert CANARY not in (record.exc_text or "")
