"""The Anthropic Messages API (``/v1/messages``), driven by the official ``anthropic`` Python SDK
against a live gateway: the offline rulebased provider, and fake upstreams of every provider
replaying the recorded streams of tests/providers/recorded.

The fake upstream runs on the test's event loop, so the sync client is called in a thread there.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import pytest
from anthropic import Anthropic

from tests.conftest import Gateway, StartGateway
from tests.support.openai_node import run_script
from tests.support.recorded import RECORDED, gemini_sse, recorded
from tests.support.upstream import FakeUpstream, Reply

TOKEN = "gw-token-0123456789"
KEY = "sk-upstream-secret-0123456789"
CONFIG: dict[str, Any] = {
    "server": {"auth_tokens": [TOKEN]},
    "streaming": {"retry_attempts": 0},  # upstream failures reach the SDK as they are
    "providers": {"rulebased": {"chunk_delay_ms": 5}},
}
WEATHER = {
    "name": "get_weather",
    "description": "The weather now in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ASK: list[Any] = [{"role": "user", "content": "Use get_weather for Paris"}]


def _environ(upstream: FakeUpstream) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": upstream.url + "/v1",
        "ANTHROPIC_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": upstream.url,
        "GEMINI_API_KEY": KEY,
        "GEMINI_BASE_URL": upstream.url,
        "OLLAMA_HOST": upstream.url.removeprefix("http://"),
    }


@pytest.fixture
def gw(start_gateway: StartGateway, upstream: FakeUpstream) -> Gateway:
    return start_gateway(CONFIG, environ=_environ(upstream))


@pytest.fixture
def client() -> Iterator[Any]:
    made: list[Anthropic] = []

    def make(gateway: Gateway, api_key: str = TOKEN) -> Anthropic:
        made.append(Anthropic(base_url=gateway.http, api_key=api_key, max_retries=0))
        return made[-1]

    yield make
    for one in made:
        one.close()


# ---- text, streamed and not --------------------------------------------------------------------


async def test_a_streamed_text_message(gw: Gateway, client: Any) -> None:
    sdk = client(gw)

    def run() -> tuple[list[str], list[str], Any]:
        with sdk.messages.stream(
            model="rulebased", max_tokens=40, system="Be brief.", messages=[{"role": "user", "content": "Hi"}]
        ) as stream:
            pieces = list(stream.text_stream)
            return pieces, [], stream.get_final_message()

    pieces, _, message = await asyncio.to_thread(run)
    assert message.id.startswith("msg_")
    assert (message.role, message.model, message.type) == ("assistant", "rulebased", "message")
    (block,) = message.content
    assert block.type == "text"
    assert block.text == "".join(pieces)
    assert len(pieces) > 1
    assert message.stop_reason == "max_tokens"  # 40 tokens
    assert message.usage.output_tokens == 40
    assert message.usage.input_tokens > 0


async def test_the_exact_event_sequence(gw: Gateway) -> None:
    body = {
        "model": "rulebased",
        "max_tokens": 12,
        "stream": True,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(gw.http + "/v1/messages", json=body, headers={"x-api-key": TOKEN}) as response,
    ):
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = await response.text()
    events = [_frame(frame) for frame in raw.split("\n\n") if frame]
    names = [name for name, _ in events]
    for name, data in events:
        assert data["type"] == name  # each event's name is its data's type
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    start = events[0][1]["message"]
    assert start["content"] == []
    assert start["stop_reason"] is None
    assert start["id"].startswith("msg_")
    assert events[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert all(data["index"] == 0 and data["delta"]["type"] == "text_delta" for _, data in events[3:-3])
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] > 0


def _frame(frame: str) -> tuple[str, Any]:
    event, data = frame.split("\n")
    assert event.startswith("event: ")
    assert data.startswith("data: ")
    return event.removeprefix("event: "), json.loads(data.removeprefix("data: "))


async def test_pings_while_idle(start_gateway: StartGateway, upstream: FakeUpstream) -> None:
    """After the ping that follows message_start, another comes whenever the stream is quiet."""
    gateway = start_gateway(
        {**CONFIG, "streaming": {"retry_attempts": 0, "keepalive_seconds": 0.05}}, environ=_environ(upstream)
    )
    head = [line for line in _upstream_bytes("anthropic-sonnet45-text.chunks.txt").split(b"\n\n") if line][:4]
    upstream.reply(Reply(pieces=[b"\n\n".join(head) + b"\n\n"], hang=True))  # text, then silence
    body = {"model": "anthropic/claude", "max_tokens": 50, "stream": True, "messages": ASK}
    names: list[str] = []
    async with (
        aiohttp.ClientSession() as session,
        session.post(gateway.http + "/v1/messages", json=body, headers={"x-api-key": TOKEN}) as response,
    ):
        async with asyncio.timeout(10):
            async for line in response.content:
                if line.startswith(b"event: "):
                    names.append(line.removeprefix(b"event: ").strip().decode())
                if names.count("ping") == 3:
                    break
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["ping", "ping"]  # the idle ones, after the text
    assert "content_block_delta" in names


async def test_a_message_not_streamed(gw: Gateway, client: Any) -> None:
    sdk = client(gw)
    ask = [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    message = await asyncio.to_thread(
        sdk.messages.create, model="rulebased/script", max_tokens=20, messages=ask, metadata={"user_id": "u1"}
    )
    (block,) = message.content
    assert block.type == "text"
    assert block.text
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens > 0


async def test_count_tokens_is_an_estimate(gw: Gateway, client: Any) -> None:
    sdk = client(gw)
    text = "x" * 400
    counted = await asyncio.to_thread(
        sdk.messages.count_tokens, model="rulebased", messages=[{"role": "user", "content": text}]
    )
    assert counted.input_tokens == 100  # about four characters a token


# ---- tools, over rulebased -----------------------------------------------------------------------


def _weather(arguments: Any) -> str:
    return json.dumps({"city": arguments["city"], "temp_c": 4})


@pytest.mark.parametrize("streamed", [True, False])
@pytest.mark.parametrize("thinking", [None, {"type": "enabled", "budget_tokens": 100}])
async def test_a_tool_use_loop_over_rulebased(
    gw: Gateway, client: Any, streamed: bool, thinking: Any
) -> None:
    sdk = client(gw)
    messages: list[Any] = list(ASK)
    extra = {} if thinking is None else {"thinking": thinking}

    def turn() -> Any:
        if not streamed:
            return sdk.messages.create(
                model="rulebased", max_tokens=300, tools=[WEATHER], messages=messages, **extra
            )
        with sdk.messages.stream(
            model="rulebased", max_tokens=300, tools=[WEATHER], messages=messages, **extra
        ) as stream:
            return stream.get_final_message()

    first = await asyncio.to_thread(turn)
    assert first.stop_reason == "tool_use"
    kinds = [block.type for block in first.content]
    assert kinds == (["tool_use"] if thinking is None else ["thinking", "tool_use"])
    if thinking is not None:  # rulebased reasons, but signs nothing: passed back, it is dropped
        assert first.content[0].thinking.startswith('The user asks: "Use get_weather for Paris".')
        assert first.content[0].signature == ""
    (use,) = [block for block in first.content if block.type == "tool_use"]
    assert (use.name, use.input) == ("get_weather", {"city": "Paris"})
    messages.append({"role": "assistant", "content": first.content})
    result = {"type": "tool_result", "tool_use_id": use.id, "content": _weather(use.input)}
    messages.append({"role": "user", "content": [result]})
    final = await asyncio.to_thread(turn)
    assert final.stop_reason == "end_turn"
    assert final.content[-1].text == 'The get_weather tool returned: {"city": "Paris", "temp_c": 4}'


# ---- thinking, with its signature passed back to Anthropic ----------------------------------------

THINKING = "anthropic-sonnet4-thinking.sse"


def _recorded_anthropic(name: str) -> list[dict[str, Any]]:
    """The data objects of an Anthropic recording (.sse or one payload a line)."""
    lines = recorded(name).decode().splitlines()
    payloads = [line.removeprefix("data: ") for line in lines if line.startswith(("data: ", "{"))]
    return [json.loads(p) for p in payloads]


async def test_thinking_with_its_signature_passed_back(
    gw: Gateway, upstream: FakeUpstream, client: Any
) -> None:
    events = _recorded_anthropic(THINKING)
    thinking = "".join(e["delta"].get("thinking", "") for e in events if e["type"] == "content_block_delta")
    signature = next(e["delta"]["signature"] for e in events if "signature" in e.get("delta", {}))
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    upstream.reply(Reply(pieces=[recorded(THINKING)]), Reply(pieces=[recorded(THINKING)]))
    sdk = client(gw)
    ask: list[Any] = [{"role": "user", "content": "How do I cross the street?"}]
    thinking_on = {"type": "enabled", "budget_tokens": 1024}

    def first_turn() -> Any:
        with sdk.messages.stream(
            model="anthropic/claude-sonnet-4-0", max_tokens=2048, thinking=thinking_on, messages=ask
        ) as stream:
            return stream.get_final_message()

    message = await asyncio.to_thread(first_turn)
    think, answer = message.content
    assert (think.type, think.thinking, think.signature) == ("thinking", thinking, signature)
    assert (answer.type, answer.text) == ("text", text)
    ask += [{"role": "assistant", "content": message.content}, {"role": "user", "content": "Thanks"}]
    await asyncio.to_thread(
        sdk.messages.create,
        model="anthropic/claude-sonnet-4-0",
        max_tokens=2048,
        thinking=thinking_on,
        messages=ask,
    )
    sent = upstream.requests[-1].json()
    assert sent["thinking"] == thinking_on
    assert sent["messages"][1]["content"] == [
        {"type": "thinking", "thinking": thinking, "signature": signature},
        {"type": "text", "text": text},
    ]
    assert KEY not in json.dumps(message.model_dump())


# ---- errors: one exception class each --------------------------------------------------------


def _body(error: anthropic.APIStatusError) -> dict[str, Any]:
    """The error's JSON body, as the SDK parsed it: Anthropic's error shape."""
    assert isinstance(error.body, dict)
    return error.body


async def test_bad_request(gw: Gateway, client: Any) -> None:
    with pytest.raises(anthropic.BadRequestError) as raised:
        await asyncio.to_thread(
            client(gw).messages.create,
            model="rulebased",
            messages=[{"role": "user", "content": "x"}],
            max_tokens=0,
        )
    assert raised.value.status_code == 400
    body = _body(raised.value)
    assert body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": body["error"]["message"]},
    }
    assert body["error"]["message"].startswith("max_tokens: ")


async def test_max_tokens_is_required(gw: Gateway) -> None:
    body = {"model": "rulebased", "messages": [{"role": "user", "content": "x"}]}
    async with (
        aiohttp.ClientSession() as session,
        session.post(gw.http + "/v1/messages", json=body, headers={"x-api-key": TOKEN}) as response,
    ):
        assert response.status == 400
        error = (await response.json())["error"]
    assert error == {"type": "invalid_request_error", "message": "max_tokens: Field required"}


async def test_authentication(gw: Gateway, client: Any) -> None:
    with pytest.raises(anthropic.AuthenticationError) as raised:
        await asyncio.to_thread(
            client(gw, api_key="wrong").messages.create, model="rulebased", max_tokens=5, messages=ASK
        )
    assert _body(raised.value)["error"]["type"] == "authentication_error"


async def test_permission_denied(start_gateway: StartGateway) -> None:
    gateway = start_gateway({**CONFIG, "server": {"auth_tokens": [TOKEN], "allowed_origins": ["https://ok"]}})
    sdk = Anthropic(
        base_url=gateway.http, api_key=TOKEN, max_retries=0, default_headers={"origin": "https://evil"}
    )
    with sdk, pytest.raises(anthropic.PermissionDeniedError) as raised:
        await asyncio.to_thread(sdk.messages.create, model="rulebased", max_tokens=5, messages=ASK)
    assert _body(raised.value)["error"]["type"] == "permission_error"


async def test_a_bearer_token_works_too(gw: Gateway) -> None:
    with Anthropic(base_url=gw.http, auth_token=TOKEN, max_retries=0) as sdk:  # Authorization: Bearer
        message = await asyncio.to_thread(sdk.messages.create, model="rulebased", max_tokens=5, messages=ASK)
    assert message.content[0].type == "text"


async def test_closing_the_stream_cancels_upstream(gw: Gateway, upstream: FakeUpstream, client: Any) -> None:
    head = [line for line in _upstream_bytes("anthropic-sonnet45-text.chunks.txt").split(b"\n\n") if line][:4]
    upstream.reply(Reply(pieces=[b"\n\n".join(head) + b"\n\n"], hang=True))

    def first_text() -> str:
        with client(gw).messages.stream(
            model="anthropic/claude-sonnet-4-5", max_tokens=50, messages=ASK
        ) as stream:
            return str(next(iter(stream.text_stream)))  # then the SDK closes the response

    assert await asyncio.to_thread(first_text) == _expected("anthropic-sonnet45-text.chunks.txt").text[0]
    async with asyncio.timeout(10):
        await upstream.disconnected.wait()  # the gateway hung up on the upstream


async def test_not_found(gw: Gateway, client: Any) -> None:
    with pytest.raises(anthropic.NotFoundError) as raised:
        await asyncio.to_thread(client(gw).messages.create, model="nope/x", max_tokens=5, messages=ASK)
    assert _body(raised.value)["error"]["type"] == "not_found_error"


async def test_rate_limited(gw: Gateway, upstream: FakeUpstream, client: Any) -> None:
    error = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'
    upstream.reply(
        Reply(status=429, pieces=[error], headers={"content-type": "application/json", "retry-after": "7"})
    )
    with pytest.raises(anthropic.RateLimitError) as raised:
        await asyncio.to_thread(
            client(gw).messages.create, model="anthropic/claude", max_tokens=5, messages=ASK
        )
    assert _body(raised.value)["error"]["type"] == "rate_limit_error"
    assert raised.value.response.headers["retry-after"] == "7"


async def test_upstream_failure_is_an_internal_server_error(
    gw: Gateway, upstream: FakeUpstream, client: Any
) -> None:
    upstream.reply(Reply(status=500, pieces=[b"boom"], headers={"content-type": "text/plain"}))
    with pytest.raises(anthropic.InternalServerError) as raised:
        await asyncio.to_thread(client(gw).messages.create, model="openai/gpt-4o", max_tokens=5, messages=ASK)
    assert raised.value.status_code == 502
    assert _body(raised.value)["error"]["type"] == "api_error"
    assert KEY not in raised.value.response.text


async def test_overloaded(start_gateway: StartGateway, client: Any) -> None:
    """The gateway at its stream limit is Anthropic's 529 overloaded_error."""
    streaming = {"retry_attempts": 0, "max_concurrent_streams": 1}
    gateway = start_gateway(
        {**CONFIG, "streaming": streaming, "providers": {"rulebased": {"chunk_delay_ms": 50}}}
    )
    body = {"model": "rulebased", "max_tokens": 500, "stream": True, "messages": ASK}
    async with (
        aiohttp.ClientSession() as session,
        session.post(gateway.http + "/v1/messages", json=body, headers={"x-api-key": TOKEN}) as held,
    ):
        assert held.status == 200  # this stream holds the only slot
        with pytest.raises(anthropic.OverloadedError) as raised:
            await asyncio.to_thread(
                client(gateway).messages.create, model="rulebased", max_tokens=5, messages=ASK
            )
    assert _body(raised.value)["error"]["type"] == "overloaded_error"


async def test_a_body_too_large(start_gateway: StartGateway, client: Any) -> None:
    gateway = start_gateway({**CONFIG, "server": {"auth_tokens": [TOKEN], "max_message_bytes": 4096}})
    big = [{"role": "user", "content": "x" * 5000}]
    with pytest.raises(anthropic.RequestTooLargeError) as raised:
        await asyncio.to_thread(
            client(gateway).messages.create, model="rulebased", max_tokens=5, messages=big
        )
    assert _body(raised.value)["error"]["type"] == "request_too_large"


async def test_what_the_provider_cannot_take_is_a_bad_request(gw: Gateway, client: Any) -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
    ask = [{"role": "user", "content": [image, {"type": "text", "text": "What is it?"}]}]
    with pytest.raises(anthropic.BadRequestError) as raised:
        await asyncio.to_thread(
            client(gw).messages.create, model="gemini/gemini-2.5-flash", max_tokens=5, messages=ask
        )
    assert "gemini" in _body(raised.value)["error"]["message"]


async def test_a_provider_without_a_key_is_unavailable(start_gateway: StartGateway, client: Any) -> None:
    gateway = start_gateway(CONFIG)  # no ANTHROPIC_API_KEY
    with pytest.raises(anthropic.ServiceUnavailableError) as raised:
        await asyncio.to_thread(
            client(gateway).messages.create, model="anthropic/claude", max_tokens=5, messages=ASK
        )
    assert _body(raised.value)["error"]["type"] == "overloaded_error"


async def test_a_mid_stream_error_is_an_error_event(gw: Gateway, upstream: FakeUpstream, client: Any) -> None:
    """Text, then the upstream fails: the SDK has the text so far, then raises the error event."""
    overloaded = (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    head = [line for line in _upstream_bytes("anthropic-sonnet45-text.chunks.txt").split(b"\n\n") if line][:4]
    upstream.reply(Reply(pieces=[b"\n\n".join(head) + b"\n\n", overloaded]))
    seen: list[str] = []

    def run() -> None:
        with client(gw).messages.stream(
            model="anthropic/claude-sonnet-4-5", max_tokens=50, messages=ASK
        ) as stream:
            seen.extend(stream.text_stream)

    with pytest.raises(anthropic.APIStatusError) as raised:
        await asyncio.to_thread(run)
    assert seen
    assert "".join(seen) == "".join(_expected("anthropic-sonnet45-text.chunks.txt").text[:1])
    assert _body(raised.value)["type"] == "error"
    assert _body(raised.value)["error"]["type"] in ("api_error", "overloaded_error")


# ---- the Node.js SDK ----------------------------------------------------------------------------


async def test_the_node_client(gw: Gateway) -> None:
    env = {"TOKENWIRE_BASE_URL": gw.http, "TOKENWIRE_TOKEN": TOKEN}
    out = await run_script("anthropic", "anthropic.mjs", env)

    stream = out["stream"]
    assert stream["pieces"] > 1
    assert stream["text"] == stream["message"]["content"][0]["text"]
    assert stream["message"]["stop_reason"] == "max_tokens"
    assert stream["message"]["id"].startswith("msg_")
    assert stream["types"] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert {k: out["tool"][k] for k in ("stop", "name", "input")} == {
        "stop": "tool_use",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert out["answer"] == {
        "stop": "end_turn",
        "text": 'The get_weather tool returned: {"city":"Paris","temp_c":4}',  # JSON.stringify's
    }
    assert out["notFound"] == {"name": "NotFoundError", "status": 404, "type": "not_found_error"}
    assert out["badRequest"] == {"name": "BadRequestError", "status": 400, "type": "invalid_request_error"}
    assert out["auth"] == {"name": "AuthenticationError", "status": 401, "type": "authentication_error"}


# ---- every provider: the recorded streams through the gateway and the SDK ---------------------------

_PROVIDERS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-sonnet-4-5"}
_PROVIDERS |= {"gemini": "gemini/gemini-2.5-flash", "ollama": "ollama/llama3.2"}


def _provider(name: str) -> str:
    prefix = name.split("-")[0]
    return {"azure": "openai", "deepseek": "openai", "groq": "openai", "openrouter": "openai"}.get(
        prefix, prefix
    )


def _upstream_bytes(name: str) -> bytes:
    data = recorded(name)
    provider = _provider(name)
    if provider == "gemini":
        return gemini_sse(name)
    if not name.endswith(".chunks.txt"):
        return data
    lines = [line for line in data.decode().splitlines() if line.strip()]
    if provider == "anthropic":
        return "".join(f"event: {json.loads(line)['type']}\ndata: {line}\n\n" for line in lines).encode()
    done = ["[DONE]"] if provider == "openai" else []  # the fixtures end before OpenAI's last line
    return "".join(f"data: {line}\n\n" for line in [*lines, *done]).encode()


class Expected:
    """What a recording says the answer holds: text, reasoning and calls (name, arguments)."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[Any, list[Any]] = {}  # by the recording's own key: [name, argument pieces]
        self.error = False

    def call(self, key: Any, name: str | None, arguments: str | None) -> None:
        entry = self.calls.setdefault(key, [None, []])
        entry[0] = entry[0] or name
        if arguments:
            entry[1].append(arguments)

    def tool_calls(self) -> list[tuple[str, Any]]:
        return [(name, json.loads("".join(pieces) or "{}")) for name, pieces in self.calls.values()]


def _payloads(name: str) -> list[Any]:
    out = []
    for line in recorded(name).decode().splitlines():
        line = line.removeprefix("data:").strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def _expected(name: str) -> Expected:
    seen = Expected()
    for p in _payloads(name):
        provider = _provider(name)
        if "error" in p:
            seen.error = True
        elif provider == "openai":
            for choice in p.get("choices") or ():
                delta = choice.get("delta") or {}
                seen.text.append(delta.get("content") or "")
                seen.reasoning.append(delta.get("reasoning_content") or "")
                for call in delta.get("tool_calls") or ():
                    seen.call(
                        call["index"], call.get("function", {}).get("name"), call["function"].get("arguments")
                    )
        elif provider == "anthropic":
            _anthropic_payload(seen, p)
        elif provider == "gemini":
            for candidate in p.get("candidates") or ():
                for i, part in enumerate(candidate.get("content", {}).get("parts") or ()):
                    if "functionCall" in part:
                        call = part["functionCall"]
                        seen.call((id(p), i), call["name"], json.dumps(call.get("args", {})))
                    elif part.get("thought"):
                        seen.reasoning.append(part.get("text", ""))
                    else:
                        seen.text.append(part.get("text", ""))
        else:
            message = p.get("message") or {}
            seen.text.append(message.get("content") or "")
            seen.reasoning.append(message.get("thinking") or "")
    return seen


def _anthropic_payload(seen: Expected, p: dict[str, Any]) -> None:
    if p["type"] == "content_block_start" and p["content_block"]["type"] == "tool_use":
        seen.call(p["index"], p["content_block"]["name"], None)
    elif p["type"] == "content_block_delta":
        delta = p["delta"]
        seen.text.append(delta.get("text", ""))
        seen.reasoning.append(delta.get("thinking", ""))
        if delta["type"] == "input_json_delta" and p["index"] in seen.calls:  # not a server tool's
            seen.call(p["index"], None, delta["partial_json"])


RECORDINGS = sorted(p.name for p in RECORDED.iterdir() if p.name != "SOURCES.md")


@pytest.mark.parametrize("name", RECORDINGS)
async def test_a_recorded_stream_through_the_sdk(
    gw: Gateway, upstream: FakeUpstream, client: Any, name: str
) -> None:
    content_type = "application/x-ndjson" if name.endswith(".ndjson") else "text/event-stream"
    upstream.reply(Reply(pieces=[_upstream_bytes(name)], headers={"content-type": content_type}))
    expected = _expected(name)
    thinking = {"type": "enabled", "budget_tokens": 1024}
    # the recording's tools, as a client would offer them (calls nobody offered are not reported)
    tools = [{"name": name, "input_schema": {"type": "object"}} for name, _ in expected.tool_calls()]

    def run() -> Any:
        with client(gw).messages.stream(
            model=_PROVIDERS[_provider(name)], max_tokens=4096, thinking=thinking, messages=ASK, tools=tools
        ) as stream:
            return stream.get_final_message()

    if expected.error:
        with pytest.raises(anthropic.APIError):
            await asyncio.to_thread(run)
        return
    message = await asyncio.to_thread(run)
    blocks = message.content
    text = "".join(b.text for b in blocks if b.type == "text")
    reasoning = "".join(b.thinking for b in blocks if b.type == "thinking")
    calls = [(b.name, b.input) for b in blocks if b.type == "tool_use"]
    assert text == "".join(expected.text)
    assert reasoning == "".join(expected.reasoning)
    assert calls == expected.tool_calls()
    assert message.stop_reason == ("tool_use" if calls else message.stop_reason)


def test_recordings_cover_every_provider() -> None:
    assert {_provider(name) for name in RECORDINGS} == set(_PROVIDERS)
    assert Path(RECORDED / THINKING).exists()
