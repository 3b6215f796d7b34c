"""Gemini end to end: gateway -> fake upstream speaking the Generative Language API's exact bytes."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect

from tests.conftest import Gateway, StartGateway
from tests.support.recorded import gemini_sse
from tests.support.sseclient import read_events
from tests.support.upstream import FakeUpstream, Reply, cancel_reaches_upstream
from tests.support.wsclient import assert_gap_free, chunk_text, recv, stream_events

KEY = "AIzaSyFakeKey0123456789abcdefghijklmno"
STREAM_PATH = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"


def _chunk(text: str | None, finish: str | None = None, *, thought: bool = False, output: int = 1) -> bytes:
    """One modern-model event (reference §5.3), CRLF framed."""
    candidate: dict[str, Any] = {"index": 0}
    if text is not None:
        part: dict[str, Any] = {"text": text, "thought": True} if thought else {"text": text}
        candidate["content"] = {"parts": [part], "role": "model"}
    if finish:
        candidate["finishReason"] = finish
    usage: dict[str, Any] = {"promptTokenCount": 4, "totalTokenCount": 40 + output, "thoughtsTokenCount": 36}
    if not thought:
        usage["candidatesTokenCount"] = output
    body = {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": "gemini-2.5-flash",
        "responseId": "aBcD1234efGh",
    }
    return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\r\n\r\n"


STREAM = [
    _chunk("**Planning**\nA short hello.", thought=True),
    _chunk("Hel"),
    _chunk("lo, wörld 🎉", output=2),
    _chunk(" 日本", "STOP", output=3),
]
TEXT = "Hello, wörld 🎉 日本"
JSON = {"content-type": "application/json; charset=UTF-8"}


@pytest.fixture
def gemini_gateway(start_gateway: StartGateway, upstream: FakeUpstream) -> Gateway:
    return start_gateway(environ={"GEMINI_API_KEY": KEY, "GEMINI_BASE_URL": upstream.url})


async def test_google_api_key_alone_configures_gemini(start_gateway: StartGateway) -> None:
    async with connect(start_gateway(environ={"GOOGLE_API_KEY": KEY}).ws) as ws:
        ready = await recv(ws)
    providers = {p["name"]: p for p in ready["providers"]}
    assert providers["gemini"] == {
        "name": "gemini",
        "streaming": "native",
        "configured": True,
        "default_model": "gemini-2.5-flash",
    }
    async with connect(start_gateway().ws) as ws:
        ready = await recv(ws)
    assert {p["name"]: p["configured"] for p in ready["providers"]}["gemini"] is False


async def test_stream_over_websocket(gemini_gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=STREAM, pause=0.01))
    events = await stream_events(
        gemini_gateway.ws,
        provider="gemini",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Again"},
        ],
        options={"max_tokens": 64, "temperature": 0.5, "stop": "END"},
    )
    assert_gap_free(events)
    done = events[-1]
    assert done["type"] == "done"
    assert chunk_text(events) == done["content"] == TEXT
    assert done["finish_reason"] == "stop"
    # Output tokens include the thinking tokens (candidatesTokenCount + thoughtsTokenCount), which
    # every client sees as reasoning_tokens, though a v1 start forwards no reasoning text.
    assert done["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 39,
        "total_tokens": 43,
        "estimated": False,
        "reasoning_tokens": 36,
    }
    assert done["metrics"]["model"] == "gemini-2.5-flash"
    assert done["metrics"]["estimated_cost_usd"] == pytest.approx((4 * 0.30 + 39 * 2.50) / 1e6)
    (request,) = upstream.requests
    assert request.method == "POST"
    assert request.path == STREAM_PATH
    assert request.query == {"alt": "sse"}
    assert request.headers["x-goog-api-key"] == KEY
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello!"}]},
            {"role": "user", "parts": [{"text": "Again"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"temperature": 0.5, "maxOutputTokens": 64, "stopSequences": ["END"]},
    }


async def test_stream_over_sse_with_google_api_key(
    start_gateway: StartGateway, upstream: FakeUpstream
) -> None:
    gw = start_gateway(environ={"GOOGLE_API_KEY": KEY, "GEMINI_BASE_URL": upstream.url})
    upstream.reply(Reply(pieces=STREAM))
    body = {"provider": "gemini", "model": "gemini-2.5-pro", "prompt": "Hi"}
    async with aiohttp.ClientSession() as http, http.post(gw.http + "/v1/streams", json=body) as resp:
        transcript = await read_events(resp)
    kinds = [e.event for e in transcript.events]
    assert kinds[0] == "start"
    assert set(kinds[1:-1]) == {"chunk"}  # chunks may merge while the client reads
    assert kinds[-1] == "done"
    assert "".join(e.data["content"] for e in transcript.events[1:-1]) == TEXT
    assert transcript.events[0].data["model"] == "gemini-2.5-pro"
    done = transcript.events[-1].data
    assert done["content"] == TEXT
    assert done["usage"]["estimated"] is False
    (request,) = upstream.requests
    assert request.path == "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    assert request.headers["x-goog-api-key"] == KEY
    assert "key" not in request.query


async def test_prompt_blocked_finishes_with_content_filter(
    gemini_gateway: Gateway, upstream: FakeUpstream
) -> None:
    blocked = (
        b'data: {"promptFeedback": {"blockReason": "SAFETY","safetyRatings": [{"category": '
        b'"HARM_CATEGORY_HATE_SPEECH","probability": "HIGH"}]},"usageMetadata": {"promptTokenCount": 12,'
        b'"totalTokenCount": 12},"modelVersion": "gemini-2.5-flash","responseId": "q1W2e3"}\r\n\r\n'
    )
    upstream.reply(Reply(pieces=[blocked]))
    events = await stream_events(gemini_gateway.ws, provider="gemini", prompt="something hateful")
    assert [e["type"] for e in events] == ["start", "done"]
    assert events[-1]["finish_reason"] == "content_filter"
    assert events[-1]["usage"]["prompt_tokens"] == 12


async def test_rate_limit_retry_delay_from_the_body(gemini_gateway: Gateway, upstream: FakeUpstream) -> None:
    body = (
        b'{\n  "error": {\n    "code": 429,\n    "message": "Resource has been exhausted (e.g. check quota).",\n'
        b'    "status": "RESOURCE_EXHAUSTED",\n    "details": [\n      {\n        "@type": '
        b'"type.googleapis.com/google.rpc.RetryInfo",\n        "retryDelay": "31s"\n      }\n    ]\n  }\n}\n'
    )
    upstream.reply(Reply(status=429, headers=JSON, pieces=[body]))
    events = await stream_events(gemini_gateway.ws, provider="gemini", prompt="hi")
    assert [e["type"] for e in events] == ["start", "error"]
    error = events[-1]
    assert error["seq"] == 1
    assert error["code"] == "upstream_rate_limited"
    assert error["status"] == 429
    assert error["retryable"] is True
    assert error["retry_after_s"] == 31.0
    assert error["provider"] == "gemini"
    assert "Resource has been exhausted" in error["message"]


async def test_invalid_api_key_is_upstream_auth(gemini_gateway: Gateway, upstream: FakeUpstream) -> None:
    body = json.dumps(
        [
            {
                "error": {
                    "code": 400,
                    "message": f"API key not valid ({KEY}). Please pass a valid API key.",
                    "status": "INVALID_ARGUMENT",
                    "details": [
                        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
                    ],
                }
            }
        ]
    ).encode()
    upstream.reply(Reply(status=400, headers=JSON, pieces=[body]))
    error = (await stream_events(gemini_gateway.ws, provider="gemini", prompt="hi"))[-1]
    assert error["code"] == "upstream_auth"
    assert error["status"] == 400
    assert error["retryable"] is False
    assert "API key not valid" in error["message"]
    assert KEY not in error["message"]


async def test_unknown_model_is_a_bad_request(gemini_gateway: Gateway, upstream: FakeUpstream) -> None:
    body = b'{"error": {"code": 404, "message": "models/gemini-9 is not found for API version v1beta", "status": "NOT_FOUND"}}'
    upstream.reply(Reply(status=404, headers=JSON, pieces=[body]))
    error = (await stream_events(gemini_gateway.ws, provider="gemini", model="gemini-9", prompt="hi"))[-1]
    assert (error["code"], error["status"], error["retryable"]) == ("upstream_bad_request", 404, False)
    assert upstream.requests[0].path == "/v1beta/models/gemini-9:streamGenerateContent"


async def test_mid_stream_error(gemini_gateway: Gateway, upstream: FakeUpstream) -> None:
    error_event = b'data: {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}\r\n\r\n'
    upstream.reply(Reply(pieces=[_chunk("Hel"), error_event]))
    events = await stream_events(gemini_gateway.ws, provider="gemini", prompt="hi")
    assert_gap_free(events)
    assert events[1]["content"] == "Hel"
    error = events[-1]
    assert (error["type"], error["code"], error["status"], error["retryable"]) == (
        "error",
        "upstream_unavailable",
        503,
        True,
    )
    assert error["message"] == "gemini reported an error mid-stream: The model is overloaded."


@pytest.mark.parametrize("cut", [True, False])
async def test_truncated_stream_is_upstream_protocol(
    gemini_gateway: Gateway, upstream: FakeUpstream, cut: bool
) -> None:
    # No chunk carried a finishReason: EOF (or a dropped connection) came too early.
    upstream.reply(Reply(pieces=[_chunk("Hel"), _chunk("lo")], cut=cut))
    events = await stream_events(gemini_gateway.ws, provider="gemini", prompt="hi")
    assert chunk_text(events) == "Hello"
    assert events[-1]["type"] == "error"
    assert events[-1]["code"] == "upstream_protocol"
    assert events[-1]["retryable"] is True


async def test_cancel_closes_the_upstream_connection(gemini_gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=[_chunk("Hel")], hang=True))
    await cancel_reaches_upstream(gemini_gateway.ws, upstream, "gemini", "Hel")


async def test_streaming_switched_off_uses_generate_content(
    start_gateway: StartGateway, upstream: FakeUpstream
) -> None:
    gw = start_gateway(
        {"streaming": {"enabled": False}}, environ={"GEMINI_API_KEY": KEY, "GEMINI_BASE_URL": upstream.url}
    )
    body = (
        b'{\n  "candidates": [\n    {\n      "content": {\n        "parts": [\n          {\n            "text": '
        b'"Whole answer"\n          }\n        ],\n        "role": "model"\n      },\n      "finishReason": '
        b'"MAX_TOKENS",\n      "index": 0\n    }\n  ],\n  "usageMetadata": {\n    "promptTokenCount": 4,\n'
        b'    "candidatesTokenCount": 2,\n    "totalTokenCount": 6\n  },\n  "modelVersion": "gemini-2.5-flash"\n}\n'
    )
    upstream.reply(Reply(headers=JSON, pieces=[body]))
    events = await stream_events(gw.ws, provider="gemini", prompt="hi")
    assert [e["type"] for e in events] == ["start", "chunk", "done"]
    assert events[-1]["content"] == "Whole answer"
    assert events[-1]["finish_reason"] == "length"
    assert events[-1]["usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 2,
        "total_tokens": 6,
        "estimated": False,
    }
    (request,) = upstream.requests
    assert request.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert request.query == {}
    assert request.headers["x-goog-api-key"] == KEY


# ---- v1.1 typed parts ------------------------------------------------------------------------

WEATHER_TOOL = {
    "name": "weather",
    "description": "Current weather",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


async def test_recorded_function_call_ends_as_a_tool_call(
    gemini_gateway: Gateway, upstream: FakeUpstream
) -> None:
    # gemini-2.0-flash's recorded answer: a functionCall part only, finishReason STOP.
    tool = {
        "name": "get_capital",
        "parameters": {"type": "object", "properties": {"country": {"type": "string"}}},
    }
    upstream.reply(Reply(pieces=[gemini_sse("gemini-20flash-function-call-only.sse")]))
    events = await stream_events(
        gemini_gateway.ws, provider="gemini", prompt="Capital of France?", tools=[tool]
    )
    assert [e["type"] for e in events] == [
        "start",
        "tool_call_start",
        "tool_call_delta",
        "tool_call_end",
        "done",
    ]
    start, delta, end, done = events[1:]
    call_id = start["call_id"]
    assert call_id.startswith("call_")
    assert (start["name"], start["index"], start["seq"]) == ("get_capital", 0, 1)
    assert (delta["call_id"], delta["arguments_delta"], delta["seq"]) == (call_id, '{"country":"France"}', 2)
    assert (end["call_id"], end["name"], end["arguments"], end["seq"]) == (
        call_id,
        "get_capital",
        {"country": "France"},
        3,
    )
    assert (done["finish_reason"], done["content"], done["seq"]) == ("tool_calls", "", 4)
    assert done["tool_calls"] == [
        {"call_id": call_id, "name": "get_capital", "arguments": {"country": "France"}}
    ]
    assert "provider_state" not in done  # gemini-2.0 signs nothing
    assert done["usage"] == {
        "prompt_tokens": 52,
        "completion_tokens": 5,
        "total_tokens": 57,
        "estimated": False,
    }
    assert upstream.requests[0].json()["tools"] == [
        {"functionDeclarations": [{"name": "get_capital", "parametersJsonSchema": tool["parameters"]}]}
    ]


async def test_thought_signature_goes_back_on_the_call_next_turn(
    gemini_gateway: Gateway, upstream: FakeUpstream
) -> None:
    # gemini-3-pro's recorded call carries a thoughtSignature, which Gemini 3 requires back.
    name = "gemini-3pro-function-call-signature.chunks.txt"
    upstream.reply(Reply(pieces=[gemini_sse(name)]), Reply(pieces=STREAM))
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in SF?"}]
    first = await stream_events(
        gemini_gateway.ws,
        provider="gemini",
        model="gemini-3-pro-preview",
        messages=messages,
        tools=[WEATHER_TOOL],
    )
    done = first[-1]
    assert done["finish_reason"] == "tool_calls"
    assert done["usage"]["reasoning_tokens"] == 45
    (call,) = done["tool_calls"]
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [call],
            "provider_state": done["provider_state"],
        },
        {"role": "tool", "tool_call_id": call["call_id"], "content": '{"temp_c": 18}'},
    ]
    second = await stream_events(
        gemini_gateway.ws,
        provider="gemini",
        model="gemini-3-pro-preview",
        messages=messages,
        tools=[WEATHER_TOOL],
    )
    assert (second[-1]["content"], second[-1]["finish_reason"]) == (TEXT, "stop")
    signature = json.loads(gemini_sse(name).split(b"\r\n")[0].removeprefix(b"data: "))["candidates"][0][
        "content"
    ]["parts"][0]["thoughtSignature"]
    assert upstream.requests[1].json()["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in SF?"}]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "weather", "args": {"location": "San Francisco"}},
                    "thoughtSignature": signature,
                }
            ],
        },
        {"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"temp_c": 18}}}]},
    ]


async def test_recorded_thoughts_stream_as_reasoning(gemini_gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=[gemini_sse("gemini-25pro-thinking-parts.sse")]))
    events = await stream_events(
        gemini_gateway.ws,
        provider="gemini",
        model="gemini-2.5-pro",
        prompt="How do I cross?",
        reasoning={"effort": "low"},
    )
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start"
    assert kinds[-1] == "done"
    assert kinds.index("chunk") > max(i for i, k in enumerate(kinds) if k == "reasoning")
    done = events[-1]
    reasoning = "".join(e["content"] for e in events if e["type"] == "reasoning")
    assert reasoning == done["reasoning"]
    assert reasoning.startswith("**Clarifying User Goals**")
    assert chunk_text(events) == done["content"]
    assert done["content"].startswith("This is a great question!")
    assert done["usage"]["reasoning_tokens"] == 787
    assert done["usage"]["completion_tokens"] == 469 + 787
    assert json.loads(done["provider_state"])["text"].startswith("CiIB0e2Kb6Syj1a9")
    assert upstream.requests[0].json()["generationConfig"] == {
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024}
    }


async def test_an_https_image_is_refused_before_the_ack(
    gemini_gateway: Gateway, upstream: FakeUpstream
) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "url": "https://example.com/cat.png"},
    ]
    events = await stream_events(
        gemini_gateway.ws, provider="gemini", messages=[{"role": "user", "content": content}]
    )
    assert events == [
        {
            "type": "error",
            "id": "a",
            "code": "unsupported_input",
            "message": "provider `gemini` cannot take this request: image URLs: gemini takes only inline data: images",
            "retryable": False,
        }
    ]
    assert upstream.requests == []
