"""OpenAI and Azure OpenAI end to end: gateway -> fake upstream speaking their exact bytes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from websockets.asyncio.client import connect

from tests.conftest import Gateway, StartGateway
from tests.support.openai_bytes import openai_chunk
from tests.support.sseclient import read_events
from tests.support.upstream import FakeUpstream, Reply, cancel_reaches_upstream
from tests.support.wsclient import (
    assert_gap_free,
    assert_seq_covers,
    chunk_text,
    joined,
    recv,
    start,
    stream_events,
)

KEY = "sk-test-secret-0123456789"
NO_RETRY = {"streaming": {"retry_attempts": 0}}


USAGE = (
    b'data: {"id":"chatcmpl-7Qx","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini",'
    b'"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2000000,"total_tokens":2000009}}\n\n'
)
STREAM = [
    openai_chunk(""),
    openai_chunk("Hel"),
    openai_chunk("lo, "),
    openai_chunk("wörld 🎉"),
    openai_chunk(None, "stop"),
    USAGE,
    b"data: [DONE]\n\n",
]


@pytest.fixture
def openai_gateway(start_gateway: StartGateway, upstream: FakeUpstream) -> Gateway:
    # Retries are off: these tests check how each upstream failure is reported (see test_retry.py).
    return start_gateway(NO_RETRY, environ={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": upstream.url + "/v1"})


async def test_ready_lists_every_provider_with_its_configuration(start_gateway: StartGateway) -> None:
    gw = start_gateway(environ={"OPENAI_API_KEY": KEY})
    async with connect(gw.ws) as ws:
        ready = await recv(ws)
    providers = {p["name"]: p for p in ready["providers"]}
    assert set(providers) == {"rulebased", "openai", "azure_openai", "anthropic", "gemini", "ollama"}
    assert providers["openai"] == {
        "name": "openai",
        "streaming": "native",
        "configured": True,
        "default_model": "gpt-4o-mini",
    }
    assert providers["anthropic"]["configured"] is False
    assert providers["azure_openai"]["configured"] is False
    assert providers["ollama"]["configured"] is True


async def test_unconfigured_provider_is_refused(start_gateway: StartGateway) -> None:
    events = await stream_events(start_gateway().ws, provider="openai", prompt="hi")
    assert events == [
        {
            "type": "error",
            "id": "a",
            "code": "provider_not_configured",
            "message": "provider `openai` is not configured (no API key or endpoint)",
            "retryable": False,
        }
    ]


async def test_stream_over_websocket(openai_gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=STREAM, pause=0.01))
    events = await stream_events(
        openai_gateway.ws,
        provider="openai",
        messages=[{"role": "user", "content": "Hi"}],
        options={"max_tokens": 5},
    )
    assert_gap_free(events)
    done = events[-1]
    assert done["type"] == "done"
    assert chunk_text(events) == done["content"] == "Hello, wörld 🎉"
    assert done["finish_reason"] == "stop"
    assert done["usage"] == {
        "prompt_tokens": 9,
        "completion_tokens": 2000000,
        "total_tokens": 2000009,
        "estimated": False,
    }
    metrics = done["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["model"] == "gpt-4o-mini"
    assert metrics["estimated_cost_usd"] == pytest.approx(9 * 0.15 / 1e6 + 2 * 0.60)
    (request,) = upstream.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.json() == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 5,
    }


async def test_stream_over_sse(openai_gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=STREAM))
    async with (
        aiohttp.ClientSession() as http,
        http.post(openai_gateway.http + "/v1/streams", json={"provider": "openai", "prompt": "Hi"}) as resp,
    ):
        transcript = await read_events(resp)
    assert transcript.events[-1].event == "done"
    assert transcript.events[-1].data["content"] == "Hello, wörld 🎉"


async def test_error_status_before_the_stream_ends_the_accepted_stream(
    openai_gateway: Gateway, upstream: FakeUpstream
) -> None:
    body = (
        b'{"error":{"message":"Incorrect API key provided: '
        + KEY.encode()
        + b". You can find your API key at "
        b'https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,'
        b'"code":"invalid_api_key"}}'
    )
    upstream.reply(Reply(status=401, headers={"content-type": "application/json"}, pieces=[body]))
    events = await stream_events(openai_gateway.ws, provider="openai", prompt="hi")
    assert [e["type"] for e in events] == ["start", "error"]
    error = events[-1]
    assert error["seq"] == 1
    assert error["code"] == "upstream_auth"
    assert error["status"] == 401
    assert error["retryable"] is False
    assert error["provider"] == "openai"
    assert KEY not in str(error["message"])
    assert "Incorrect API key" in str(error["message"])


async def test_rate_limit_carries_retry_after(openai_gateway: Gateway, upstream: FakeUpstream) -> None:
    body = b'{"error":{"message":"Rate limit reached for gpt-4o-mini","type":"requests","code":"rate_limit_exceeded"}}'
    upstream.reply(
        Reply(status=429, headers={"content-type": "application/json", "retry-after": "3"}, pieces=[body])
    )
    error = (await stream_events(openai_gateway.ws, provider="openai", prompt="hi"))[-1]
    assert error["code"] == "upstream_rate_limited"
    assert error["retry_after_s"] == 3.0
    assert error["retryable"] is True


async def test_mid_stream_error(openai_gateway: Gateway, upstream: FakeUpstream) -> None:
    error_line = b'data: {"error": {"message": "The server had an error", "type": "server_error", "param": null, "code": null}}\n\n'
    upstream.reply(Reply(pieces=[openai_chunk("Hel"), error_line]))
    events = await stream_events(openai_gateway.ws, provider="openai", prompt="hi")
    assert_gap_free(events)
    assert events[1]["content"] == "Hel"
    assert events[-1]["code"] == "upstream_unavailable"
    assert "server had an error" in str(events[-1]["message"])


@pytest.mark.parametrize("cut", [True, False])
async def test_truncated_stream_is_upstream_protocol(
    openai_gateway: Gateway, upstream: FakeUpstream, cut: bool
) -> None:
    upstream.reply(Reply(pieces=[openai_chunk("Hel"), openai_chunk("lo")], cut=cut))
    events = await stream_events(openai_gateway.ws, provider="openai", prompt="hi")
    assert chunk_text(events) == "Hello"
    assert events[-1]["code"] == "upstream_protocol"
    assert events[-1]["retryable"] is True


async def test_connection_refused_is_upstream_unavailable(start_gateway: StartGateway) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gw = start_gateway(
        NO_RETRY, environ={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1"}
    )
    events = await stream_events(gw.ws, provider="openai", prompt="hi")
    assert [e["type"] for e in events] == ["start", "error"]
    assert events[-1]["code"] == "upstream_unavailable"
    assert events[-1]["retryable"] is True


async def test_cancel_closes_the_upstream_connection(openai_gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=[openai_chunk("Hel")], hang=True))
    await cancel_reaches_upstream(openai_gateway.ws, upstream, "openai", "Hel")


@pytest.fixture
def short_grace_gateway(start_gateway: StartGateway, upstream: FakeUpstream) -> Gateway:
    config = {"streaming": {"retry_attempts": 0}, "resume": {"resume_grace_seconds": 0.3}}
    return start_gateway(config, environ={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": upstream.url + "/v1"})


async def _closed_after_the_grace_period(upstream: FakeUpstream) -> None:
    await asyncio.sleep(0.15)
    assert not upstream.disconnected.is_set(), "a client that went away may still resume"
    async with asyncio.timeout(2):
        await upstream.disconnected.wait()


async def test_socket_close_closes_the_upstream_connection(
    short_grace_gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.reply(Reply(pieces=[openai_chunk("Hel")], hang=True))
    async with connect(short_grace_gateway.ws) as ws:
        await recv(ws)
        await start(ws, "a", provider="openai", prompt="hi")
        await recv(ws)
        await recv(ws)
    await _closed_after_the_grace_period(upstream)


async def test_sse_client_going_away_closes_the_upstream_connection(
    short_grace_gateway: Gateway, upstream: FakeUpstream
) -> None:
    upstream.reply(Reply(pieces=[openai_chunk("Hel")], hang=True))
    async with aiohttp.ClientSession() as http:
        resp = await http.post(
            short_grace_gateway.http + "/v1/streams", json={"provider": "openai", "prompt": "hi"}
        )
        await read_events(resp, until={"chunk"})
        resp.close()
    await _closed_after_the_grace_period(upstream)


async def test_idle_timeout_closes_the_upstream_connection(
    start_gateway: StartGateway, upstream: FakeUpstream
) -> None:
    gw = start_gateway(
        {"streaming": {"idle_timeout_seconds": 0.3}},
        environ={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": upstream.url + "/v1"},
    )
    upstream.reply(Reply(pieces=[openai_chunk("Hel")], hang=True))
    events = await stream_events(gw.ws, provider="openai", prompt="hi")
    assert events[-1]["code"] == "timeout"
    async with asyncio.timeout(2):
        await upstream.disconnected.wait()


@pytest.fixture
def non_streaming_gateway(start_gateway: StartGateway, upstream: FakeUpstream) -> Gateway:
    return start_gateway(
        {"streaming": {"enabled": False}},
        environ={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": upstream.url + "/v1"},
    )


async def test_streaming_switched_off_uses_the_non_streaming_call(
    non_streaming_gateway: Gateway, upstream: FakeUpstream
) -> None:
    body = (
        b'{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"finish_reason":"length",'
        b'"message":{"role":"assistant","content":"Whole answer"}}],"usage":{"prompt_tokens":4,"completion_tokens":2}}'
    )
    upstream.reply(Reply(headers={"content-type": "application/json"}, pieces=[body]))
    events = await stream_events(non_streaming_gateway.ws, provider="openai", prompt="hi")
    assert [e["type"] for e in events] == ["start", "chunk", "done"]
    assert events[-1]["content"] == "Whole answer"
    assert events[-1]["finish_reason"] == "length"
    assert "stream" not in upstream.requests[0].json()


async def test_azure_stream_with_filter_chunks(start_gateway: StartGateway, upstream: FakeUpstream) -> None:
    gw = start_gateway(
        environ={
            "AZURE_OPENAI_API_KEY": KEY,
            "AZURE_OPENAI_ENDPOINT": upstream.url,
            "OPENAI_API_VERSION": "2024-10-21",
        },
        config={
            "providers": {
                "azure_openai": {"prices": {"prod-4o": {"input_per_mtok": 1, "output_per_mtok": 2}}}
            }
        },
    )
    prompt_filter = (
        b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[]}\n\n'
    )
    late_filter = (
        b'data: {"id":"","object":"","created":0,"model":"","choices":[{"index":0,"finish_reason":"content_filter",'
        b'"content_filter_results":{"protected_material_text":{"detected":true,"filtered":true}}}],"usage":null}\n\n'
    )
    upstream.reply(Reply(pieces=[prompt_filter, openai_chunk("Hello"), late_filter, b"data: [DONE]\n\n"]))
    events = await stream_events(gw.ws, provider="azure_openai", model="prod-4o", prompt="hi")
    done = events[-1]
    assert done["finish_reason"] == "content_filter"
    assert done["content"] == "Hello"
    assert done["usage"]["estimated"] is True
    (request,) = upstream.requests
    assert request.path == "/openai/deployments/prod-4o/chat/completions"
    assert request.query == {"api-version": "2024-10-21"}
    assert request.headers["api-key"] == KEY
    assert "Authorization" not in request.headers


RECORDED = Path(__file__).parent.parent / "providers" / "recorded"
CAPITAL = {"type": "object", "properties": {"country": {"type": "string"}}, "required": ["country"]}


def _recorded_events(name: str) -> list[bytes]:
    """A recorded body as the SSE events it holds, to send one by one."""
    return [event + b"\n\n" for event in (RECORDED / name).read_bytes().split(b"\n\n") if event]


async def test_recorded_tool_call_stream_over_websocket(
    openai_gateway: Gateway, upstream: FakeUpstream
) -> None:
    call_id = "call_ZR5UUuTt3pf61kjwAJIYdVMj"
    upstream.reply(Reply(pieces=_recorded_events("openai-gpt4omini-toolcall-only.sse"), pause=0.005))
    events = await stream_events(
        openai_gateway.ws,
        provider="openai",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Which country is this? "},
                    {"type": "image", "url": "https://example.com/flag.png"},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"call_id": "call_0", "name": "guess", "arguments": {"q": "flag"}}],
            },
            {"role": "tool", "tool_call_id": "call_0", "content": "UK"},
            {"role": "user", "content": "Its capital?"},
        ],
        tools=[
            {"name": "get_capital", "description": "The capital of a country", "parameters": CAPITAL},
            {"name": "guess"},
        ],
        tool_choice={"name": "get_capital"},
    )
    assert_seq_covers(events)
    assert joined(events) == [
        {"type": "tool_call_start", "call_id": call_id, "name": "get_capital", "index": 0},
        {"type": "tool_call_delta", "call_id": call_id, "arguments_delta": '{"country":"UK"}'},
        {"type": "tool_call_end", "call_id": call_id, "name": "get_capital", "arguments": {"country": "UK"}},
    ]
    done = events[-1]
    assert done["type"] == "done"
    assert done["finish_reason"] == "tool_calls"
    assert done["content"] == ""
    assert done["tool_calls"] == [{"call_id": call_id, "name": "get_capital", "arguments": {"country": "UK"}}]
    assert done["usage"] == {
        "prompt_tokens": 53,
        "completion_tokens": 15,
        "total_tokens": 68,
        "estimated": False,
        "reasoning_tokens": 0,
        "cached_tokens": 0,
    }
    (request,) = upstream.requests
    assert request.json() == {
        "model": "gpt-4o-mini",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Which country is this? "},
                    {"type": "image_url", "image_url": {"url": "https://example.com/flag.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_0",
                        "type": "function",
                        "function": {"name": "guess", "arguments": '{"q":"flag"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_0", "content": "UK"},
            {"role": "user", "content": "Its capital?"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_capital",
                    "description": "The capital of a country",
                    "parameters": CAPITAL,
                },
            },
            {
                "type": "function",
                "function": {"name": "guess", "parameters": {"type": "object", "properties": {}}},
            },
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_capital"}},
    }


async def test_recorded_reasoning_stream_over_sse(openai_gateway: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=[(RECORDED / "deepseek-reasoner-reasoning-content.sse").read_bytes()]))
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            openai_gateway.http + "/v1/streams",
            json={
                "provider": "openai",
                "model": "deepseek-reasoner",
                "prompt": "Hello",
                "reasoning": {"budget_tokens": 8000},
            },
        ) as resp,
    ):
        transcript = await read_events(resp)
    events = [event.data for event in transcript.events]
    assert_seq_covers(events)
    parts = joined(events)
    assert [part["type"] for part in parts] == ["reasoning", "chunk"]
    assert parts[0]["content"].startswith('Hmm, the user just said "Hello".')
    done = events[-1]
    assert done["reasoning"] == parts[0]["content"]
    assert done["content"] == parts[1]["content"] == "Hello there! 😊 How can I help you today?"
    assert done["usage"]["reasoning_tokens"] == 198
    assert done["finish_reason"] == "stop"
    assert upstream.requests[0].json()["reasoning_effort"] == "medium"


async def test_tool_calls_from_the_non_streaming_call(
    non_streaming_gateway: Gateway, upstream: FakeUpstream
) -> None:
    body = (
        b'{"id":"chatcmpl-2","object":"chat.completion","choices":[{"index":0,"finish_reason":"tool_calls",'
        b'"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function",'
        b'"function":{"name":"get_capital","arguments":"{\\"country\\":\\"UK\\"}"}},{"id":"call_b",'
        b'"type":"function","function":{"name":"get_capital","arguments":"{\\"country\\":"}}]}}],'
        b'"usage":{"prompt_tokens":50,"completion_tokens":30,"prompt_tokens_details":{"cached_tokens":32},'
        b'"completion_tokens_details":{"reasoning_tokens":0}}}'
    )
    upstream.reply(Reply(headers={"content-type": "application/json"}, pieces=[body]))
    events = await stream_events(
        non_streaming_gateway.ws,
        provider="openai",
        prompt="capital of the UK?",
        tools=[{"name": "get_capital", "parameters": CAPITAL}],
    )
    assert [e["type"] for e in joined(events)] == ["tool_call_start", "tool_call_delta", "tool_call_end"] * 2
    done = events[-1]
    assert done["finish_reason"] == "tool_calls"
    assert done["tool_calls"][0] == {
        "call_id": "call_a",
        "name": "get_capital",
        "arguments": {"country": "UK"},
    }
    assert done["tool_calls"][1]["arguments"] is None
    assert done["tool_calls"][1]["arguments_error"].startswith("the arguments are not valid JSON")
    assert done["usage"]["cached_tokens"] == 32
