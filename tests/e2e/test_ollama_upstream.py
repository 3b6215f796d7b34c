"""Ollama end to end: gateway -> fake upstream speaking /api/chat NDJSON, found through OLLAMA_HOST
given as bare ``host:port`` (no scheme), the form `ollama serve` users usually export."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect

from tests.conftest import Gateway, StartGateway
from tests.support.sseclient import read_events
from tests.support.upstream import FakeUpstream, Reply, cancel_reaches_upstream
from tests.support.wsclient import assert_gap_free, chunk_text, recv, stream_events

NDJSON = {"content-type": "application/x-ndjson"}
JSON = {"content-type": "application/json; charset=utf-8"}
CLOUD_KEY = "ollama-cloud-secret-0123456789"


def _line(content: str, *, done: bool = False, **extra: Any) -> bytes:
    doc = {
        "model": "llama3.2",
        "created_at": "2026-01-01T10:00:00.1234567Z",
        "message": {"role": "assistant", "content": content},
        "done": done,
        **extra,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


DONE = _line(
    "",
    done=True,
    done_reason="stop",
    total_duration=412345678,
    load_duration=12345678,
    prompt_eval_count=26,
    prompt_eval_duration=98765432,
    eval_count=4,
    eval_duration=65432109,
)
STREAM = [_line("Hel"), _line("lo, "), _line("wörld 🎉"), DONE]


def _host(upstream: FakeUpstream) -> str:
    return upstream.url.removeprefix("http://")  # "127.0.0.1:<port>", no scheme


@pytest.fixture
def ollama_gateway(start_gateway: StartGateway, upstream: FakeUpstream) -> Gateway:
    return start_gateway(environ={"OLLAMA_HOST": _host(upstream)})


async def test_ready_lists_ollama_configured_without_a_key(ollama_gateway: Gateway) -> None:
    async with connect(ollama_gateway.ws) as ws:
        ready = await recv(ws)
    (ollama,) = [p for p in ready["providers"] if p["name"] == "ollama"]
    assert ollama == {
        "name": "ollama",
        "streaming": "native",
        "configured": True,
        "default_model": "llama3.2",
    }


async def test_stream_over_websocket(start_gateway: StartGateway, upstream: FakeUpstream) -> None:
    gw = start_gateway(
        {"providers": {"ollama": {"prices": {"llama3.2": {"input_per_mtok": 1, "output_per_mtok": 2}}}}},
        environ={"OLLAMA_HOST": _host(upstream)},
    )
    upstream.reply(Reply(pieces=STREAM, headers=NDJSON, pause=0.01))
    events = await stream_events(
        gw.ws,
        provider="ollama",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        options={"max_tokens": 5, "temperature": 0.3, "stop": "\n"},
    )
    assert_gap_free(events)
    assert events[0]["provider"] == "ollama"
    assert events[0]["model"] == "llama3.2"
    done = events[-1]
    assert done["type"] == "done"
    assert chunk_text(events) == done["content"] == "Hello, wörld 🎉"
    assert done["finish_reason"] == "stop"
    assert done["usage"] == {
        "prompt_tokens": 26,
        "completion_tokens": 4,
        "total_tokens": 30,
        "estimated": False,
    }
    assert done["metrics"]["model"] == "llama3.2"
    assert done["metrics"]["estimated_cost_usd"] == pytest.approx((26 * 1 + 4 * 2) / 1e6)
    (request,) = upstream.requests
    assert (request.method, request.path, request.query) == ("POST", "/api/chat", {})
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers
    assert request.json() == {
        "model": "llama3.2",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "stream": True,
        "options": {"temperature": 0.3, "num_predict": 5, "stop": ["\n"]},
    }


async def test_local_models_cost_nothing_by_default(ollama_gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=STREAM, headers=NDJSON))
    done = (await stream_events(ollama_gateway.ws, provider="ollama", model="qwen3:8b", prompt="Hi"))[-1]
    assert done["metrics"]["estimated_cost_usd"] == 0.0
    assert upstream.requests[0].json()["model"] == "qwen3:8b"
    assert "options" not in upstream.requests[0].json()


async def test_stream_over_sse(ollama_gateway: Gateway, upstream: FakeUpstream) -> None:
    thinking = _line("", message={"role": "assistant", "content": "", "thinking": "Greet them."})
    upstream.reply(Reply(pieces=[thinking, *STREAM], headers=NDJSON))
    async with (
        aiohttp.ClientSession() as http,
        http.post(ollama_gateway.http + "/v1/streams", json={"provider": "ollama", "prompt": "Hi"}) as resp,
    ):
        assert resp.status == 200
        transcript = await read_events(resp)
    events = transcript.events
    assert_gap_free([e.data | {"type": e.event} for e in events])  # chunks may merge: from_seq..seq
    assert [e.id for e in events] == [str(e.data["seq"]) for e in events]
    assert "".join(e.data["content"] for e in events if e.event == "chunk") == "Hello, wörld 🎉"
    assert events[-1].data["content"] == "Hello, wörld 🎉"  # thinking is not forwarded
    assert events[-1].data["usage"]["estimated"] is False


async def test_cloud_key_is_sent_as_bearer(start_gateway: StartGateway, upstream: FakeUpstream) -> None:
    gw = start_gateway(
        {"providers": {"ollama": {"api_key": CLOUD_KEY}}}, environ={"OLLAMA_HOST": _host(upstream)}
    )
    upstream.reply(Reply(pieces=STREAM, headers=NDJSON))
    await stream_events(gw.ws, provider="ollama", prompt="Hi")
    assert upstream.requests[0].headers["Authorization"] == f"Bearer {CLOUD_KEY}"


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable"),
    [
        (404, b'{"error":"model \'llama9\' not found"}', "upstream_bad_request", False),
        (400, b'{"error":"invalid message format"}', "upstream_bad_request", False),
        (401, b'{"error":"unauthorized: key ' + CLOUD_KEY.encode() + b'"}', "upstream_auth", False),
        (429, b'{"error":"too many requests"}', "upstream_rate_limited", True),
        (500, b'{"error":"llama runner process has terminated"}', "upstream_unavailable", True),
        (502, b'{"error":"cloud model unreachable"}', "upstream_unavailable", True),
    ],
)
async def test_error_status_before_the_stream_ends_the_accepted_stream(
    start_gateway: StartGateway, upstream: FakeUpstream, status: int, body: bytes, code: str, retryable: bool
) -> None:
    gw = start_gateway(
        {"providers": {"ollama": {"api_key": CLOUD_KEY}}, "streaming": {"retry_attempts": 0}},
        environ={"OLLAMA_HOST": _host(upstream)},
    )
    upstream.reply(Reply(status=status, headers={**JSON, "retry-after": "2"}, pieces=[body]))
    events = await stream_events(gw.ws, provider="ollama", model="llama9", prompt="hi")
    assert [e["type"] for e in events] == ["start", "error"]
    error = events[-1]
    assert error["seq"] == 1
    assert (error["code"], error["status"], error["retryable"]) == (code, status, retryable)
    assert error["provider"] == "ollama"
    assert error["retry_after_s"] == 2.0
    assert CLOUD_KEY not in error["message"]
    assert error["message"].startswith(f"ollama answered HTTP {status}: ")


async def test_mid_stream_error(ollama_gateway: Gateway, upstream: FakeUpstream) -> None:
    error_line = b'{"error":"an error was encountered while running the model"}\n'
    upstream.reply(Reply(pieces=[_line("Hel"), error_line], headers=NDJSON))
    events = await stream_events(ollama_gateway.ws, provider="ollama", prompt="hi")
    assert_gap_free(events)
    assert chunk_text(events) == "Hel"
    error = events[-1]
    assert (error["type"], error["code"], error["retryable"]) == ("error", "upstream_unavailable", True)
    assert (
        error["message"]
        == "ollama reported an error mid-stream: an error was encountered while running the model"
    )


@pytest.mark.parametrize("cut", [True, False])
async def test_truncated_stream_is_upstream_protocol(
    ollama_gateway: Gateway, upstream: FakeUpstream, cut: bool
) -> None:
    upstream.reply(Reply(pieces=[_line("Hel"), _line("lo")], headers=NDJSON, cut=cut))
    events = await stream_events(ollama_gateway.ws, provider="ollama", prompt="hi")
    assert_gap_free(events)
    assert chunk_text(events) == "Hello"
    assert events[-1]["code"] == "upstream_protocol"
    assert events[-1]["retryable"] is True


async def test_cancel_closes_the_upstream_connection(ollama_gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=[_line("Hel")], headers=NDJSON, hang=True))
    await cancel_reaches_upstream(ollama_gateway.ws, upstream, "ollama", "Hel")


async def test_streaming_switched_off_uses_the_non_streaming_call(
    start_gateway: StartGateway, upstream: FakeUpstream
) -> None:
    gw = start_gateway({"streaming": {"enabled": False}}, environ={"OLLAMA_HOST": _host(upstream)})
    body = (
        b'{"model":"llama3.2","created_at":"2026-01-01T10:00:00.5Z","message":{"role":"assistant",'
        b'"content":"Whole answer"},"done":true,"done_reason":"length","total_duration":5191566416,'
        b'"prompt_eval_count":26,"eval_count":298}'
    )
    upstream.reply(Reply(headers=JSON, pieces=[body]))
    events = await stream_events(gw.ws, provider="ollama", prompt="hi")
    assert [e["type"] for e in events] == ["start", "chunk", "done"]
    done = events[-1]
    assert (done["content"], done["finish_reason"]) == ("Whole answer", "length")
    assert done["usage"] == {
        "prompt_tokens": 26,
        "completion_tokens": 298,
        "total_tokens": 324,
        "estimated": False,
    }
    request = upstream.requests[0]
    assert request.path == "/api/chat"
    assert request.json()["stream"] is False


# ---- v1.1 typed parts ------------------------------------------------------------------------

CLOCK_TOOL = {"name": "get_time", "description": "The time in a city", "parameters": {"type": "object"}}


async def test_thinking_and_a_whole_tool_call(ollama_gateway: Gateway, upstream: FakeUpstream) -> None:
    # qwen3 thinks, then a current server sends the call whole with its id; done says "stop".
    call = {
        "id": "call_k2v9x0qa",
        "function": {"index": 0, "name": "get_time", "arguments": {"city": "Oslo"}},
    }
    pieces = [
        _line("", message={"role": "assistant", "content": "", "thinking": "They want the time."}),
        _line("", message={"role": "assistant", "content": "", "tool_calls": [call]}),
        DONE,
    ]
    upstream.reply(Reply(pieces=pieces, headers=NDJSON))
    events = await stream_events(
        ollama_gateway.ws,
        provider="ollama",
        model="qwen3",
        prompt="Time in Oslo?",
        tools=[CLOCK_TOOL],
        reasoning={},
    )
    assert [(e["type"], e["seq"]) for e in events] == [
        ("start", 0),
        ("reasoning", 1),
        ("tool_call_start", 2),
        ("tool_call_delta", 3),
        ("tool_call_end", 4),
        ("done", 5),
    ]
    assert events[1]["content"] == "They want the time."
    assert (events[2]["call_id"], events[2]["name"], events[2]["index"]) == ("call_k2v9x0qa", "get_time", 0)
    assert events[3]["arguments_delta"] == '{"city":"Oslo"}'
    assert events[4]["arguments"] == {"city": "Oslo"}
    done = events[-1]
    assert done["finish_reason"] == "tool_calls"
    assert done["reasoning"] == "They want the time."
    assert done["tool_calls"] == [
        {"call_id": "call_k2v9x0qa", "name": "get_time", "arguments": {"city": "Oslo"}}
    ]
    assert "provider_state" not in done
    body = upstream.requests[0].json()
    assert body["think"] is True
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_time",
                "description": "The time in a city",
                "parameters": {"type": "object"},
            },
        }
    ]


async def test_a_tool_result_goes_back_with_the_tool_name(
    ollama_gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.reply(Reply(pieces=STREAM, headers=NDJSON))
    messages = [
        {"role": "user", "content": "Time in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"call_id": "call_k2v9x0qa", "name": "get_time", "arguments": {"city": "Oslo"}}],
        },
        {"role": "tool", "tool_call_id": "call_k2v9x0qa", "content": "10:42"},
    ]
    events = await stream_events(ollama_gateway.ws, provider="ollama", messages=messages, tools=[CLOCK_TOOL])
    assert events[-1]["finish_reason"] == "stop"
    assert events[-1]["tool_calls"] == []
    assert upstream.requests[0].json()["messages"][1:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_k2v9x0qa", "function": {"name": "get_time", "arguments": {"city": "Oslo"}}}
            ],
        },
        {"role": "tool", "content": "10:42", "tool_name": "get_time", "tool_call_id": "call_k2v9x0qa"},
    ]


async def test_a_forced_tool_is_refused_before_the_ack(
    ollama_gateway: Gateway, upstream: FakeUpstream
) -> None:
    events = await stream_events(
        ollama_gateway.ws, provider="ollama", prompt="Time?", tools=[CLOCK_TOOL], tool_choice="required"
    )
    assert events == [
        {
            "type": "error",
            "id": "a",
            "code": "unsupported_input",
            "message": 'provider `ollama` cannot take this request: tool_choice "required": ollama cannot force a tool call',
            "retryable": False,
        }
    ]
    assert upstream.requests == []
