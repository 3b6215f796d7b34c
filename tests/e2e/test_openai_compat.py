"""The OpenAI-compatible API, driven by the official clients: openai-python (sync ``OpenAI`` and
``AsyncOpenAI``) and the ``openai`` npm package (tests/openai_node), pointed at a live gateway whose
providers speak to fake upstreams in their exact wire formats.

The fake upstream runs on the test's event loop, so the sync client is called in a thread there.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.conftest import Gateway, StartGateway
from tests.support.openai_bytes import openai_chunk
from tests.support.openai_node import run_script
from tests.support.recorded import sse_events
from tests.support.upstream import FakeUpstream, Reply

TOKEN = "gw-token-0123456789"
KEY = "sk-upstream-secret-0123456789"
MESSAGES: list[Any] = [
    {"role": "developer", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "Say"}, {"type": "text", "text": "hello"}]},
]
TEXT = "Hello, wörld 🎉"
JSON = {"content-type": "application/json"}


# ---- each provider's upstream bytes: "Hello, wörld 🎉", stop, 9 prompt + 3 completion tokens -----


OPENAI_USAGE = (
    b'data: {"id":"chatcmpl-up","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini",'
    b'"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}\n\n'
)
OPENAI_STREAM = [
    openai_chunk(""),
    openai_chunk("Hello, "),
    openai_chunk("wörld 🎉"),
    openai_chunk(None, "stop"),
    OPENAI_USAGE,
    b"data: [DONE]\n\n",
]


def _anthropic_event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _anthropic_text(text: str) -> bytes:
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
    return _anthropic_event("content_block_delta", delta)


ANTHROPIC_STREAM = [
    _anthropic_event(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_01",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 9, "output_tokens": 1},
            },
        },
    ),
    _anthropic_event(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    _anthropic_text("Hello, "),
    _anthropic_text("wörld 🎉"),
    _anthropic_event("content_block_stop", {"type": "content_block_stop", "index": 0}),
    _anthropic_event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 3},
        },
    ),
    _anthropic_event("message_stop", {"type": "message_stop"}),
]


def _gemini_chunk(text: str, finish: str | None = None) -> bytes:
    candidate: dict[str, Any] = {"index": 0, "content": {"parts": [{"text": text}], "role": "model"}}
    if finish:
        candidate["finishReason"] = finish
    usage = {"promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12}
    body = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-2.5-flash"}
    return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\r\n\r\n"


GEMINI_STREAM = [_gemini_chunk("Hello, "), _gemini_chunk("wörld 🎉", "STOP")]


def _ollama_line(content: str, **extra: Any) -> bytes:
    doc = {"model": "llama3.2", "message": {"role": "assistant", "content": content}, **extra}
    return json.dumps({"done": False, **doc}, ensure_ascii=False).encode() + b"\n"


OLLAMA_STREAM = [
    _ollama_line("Hello, "),
    _ollama_line("wörld 🎉"),
    _ollama_line("", done=True, done_reason="stop", prompt_eval_count=9, eval_count=3),
]

# model -> (upstream reply, upstream path)
PROVIDERS: dict[str, tuple[Reply, str]] = {
    "openai/gpt-4o-mini": (Reply(pieces=OPENAI_STREAM), "/v1/chat/completions"),
    "azure_openai/prod-4o": (Reply(pieces=OPENAI_STREAM), "/openai/deployments/prod-4o/chat/completions"),
    "anthropic/claude-sonnet-4-5": (Reply(pieces=ANTHROPIC_STREAM), "/v1/messages"),
    "gemini/gemini-2.5-flash": (
        Reply(pieces=GEMINI_STREAM),
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
    ),
    "ollama/llama3.2": (
        Reply(pieces=OLLAMA_STREAM, headers={"content-type": "application/x-ndjson"}),
        "/api/chat",
    ),
}


def _environ(upstream: FakeUpstream) -> dict[str, str]:
    """Every hosted provider pointed at the one fake upstream."""
    return {
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": upstream.url + "/v1",
        "AZURE_OPENAI_API_KEY": KEY,
        "AZURE_OPENAI_ENDPOINT": upstream.url,
        "OPENAI_API_VERSION": "2024-10-21",
        "ANTHROPIC_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": upstream.url,
        "GEMINI_API_KEY": KEY,
        "GEMINI_BASE_URL": upstream.url,
        "OLLAMA_HOST": upstream.url.removeprefix("http://"),
    }


CONFIG: dict[str, Any] = {
    "server": {"auth_tokens": [TOKEN]},
    # Upstream failures are reported, not retried: the SDK sees each one as it is.
    "streaming": {"retry_attempts": 0},
    "providers": {"rulebased": {"chunk_delay_ms": 5}},
}


@pytest.fixture
def gw(start_gateway: StartGateway, upstream: FakeUpstream) -> Gateway:
    return start_gateway(CONFIG, environ=_environ(upstream))


@pytest.fixture
def plain_gw(start_gateway: StartGateway) -> Gateway:
    """Only the providers that need no key: rulebased and ollama (unreachable here)."""
    return start_gateway(CONFIG)


def _async_client(gateway: Gateway, api_key: str = TOKEN, **kwargs: Any) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=gateway.http + "/v1", api_key=api_key, max_retries=0, **kwargs)


def _sync_client(gateway: Gateway, api_key: str = TOKEN, **kwargs: Any) -> OpenAI:
    return OpenAI(base_url=gateway.http + "/v1", api_key=api_key, max_retries=0, **kwargs)


async def _stream_chunks(client: AsyncOpenAI, model: str, **kwargs: Any) -> list[Any]:
    stream = await client.chat.completions.create(model=model, messages=MESSAGES, stream=True, **kwargs)
    return [chunk async for chunk in stream]


def _text(chunks: list[Any]) -> str:
    return "".join(choice.delta.content or "" for chunk in chunks for choice in chunk.choices)


# ---- every provider, streaming and not -------------------------------------------------------


@pytest.mark.parametrize("model", list(PROVIDERS))
async def test_stream_from_every_provider(gw: Gateway, upstream: FakeUpstream, model: str) -> None:
    reply, path = PROVIDERS[model]
    upstream.reply(reply)
    async with _async_client(gw) as client:
        chunks = await _stream_chunks(
            client, model, stream_options={"include_usage": True}, max_tokens=7, temperature=0.5, stop="END"
        )
    assert _text(chunks) == TEXT
    assert {c.id for c in chunks} == {chunks[0].id}
    assert chunks[0].id.startswith("chatcmpl-")
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert {c.model for c in chunks} == {model}  # as requested
    assert {c.created for c in chunks} == {chunks[0].created}
    first = chunks[0].choices[0]
    assert (first.delta.role, first.delta.content, first.finish_reason) == ("assistant", "", None)
    *body, end, usage = chunks
    assert [c.choices[0].finish_reason for c in body] == [None] * len(body)
    assert end.choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in [*body, end])
    assert usage.choices == []
    assert usage.usage is not None
    assert (usage.usage.prompt_tokens, usage.usage.completion_tokens, usage.usage.total_tokens) == (9, 3, 12)
    (request,) = upstream.requests
    assert request.path == path


@pytest.mark.parametrize("model", list(PROVIDERS))
async def test_completion_from_every_provider(gw: Gateway, upstream: FakeUpstream, model: str) -> None:
    upstream.reply(PROVIDERS[model][0])
    async with _async_client(gw) as client:
        completion = await client.chat.completions.create(model=model, messages=MESSAGES)
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == model
    (choice,) = completion.choices
    assert (choice.index, choice.finish_reason, choice.logprobs) == (0, "stop", None)
    assert (choice.message.role, choice.message.content, choice.message.refusal) == ("assistant", TEXT, None)
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (9, 3)
    assert completion.usage.total_tokens == 12


async def test_request_fields_reach_the_upstream(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=OPENAI_STREAM))
    async with _async_client(gw) as client:
        await client.chat.completions.create(
            model="openai/gpt-4o",
            messages=[*MESSAGES, {"role": "assistant", "content": "Hi"}, {"role": "user", "content": "More"}],
            max_completion_tokens=50,
            max_tokens=10,  # max_completion_tokens wins
            temperature=0.25,
            top_p=0.5,
            stop=["END", "STOP"],
            n=1,
            user="someone",  # ignored
            seed=7,  # unknown to the gateway: ignored
        )
    (request,) = upstream.requests
    assert request.headers["Authorization"] == f"Bearer {KEY}"  # the gateway's key, not the client's
    body = request.json()
    assert body["model"] == "gpt-4o"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say\nhello"},
        {"role": "assistant", "content": "Hi"},
        {"role": "user", "content": "More"},
    ]
    assert (body["max_completion_tokens"], body["temperature"], body["top_p"]) == (50, 0.25, 0.5)
    assert body["stop"] == ["END", "STOP"]
    assert "seed" not in body
    assert "user" not in body


async def test_the_sync_client_against_an_upstream(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=ANTHROPIC_STREAM), Reply(pieces=ANTHROPIC_STREAM))

    def run() -> tuple[list[Any], str | None]:
        with _sync_client(gw) as client:
            stream = client.chat.completions.create(
                model="anthropic", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
            chunks = list(stream)
            completion = client.chat.completions.create(model="anthropic", messages=MESSAGES)
        return chunks, completion.choices[0].message.content

    chunks, content = await asyncio.to_thread(run)
    assert _text(chunks) == content == TEXT
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 12
    assert {c.model for c in chunks} == {"anthropic"}
    assert [r.json()["model"] for r in upstream.requests] == ["claude-sonnet-4-5"] * 2  # the default


# ---- rulebased, with no upstream at all: model routing and the sync client --------------------


def test_sync_client_streams_and_completes_rulebased(plain_gw: Gateway) -> None:
    with _sync_client(plain_gw) as client:
        chunks = list(
            client.chat.completions.create(model="rulebased/script", messages=MESSAGES, stream=True)
        )
        completion = client.chat.completions.create(model="rulebased/script", messages=MESSAGES)
    assert _text(chunks) == completion.choices[0].message.content
    assert len(chunks) > 3
    assert chunks[-1].choices[0].finish_reason == completion.choices[0].finish_reason == "stop"
    assert all(not hasattr(c, "usage") or c.usage is None for c in chunks)


@pytest.mark.parametrize("model", ["rulebased", "rulebased/script", "assistant"])
def test_model_routing(plain_gw: Gateway, model: str) -> None:
    with _sync_client(plain_gw) as client:
        completion = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=5)
    assert completion.model == model
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content


def test_an_agent_adds_its_system_prompt(plain_gw: Gateway) -> None:
    messages: list[Any] = [{"role": "user", "content": "hello"}]
    with _sync_client(plain_gw) as client:
        plain = client.chat.completions.create(model="rulebased", messages=messages)
        agent = client.chat.completions.create(model="assistant", messages=messages)
    assert agent.usage is not None
    assert plain.usage is not None
    assert agent.usage.prompt_tokens > plain.usage.prompt_tokens  # "You are a helpful assistant."


async def test_wire_bytes_are_openai_chunks(plain_gw: Gateway) -> None:
    body = {"model": "rulebased", "messages": MESSAGES, "stream": True, "max_tokens": 12}
    headers = {"authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(plain_gw.http + "/v1/chat/completions", json=body, headers=headers) as resp:
            assert resp.status == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            raw = (await resp.read()).decode()
        body["stream_options"] = {"include_usage": True}
        async with http.post(plain_gw.http + "/v1/chat/completions", json=body, headers=headers) as resp:
            with_usage = (await resp.read()).decode()
    assert raw.endswith("data: [DONE]\n\n")
    events = raw.split("\n\n")[:-1]
    assert all(e.startswith("data: ") and "\n" not in e for e in events)  # no event:/id: lines
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert all("usage" not in c for c in chunks)
    assert chunks[0]["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
    ]
    assert chunks[-1]["choices"] == [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}]
    assert list(chunks[0]) == ["id", "object", "created", "model", "system_fingerprint", "choices"]
    usage_chunks = [json.loads(e[6:]) for e in with_usage.split("\n\n")[:-2]]
    assert [c["usage"] for c in usage_chunks[:-1]] == [None] * (len(usage_chunks) - 1)
    assert usage_chunks[-1]["choices"] == []
    assert set(usage_chunks[-1]["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


# ---- models ----------------------------------------------------------------------------------


async def test_models_list_and_retrieve(start_gateway: StartGateway) -> None:
    gateway = start_gateway(CONFIG, environ={"OPENAI_API_KEY": KEY})
    async with _async_client(gateway) as client:
        page = await client.models.list()
        ids = [m.id for m in page.data]
        # Each usable provider (ollama needs no key) as provider/default-model and by name, then the agents.
        assert ids == [
            "rulebased/script",
            "rulebased",
            "openai/gpt-4o-mini",
            "openai",
            "ollama/llama3.2",
            "ollama",
            "assistant",
        ]
        assert {m.object for m in page.data} == {"model"}
        owners = {m.id: m.owned_by for m in page.data}
        assert owners["openai/gpt-4o-mini"] == owners["openai"] == "openai"
        assert owners["assistant"] == "tokenwire"
        model = await client.models.retrieve("openai/gpt-4o-mini")
        assert (model.id, model.object, model.owned_by) == ("openai/gpt-4o-mini", "model", "openai")
        assert isinstance(model.created, int)
        other = await client.models.retrieve("openai/gpt-4.1")  # any model of a usable provider
        assert other.owned_by == "openai"
        assert (await client.models.retrieve("assistant")).id == "assistant"
        for missing in ("anthropic", "anthropic/claude-sonnet-4-5", "nope", "nope/x"):  # anthropic has no key
            with pytest.raises(openai.NotFoundError) as caught:
                await client.models.retrieve(missing)
            assert caught.value.code == "model_not_found"


# ---- errors: each one the SDK's exception class -----------------------------------------------


async def test_a_wrong_gateway_token_is_authentication_error(plain_gw: Gateway) -> None:
    async with _async_client(plain_gw, api_key="wrong") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(model="rulebased", messages=MESSAGES)
        assert caught.value.code == "invalid_api_key"
        assert caught.value.type == "invalid_request_error"
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model="rulebased", messages=MESSAGES, stream=True)
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()
        with pytest.raises(openai.AuthenticationError):
            await client.models.retrieve("rulebased")
    # The gateway's own routes keep their own error shape.
    async with aiohttp.ClientSession() as http, http.post(plain_gw.http + "/v1/completions", json={}) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "unauthorized"


async def test_a_refused_origin_is_permission_denied(start_gateway: StartGateway) -> None:
    gateway = start_gateway(
        {**CONFIG, "server": {"auth_tokens": [TOKEN], "allowed_origins": ["https://app"]}}
    )
    headers = {"origin": "https://evil"}
    async with _async_client(gateway, default_headers=headers) as client:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await client.chat.completions.create(model="rulebased", messages=MESSAGES)
    assert caught.value.type == "invalid_request_error"
    assert "https://evil" in caught.value.message


def test_an_unknown_model_is_not_found(plain_gw: Gateway) -> None:
    with _sync_client(plain_gw) as client:
        for model in ("gpt-4o-mini", "nope/x", "rulebased/"):
            with pytest.raises(openai.NotFoundError) as caught:
                client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
            assert caught.value.code == "model_not_found"
            assert caught.value.param == "model"


async def test_an_unknown_route_is_not_found(plain_gw: Gateway) -> None:
    async with _async_client(plain_gw) as client:
        with pytest.raises(openai.NotFoundError) as caught:
            await client.embeddings.create(model="rulebased", input="hi")  # POST /v1/embeddings
        assert caught.value.code == "not_found"
        assert caught.value.type == "invalid_request_error"
        assert caught.value.param is None
        assert caught.value.message.endswith("no route /v1/embeddings")
        with pytest.raises(openai.NotFoundError):
            await client.moderations.create(input="hi")  # POST /v1/moderations
    # A route that exists, asked with a method it does not take, stays 405 (protocol 11.2).
    headers = {"authorization": f"Bearer {TOKEN}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(plain_gw.http + "/v1/chat/completions", headers=headers) as resp,
    ):
        assert resp.status == 405
        assert resp.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": 3}, "temperature"),
        ({"n": 2}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "tool", "content": "x", "tool_call_id": "t"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages[0].content[0]",
        ),
        ({"messages": [{"role": "system", "content": "only a system message"}]}, "messages"),
        ({"messages": []}, "messages"),
    ],
)
async def test_a_bad_body_is_bad_request(plain_gw: Gateway, fields: dict[str, Any], param: str) -> None:
    body: dict[str, Any] = {"model": "rulebased", "messages": MESSAGES, "stream": True, **fields}
    async with _async_client(plain_gw) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(**body)
    assert caught.value.type == "invalid_request_error"
    assert caught.value.param == param


async def test_a_body_too_large_is_413(start_gateway: StartGateway) -> None:
    gateway = start_gateway({**CONFIG, "server": {"auth_tokens": [TOKEN], "max_message_bytes": 2048}})
    async with _async_client(gateway) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(
                model="rulebased", messages=[{"role": "user", "content": "x" * 4096}]
            )
    assert caught.value.status_code == 413


@pytest.mark.parametrize("stream", [True, False])
async def test_an_upstream_429_is_rate_limit_error(gw: Gateway, upstream: FakeUpstream, stream: bool) -> None:
    body = b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'
    upstream.reply(Reply(status=429, headers={**JSON, "retry-after": "3"}, pieces=[body]))
    async with _async_client(gw) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES, stream=stream)
    assert caught.value.response.headers["retry-after"] == "3"
    assert caught.value.code == "rate_limit_exceeded"
    assert "Rate limit reached" in caught.value.message


@pytest.mark.parametrize(("status", "code"), [(500, "upstream_unavailable"), (401, "upstream_auth")])
async def test_an_upstream_failure_is_internal_server_error(
    gw: Gateway, upstream: FakeUpstream, status: int, code: str
) -> None:
    body = b'{"error":{"message":"The server had an error","type":"server_error","code":null}}'
    upstream.reply(Reply(status=status, headers=JSON, pieces=[body]))
    async with _async_client(gw) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(model="openai/gpt-4o-mini", messages=MESSAGES, stream=True)
    assert caught.value.status_code == 502
    assert caught.value.code == code
    assert caught.value.type == "server_error"
    assert KEY not in caught.value.message


async def test_an_upstream_400_is_bad_request(gw: Gateway, upstream: FakeUpstream) -> None:
    body = (
        b'{"error":{"message":"The model `gpt-9` does not exist","type":"invalid_request_error","code":null}}'
    )
    upstream.reply(Reply(status=400, headers=JSON, pieces=[body]))
    async with _async_client(gw) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="openai/gpt-9", messages=MESSAGES)
    assert "gpt-9" in caught.value.message


async def test_an_unconfigured_provider_is_503(plain_gw: Gateway) -> None:
    async with _async_client(plain_gw) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(model="anthropic/claude-sonnet-4-5", messages=MESSAGES)
    assert caught.value.status_code == 503
    assert caught.value.code == "provider_not_configured"


@pytest.mark.parametrize("sync", [False, True])
async def test_a_mid_stream_error_raises_api_error(gw: Gateway, upstream: FakeUpstream, sync: bool) -> None:
    error_line = b'data: {"error": {"message": "The server had an error", "type": "server_error", "param": null, "code": null}}\n\n'
    upstream.reply(Reply(pieces=[openai_chunk("Hel"), error_line]))
    seen: list[str] = []

    def read_sync() -> None:
        with _sync_client(gw) as client:
            for chunk in client.chat.completions.create(model="openai", messages=MESSAGES, stream=True):
                seen.extend(c.delta.content or "" for c in chunk.choices)

    async def read_async() -> None:
        async with _async_client(gw) as client:
            stream = await client.chat.completions.create(model="openai", messages=MESSAGES, stream=True)
            async for chunk in stream:
                seen.extend(c.delta.content or "" for c in chunk.choices)

    with pytest.raises(openai.APIError) as caught:
        await (asyncio.to_thread(read_sync) if sync else read_async())
    assert not isinstance(caught.value, openai.APIStatusError)  # raised from the stream's data
    assert "".join(seen) == "Hel"
    assert "server had an error" in caught.value.message
    assert caught.value.code == "upstream_unavailable"
    assert caught.value.type == "server_error"


async def test_a_truncated_upstream_stream_raises_api_error(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=[openai_chunk("Hel"), openai_chunk("lo")], cut=True))
    async with _async_client(gw) as client:
        stream = await client.chat.completions.create(model="openai", messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIError) as caught:
            async for _ in stream:
                pass
    assert caught.value.code == "upstream_protocol"


# ---- cancellation ----------------------------------------------------------------------------


async def test_closing_the_stream_cancels_upstream(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=[openai_chunk("Hel")], hang=True))
    async with _async_client(gw) as client:
        stream = await client.chat.completions.create(model="openai", messages=MESSAGES, stream=True)
        text = ""
        async for chunk in stream:
            text += "".join(c.delta.content or "" for c in chunk.choices)
            if text:
                break
        await stream.close()
        assert text == "Hel"
        async with asyncio.timeout(2):
            await upstream.disconnected.wait()


async def test_the_sync_client_closing_the_stream_cancels_upstream(
    gw: Gateway, upstream: FakeUpstream
) -> None:
    upstream.reply(Reply(pieces=[openai_chunk("Hel")], hang=True))

    def run() -> None:
        with _sync_client(gw) as client:
            stream = client.chat.completions.create(model="openai", messages=MESSAGES, stream=True)
            for chunk in stream:
                if any(c.delta.content for c in chunk.choices):
                    break
            stream.close()

    await asyncio.to_thread(run)
    async with asyncio.timeout(2):
        await upstream.disconnected.wait()


@pytest.mark.parametrize("stream", [True, False])
async def test_giving_up_before_the_first_token_cancels_upstream(
    gw: Gateway, upstream: FakeUpstream, stream: bool
) -> None:
    upstream.reply(Reply(pieces=[], hang=True))  # headers, then nothing
    async with _async_client(gw, timeout=0.5) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="openai", messages=MESSAGES, stream=stream)
    async with asyncio.timeout(2):
        await upstream.disconnected.wait()


async def test_keepalive_comments_are_ignored_by_the_sdk(start_gateway: StartGateway) -> None:
    config = {
        "server": {"auth_tokens": [TOKEN]},
        "streaming": {"keepalive_seconds": 0.02},
        "providers": {"rulebased": {"chunk_delay_ms": 60}},
    }
    gateway = start_gateway(config)
    async with _async_client(gateway) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="rulebased", messages=MESSAGES, stream=True, max_tokens=12
        )
        body = (await raw.http_response.aread()).decode()
        chunks = await _stream_chunks(client, "rulebased", max_tokens=12)
    assert ": keep-alive\n\n" in body
    assert chunks[-1].choices[0].finish_reason == "length"
    assert _text(chunks)


# ---- the official Node.js client -------------------------------------------------------------


async def test_the_node_client(gw: Gateway, upstream: FakeUpstream) -> None:
    error_line = b'data: {"error": {"message": "The server had an error", "type": "server_error", "param": null, "code": null}}\n\n'
    upstream.reply(
        Reply(pieces=[openai_chunk("Hel"), error_line]),
        Reply(pieces=[openai_chunk("Hel")], hang=True),
        Reply(pieces=sse_events("openai-gpt4omini-toolcall-only.sse")),
    )
    env = {"TOKENWIRE_BASE_URL": gw.http + "/v1", "TOKENWIRE_TOKEN": TOKEN}
    out = await run_script("openai", "chat.mjs", env)

    stream = out["stream"]
    assert len(stream["ids"]) == 1
    assert stream["ids"][0].startswith("chatcmpl-")
    assert stream["objects"] == ["chat.completion.chunk"]
    assert stream["models"] == ["rulebased"]
    assert stream["first"] == {"role": "assistant", "content": ""}
    assert stream["text"]
    assert stream["finish"] == ["length"]  # max_tokens: 30
    assert stream["lastChoices"] == 0
    assert set(stream["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}

    completion = out["completion"]
    assert completion["object"] == "chat.completion"
    assert completion["text"] == stream["text"]
    assert (completion["role"], completion["finish"]) == ("assistant", "length")
    assert completion["usage"] == stream["usage"]

    assert {"rulebased/script", "rulebased", "openai/gpt-4o-mini", "assistant"} <= set(out["models"])
    assert out["retrieved"]["id"] == "rulebased/script"
    assert out["retrieved"]["object"] == "model"

    assert out["notFound"]["name"] == "NotFoundError"
    assert out["notFound"]["code"] == "model_not_found"
    assert out["badRequest"]["name"] == "BadRequestError"
    assert out["auth"]["name"] == "AuthenticationError"
    assert out["midStream"]["isAPIError"] is True
    assert "server had an error" in out["midStream"]["message"]
    assert out["midStreamText"] == "Hel"
    assert out["abortedAfter"] == "Hel"

    call_id = "call_ZR5UUuTt3pf61kjwAJIYdVMj"
    assert out["toolCall"] == {
        "finish": "tool_calls",
        "calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": "get_capital", "arguments": '{"country":"UK"}'},
            }
        ],
        "argumentsDone": [{"name": "get_capital", "arguments": '{"country":"UK"}'}],
    }
    async with asyncio.timeout(2):
        await upstream.disconnected.wait()
