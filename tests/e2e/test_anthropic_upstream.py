"""Anthropic end to end: gateway -> fake upstream speaking the Messages API's exact bytes."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.conftest import Gateway, StartGateway
from tests.support import anthropic_bytes
from tests.support.sseclient import read_events
from tests.support.upstream import FakeUpstream, Reply, cancel_reaches_upstream
from tests.support.wsclient import assert_gap_free, assert_seq_covers, chunk_text, joined, stream_events

KEY = "sk-ant-api03-secret-0123456789"


def _event(name: str, data: str) -> bytes:
    return f"event: {name}\ndata: {data}\n\n".encode()


def _text(value: str) -> bytes:
    delta = json.dumps({"type": "text_delta", "text": value}, ensure_ascii=False)
    return _event("content_block_delta", f'{{"type":"content_block_delta","index":0,"delta":{delta}}}')


MESSAGE_START = _event(
    "message_start",
    '{"type":"message_start","message":{"id":"msg_01Hx","type":"message","role":"assistant",'
    '"model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,'
    '"usage":{"input_tokens":21,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,'
    '"output_tokens":1,"service_tier":"standard"}}}',
)
BLOCK_START = _event(
    "content_block_start",
    '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
)
PING = _event("ping", '{"type": "ping"}')
BLOCK_STOP = _event("content_block_stop", '{"type":"content_block_stop","index":0}')
MESSAGE_DELTA = _event(
    "message_delta",
    '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    '"usage":{"output_tokens":1000000}}',
)
MESSAGE_STOP = _event("message_stop", '{"type":"message_stop"}')
STREAM = [
    MESSAGE_START,
    BLOCK_START,
    PING,
    _text("Hel"),
    _text("lo, "),
    _text("wörld 🎉"),
    BLOCK_STOP,
    MESSAGE_DELTA,
    MESSAGE_STOP,
]
OVERLOADED = _event(
    "error", '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
)


@pytest.fixture
def anthropic_gateway(start_gateway: StartGateway, upstream: FakeUpstream) -> Gateway:
    # Retries are off: these tests check how each upstream failure is reported (see test_retry.py).
    return start_gateway(
        {"streaming": {"retry_attempts": 0}},
        environ={"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": upstream.url},
    )


async def test_stream_over_websocket(anthropic_gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=STREAM, pause=0.01))
    events = await stream_events(
        anthropic_gateway.ws,
        provider="anthropic",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        options={"max_tokens": 5, "temperature": 0.5, "stop": "END"},
    )
    assert_gap_free(events)
    done = events[-1]
    assert done["type"] == "done"
    assert chunk_text(events) == done["content"] == "Hello, wörld 🎉"
    assert done["finish_reason"] == "stop"
    assert done["usage"] == {
        "prompt_tokens": 2121,
        "completion_tokens": 1000000,
        "total_tokens": 1002121,
        "estimated": False,
        "cached_tokens": 2000,  # the cache reads, part of prompt_tokens
    }
    metrics = done["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["provider"] == "anthropic"
    assert metrics["model"] == "claude-sonnet-4-5"
    assert metrics["estimated_cost_usd"] == pytest.approx(2121 * 3.00 / 1e6 + 15.00)
    (request,) = upstream.requests
    assert request.method == "POST"
    assert request.path == "/v1/messages"
    assert request.query == {}
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers
    assert request.json() == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 5,
        "stream": True,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.5,
        "stop_sequences": ["END"],
    }


async def test_stream_over_sse(anthropic_gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=STREAM))
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            anthropic_gateway.http + "/v1/streams", json={"provider": "anthropic", "prompt": "Hi"}
        ) as resp,
    ):
        transcript = await read_events(resp)
    names = [e.event for e in transcript.events]
    assert names[0] == "start"
    assert names[-1] == "done"
    assert set(names[1:-1]) == {"chunk"}
    done = transcript.events[-1].data
    assert done["content"] == "Hello, wörld 🎉"
    assert done["usage"]["prompt_tokens"] == 2121
    assert done["usage"]["estimated"] is False
    assert upstream.requests[0].json()["messages"] == [{"role": "user", "content": "Hi"}]


async def test_error_status_before_the_stream_ends_the_accepted_stream(
    anthropic_gateway: Gateway, upstream: FakeUpstream
) -> None:
    body = (
        b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key '
        + KEY.encode()
        + b'"},"request_id":"req_011Abc"}'
    )
    upstream.reply(Reply(status=401, headers={"content-type": "application/json"}, pieces=[body]))
    events = await stream_events(anthropic_gateway.ws, provider="anthropic", prompt="hi")
    assert [e["type"] for e in events] == ["start", "error"]
    error = events[-1]
    assert error["seq"] == 1
    assert error["code"] == "upstream_auth"
    assert error["status"] == 401
    assert error["retryable"] is False
    assert error["provider"] == "anthropic"
    assert KEY not in str(error["message"])
    assert "invalid x-api-key" in str(error["message"])


@pytest.mark.parametrize(
    ("status", "error_type", "headers", "code", "retry_after"),
    [
        (529, "overloaded_error", {}, "upstream_unavailable", None),
        (429, "rate_limit_error", {"retry-after": "3"}, "upstream_rate_limited", 3.0),
    ],
)
async def test_retryable_statuses(
    anthropic_gateway: Gateway,
    upstream: FakeUpstream,
    status: int,
    error_type: str,
    headers: dict[str, str],
    code: str,
    retry_after: float | None,
) -> None:
    body = json.dumps(
        {"type": "error", "error": {"type": error_type, "message": "Overloaded"}, "request_id": "r"}
    )
    upstream.reply(
        Reply(status=status, headers={"content-type": "application/json", **headers}, pieces=[body.encode()])
    )
    error = (await stream_events(anthropic_gateway.ws, provider="anthropic", prompt="hi"))[-1]
    assert error["type"] == "error"
    assert error["code"] == code
    assert error["status"] == status
    assert error["retryable"] is True
    assert error.get("retry_after_s") == retry_after


async def test_mid_stream_error(anthropic_gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=[MESSAGE_START, BLOCK_START, _text("Hel"), OVERLOADED]))
    events = await stream_events(anthropic_gateway.ws, provider="anthropic", prompt="hi")
    assert_gap_free(events)
    assert chunk_text(events) == "Hel"
    error = events[-1]
    assert error["type"] == "error"
    assert error["code"] == "upstream_unavailable"
    assert error["status"] == 529
    assert error["retryable"] is True
    assert "reported an error mid-stream: Overloaded" in str(error["message"])


@pytest.mark.parametrize("cut", [True, False])
async def test_truncated_stream_is_upstream_protocol(
    anthropic_gateway: Gateway, upstream: FakeUpstream, cut: bool
) -> None:
    upstream.reply(Reply(pieces=[MESSAGE_START, BLOCK_START, _text("Hel"), _text("lo"), BLOCK_STOP], cut=cut))
    events = await stream_events(anthropic_gateway.ws, provider="anthropic", prompt="hi")
    assert chunk_text(events) == "Hello"
    assert events[-1]["type"] == "error"
    assert events[-1]["code"] == "upstream_protocol"
    assert events[-1]["retryable"] is True


async def test_cancel_closes_the_upstream_connection(
    anthropic_gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.reply(Reply(pieces=[MESSAGE_START, BLOCK_START, _text("Hel")], hang=True))
    await cancel_reaches_upstream(anthropic_gateway.ws, upstream, "anthropic", "Hel")


async def test_streaming_switched_off_uses_the_non_streaming_call(
    start_gateway: StartGateway, upstream: FakeUpstream
) -> None:
    gw = start_gateway(
        {"streaming": {"enabled": False}},
        environ={"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": upstream.url},
    )
    body = (
        b'{"id":"msg_01Hx","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",'
        b'"content":[{"type":"text","text":"Whole "},{"type":"text","text":"answer"}],"stop_reason":"max_tokens",'
        b'"stop_sequence":null,"usage":{"input_tokens":4,"cache_creation_input_tokens":0,'
        b'"cache_read_input_tokens":0,"output_tokens":2}}'
    )
    upstream.reply(Reply(headers={"content-type": "application/json"}, pieces=[body]))
    events = await stream_events(gw.ws, provider="anthropic", prompt="hi")
    assert [e["type"] for e in events] == ["start", "chunk", "done"]
    done = events[-1]
    assert done["content"] == "Whole answer"
    assert done["finish_reason"] == "length"
    assert done["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 2,
        "total_tokens": 6,
        "estimated": False,
        "cached_tokens": 0,
    }
    (request,) = upstream.requests
    assert request.path == "/v1/messages"
    assert "stream" not in request.json()
    assert request.json()["max_tokens"] == 4096


# ---- typed parts: thinking, tool calls and the provider state ---------------------------------

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = [{"name": "get_weather", "description": "Current weather", "parameters": WEATHER}]
THOUGHT = {"type": "thinking", "thinking": "Need Oslo weather.", "signature": "EqQBCgIYAhIM+sig=="}
THINK_THEN_CALL = [
    anthropic_bytes.message_start(input_tokens=40, cache_read=500),
    anthropic_bytes.thinking_start(0),
    anthropic_bytes.PING,
    anthropic_bytes.thinking("Need Oslo ", 0),
    anthropic_bytes.thinking("weather.", 0),
    anthropic_bytes.signature(THOUGHT["signature"], 0),
    anthropic_bytes.block_stop(0),
    anthropic_bytes.tool_use_start(1, "toolu_01Zq", "get_weather"),
    anthropic_bytes.input_json(1, ""),
    anthropic_bytes.input_json(1, '{"city": '),
    anthropic_bytes.input_json(1, '"Oslo"}'),
    anthropic_bytes.block_stop(1),
    anthropic_bytes.message_delta("tool_use", '{"output_tokens":70}'),
    anthropic_bytes.MESSAGE_STOP,
]
QUESTION = {"role": "user", "content": "Weather in Oslo?"}


async def test_thinking_and_a_tool_call_then_the_next_turn_sends_the_signed_thinking_back(
    anthropic_gateway: Gateway, upstream: FakeUpstream
) -> None:
    answer = [
        anthropic_bytes.message_start(),
        anthropic_bytes.block_start(0),
        anthropic_bytes.text("4 °C in Oslo."),
        anthropic_bytes.block_stop(0),
        anthropic_bytes.message_delta(),
        anthropic_bytes.MESSAGE_STOP,
    ]
    upstream.reply(Reply(pieces=THINK_THEN_CALL, pause=0.005), Reply(pieces=answer))
    start: dict[str, Any] = {"provider": "anthropic", "tools": TOOLS, "reasoning": {"effort": "low"}}
    events = await stream_events(anthropic_gateway.ws, messages=[QUESTION], **start)
    assert_seq_covers(events)
    assert joined(events) == [
        {"type": "reasoning", "content": "Need Oslo weather."},
        {"type": "tool_call_start", "call_id": "toolu_01Zq", "name": "get_weather", "index": 0},
        {"type": "tool_call_delta", "call_id": "toolu_01Zq", "arguments_delta": '{"city": "Oslo"}'},
        {
            "type": "tool_call_end",
            "call_id": "toolu_01Zq",
            "name": "get_weather",
            "arguments": {"city": "Oslo"},
        },
    ]
    done = events[-1]
    assert done["finish_reason"] == "tool_calls"
    assert done["content"] == ""
    assert done["reasoning"] == "Need Oslo weather."
    assert done["tool_calls"] == [
        {"call_id": "toolu_01Zq", "name": "get_weather", "arguments": {"city": "Oslo"}}
    ]
    assert json.loads(done["provider_state"]) == {"provider": "anthropic", "blocks": [THOUGHT]}
    assert done["usage"] == {
        "prompt_tokens": 540,
        "completion_tokens": 70,
        "total_tokens": 610,
        "estimated": False,
        "cached_tokens": 500,
    }
    first = upstream.requests[0].json()
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert first["max_tokens"] == 1024 + 4096
    assert first["tools"] == [
        {"name": "get_weather", "description": "Current weather", "input_schema": WEATHER}
    ]

    # The client passes done's tool_calls and provider_state back verbatim, with the result.
    assistant = {
        "role": "assistant",
        "tool_calls": done["tool_calls"],
        "provider_state": done["provider_state"],
    }
    result = {"role": "tool", "tool_call_id": "toolu_01Zq", "content": '{"temp_c": 4}'}
    events = await stream_events(anthropic_gateway.ws, messages=[QUESTION, assistant, result], **start)
    assert events[-1]["content"] == "4 °C in Oslo."
    assert events[-1]["finish_reason"] == "stop"
    assert upstream.requests[1].json()["messages"] == [
        QUESTION,
        {
            "role": "assistant",
            "content": [
                THOUGHT,
                {"type": "tool_use", "id": "toolu_01Zq", "name": "get_weather", "input": {"city": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_01Zq", "content": '{"temp_c": 4}'}],
        },
    ]


async def test_a_request_anthropic_cannot_take_is_refused_before_the_ack(
    anthropic_gateway: Gateway, upstream: FakeUpstream
) -> None:
    events = await stream_events(
        anthropic_gateway.ws,
        provider="anthropic",
        prompt="hi",
        reasoning={"effort": "high"},
        options={"max_tokens": 2000},
    )
    (refusal,) = events
    assert refusal["type"] == "error"
    assert "seq" not in refusal
    assert refusal["code"] == "unsupported_input"
    assert refusal["message"] == (
        "provider `anthropic` cannot take this request: `options.max_tokens` (2000) must exceed the "
        "thinking budget (16384 tokens): anthropic counts the thinking in max_tokens"
    )
    assert upstream.requests == []


async def test_non_streaming_call_reports_the_calls_and_the_state(
    start_gateway: StartGateway, upstream: FakeUpstream
) -> None:
    gw = start_gateway(
        {"streaming": {"enabled": False}},
        environ={"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": upstream.url},
    )
    body = json.dumps(
        {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "content": [
                THOUGHT,
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01Zq", "name": "get_weather", "input": {"city": "Oslo"}},
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 40, "output_tokens": 70},
        }
    ).encode()
    upstream.reply(Reply(headers={"content-type": "application/json"}, pieces=[body]))
    events = await stream_events(gw.ws, provider="anthropic", messages=[QUESTION], tools=TOOLS, reasoning={})
    assert_seq_covers(events)
    done = events[-1]
    assert done["content"] == "Checking."
    assert done["reasoning"] == "Need Oslo weather."
    assert done["finish_reason"] == "tool_calls"
    assert done["tool_calls"] == [
        {"call_id": "toolu_01Zq", "name": "get_weather", "arguments": {"city": "Oslo"}}
    ]
    assert json.loads(done["provider_state"]) == {"provider": "anthropic", "blocks": [THOUGHT]}
    assert "stream" not in upstream.requests[0].json()
