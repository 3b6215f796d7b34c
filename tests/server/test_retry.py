"""Retry and failover before the first token: the client is told, and never after text was sent."""

from __future__ import annotations

import aiohttp

from tests.conftest import StartGateway
from tests.support.openai_bytes import openai_chunk
from tests.support.providers import ScriptedProvider
from tests.support.sseclient import read_events
from tests.support.upstream import FakeUpstream, Reply
from tests.support.wsclient import assert_gap_free, chunk_text, stream_events

KEY = "sk-test-retry-0123456789"


GOOD = Reply(
    pieces=[openai_chunk("Hel"), openai_chunk("lo"), openai_chunk(None, "stop"), b"data: [DONE]\n\n"]
)
OVERLOADED = Reply(
    status=503,
    headers={"content-type": "application/json"},
    pieces=[b'{"error":{"message":"overloaded","type":"server_error","code":null}}'],
)


def _openai(upstream: FakeUpstream) -> dict[str, str]:
    return {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": upstream.url + "/v1"}


async def test_a_retryable_failure_before_text_is_retried_and_announced(
    start_gateway: StartGateway, upstream: FakeUpstream
) -> None:
    gw = start_gateway({"streaming": {"retry_backoff_seconds": 0.05}}, environ=_openai(upstream))
    upstream.reply(OVERLOADED, OVERLOADED, GOOD)
    events = await stream_events(gw.ws, provider="openai", prompt="hi")
    assert [e["type"] for e in events[:3]] == ["start", "notice", "notice"]
    assert {e["type"] for e in events[3:-1]} == {"chunk"}
    assert chunk_text(events) == "Hello"
    first, second = events[1], events[2]
    assert first["code"] == second["code"] == "retrying"
    assert (first["attempt"], second["attempt"]) == (2, 3)
    assert first["reason"] == "upstream_unavailable"
    assert (first["delay_s"], second["delay_s"]) == (0.05, 0.1)  # exponential backoff
    assert "seq" not in first
    assert_gap_free([e for e in events if e["type"] != "notice"])
    assert events[-1]["content"] == "Hello"
    assert len(upstream.requests) == 3


async def test_retries_are_bounded(start_gateway: StartGateway, upstream: FakeUpstream) -> None:
    gw = start_gateway(
        {"streaming": {"retry_attempts": 1, "retry_backoff_seconds": 0.01}}, environ=_openai(upstream)
    )
    upstream.reply(OVERLOADED, OVERLOADED, GOOD)
    events = await stream_events(gw.ws, provider="openai", prompt="hi")
    assert [e["type"] for e in events] == ["start", "notice", "error"]
    assert events[-1]["code"] == "upstream_unavailable"
    assert events[-1]["status"] == 503
    assert len(upstream.requests) == 2


async def test_a_final_failure_is_not_retried(start_gateway: StartGateway, upstream: FakeUpstream) -> None:
    gw = start_gateway({}, environ=_openai(upstream))
    body = b'{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}'
    upstream.reply(Reply(status=401, headers={"content-type": "application/json"}, pieces=[body]), GOOD)
    events = await stream_events(gw.ws, provider="openai", prompt="hi")
    assert [e["type"] for e in events] == ["start", "error"]
    assert events[-1]["code"] == "upstream_auth"
    assert len(upstream.requests) == 1


async def test_no_retry_once_text_was_sent(start_gateway: StartGateway, upstream: FakeUpstream) -> None:
    gw = start_gateway({}, environ=_openai(upstream))
    upstream.reply(Reply(pieces=[openai_chunk("Hel")], cut=True), GOOD)
    events = await stream_events(gw.ws, provider="openai", prompt="hi")
    assert [e["type"] for e in events] == ["start", "chunk", "error"]
    assert chunk_text(events) == "Hel"
    assert events[-1]["code"] == "upstream_protocol"
    assert len(upstream.requests) == 1


async def test_a_long_retry_after_is_not_waited_for(
    start_gateway: StartGateway, upstream: FakeUpstream
) -> None:
    gw = start_gateway({"streaming": {"retry_max_wait_seconds": 1}}, environ=_openai(upstream))
    body = b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'
    limited = Reply(
        status=429, headers={"content-type": "application/json", "retry-after": "30"}, pieces=[body]
    )
    upstream.reply(limited, GOOD)
    events = await stream_events(gw.ws, provider="openai", prompt="hi")
    assert [e["type"] for e in events] == ["start", "error"]
    assert events[-1]["retry_after_s"] == 30.0
    assert len(upstream.requests) == 1


async def test_failover_to_a_fallback_provider(start_gateway: StartGateway) -> None:
    flaky = ScriptedProvider("flaky", fail_after=0)  # 429 with retry-after 2 s
    steady = ScriptedProvider("steady", text="ok ", count=3)
    gw = start_gateway(
        {
            "streaming": {"retry_max_wait_seconds": 1},
            "providers": {"flaky": {"fallbacks": ["steady/steady-large"]}},
        },
        [flaky, steady],
    )
    events = await stream_events(gw.ws, provider="flaky", prompt="hi")
    assert [e["type"] for e in events[:2]] == ["start", "notice"]
    assert {e["type"] for e in events[2:-1]} == {"chunk"}
    notice = events[1]
    assert notice["code"] == "failover"
    assert (notice["provider"], notice["model"]) == ("steady", "steady-large")
    assert notice["reason"] == "upstream_rate_limited"
    assert "delay_s" not in notice
    assert events[0]["provider"] == "flaky"
    done = events[-1]
    assert done["content"] == "ok ok ok "
    assert (done["metrics"]["provider"], done["metrics"]["model"]) == ("steady", "steady-large")
    assert flaky.closed == 1


async def test_failover_is_announced_over_sse(start_gateway: StartGateway) -> None:
    flaky = ScriptedProvider("flaky", fail_after=0)
    steady = ScriptedProvider("steady", text="ok", count=1)
    gw = start_gateway(
        {"streaming": {"retry_attempts": 0}, "providers": {"flaky": {"fallbacks": ["steady"]}}},
        [flaky, steady],
    )
    async with (
        aiohttp.ClientSession() as http,
        http.post(gw.http + "/v1/streams", json={"provider": "flaky", "prompt": "hi"}) as resp,
    ):
        transcript = await read_events(resp)
    assert [e.event for e in transcript.events] == ["start", "notice", "chunk", "done"]
    notice = transcript.events[1]
    assert notice.id is None  # no seq, so no SSE id: Last-Event-ID stays on the stream's events
    assert notice.data["provider"] == "steady"
    assert transcript.events[-1].data["metrics"]["provider"] == "steady"
