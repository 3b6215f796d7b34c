"""Every recorded provider stream (tests/providers/recorded) replayed by a fake upstream through
the gateway into ``POST /v1/responses``: what the official ``openai`` SDK's ``responses.stream``
assembles (text, reasoning, function calls) must be what the recording itself holds, read here
straight from its JSON, not through the gateway's parsers.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI

from tests.conftest import Gateway, StartGateway
from tests.e2e.test_openai_compat import CONFIG, TOKEN, _environ
from tests.support.anthropic_bytes import frame_chunks
from tests.support.openai_bytes import openai_chunk
from tests.support.recorded import gemini_sse, recorded
from tests.support.upstream import FakeUpstream, Reply

# recording -> the model asked for (its provider is the one replaying it)
RECORDINGS = {
    "openai-gpt41nano-text.chunks.txt": "openai/gpt-4.1-nano",
    "openai-gpt4omini-text-usage.sse": "openai/gpt-4o-mini",
    "openai-gpt4omini-toolcall-only.sse": "openai/gpt-4o-mini",
    "openai-gpt5-moderation-trailing-chunk.sse": "openai/gpt-5",
    "anthropic-sonnet45-text.chunks.txt": "anthropic/claude-sonnet-4-5",
    "anthropic-sonnet4-thinking.sse": "anthropic/claude-sonnet-4-0",
    "anthropic-redacted-thinking.sse": "anthropic/claude-sonnet-4-0",
    "anthropic-haiku45-tool-use-only.chunks.txt": "anthropic/claude-haiku-4-5",
    "anthropic-sonnet45-text-then-tool-use.chunks.txt": "anthropic/claude-sonnet-4-5",
    "anthropic-web-search-citations.sse": "anthropic/claude-sonnet-4-5",
    "anthropic-compaction-cache-usage.sse": "anthropic/claude-sonnet-4-5",
    "anthropic-message-delta-input-tokens.chunks.txt": "anthropic/claude-sonnet-4-5",
    "gemini-20flash-function-call-only.sse": "gemini/gemini-2.0-flash",
    "gemini-20flash-text-crlf.sse": "gemini/gemini-2.0-flash",
    "gemini-25pro-thinking-parts.sse": "gemini/gemini-2.5-pro",
    "gemini-3pro-thought-signature.chunks.txt": "gemini/gemini-3-pro-preview",
    "gemini-3pro-function-call-signature.chunks.txt": "gemini/gemini-3-pro-preview",
    "ollama-llama3-chat.ndjson": "ollama/llama3",
    "ollama-llama3-chat-async.ndjson": "ollama/llama3",
    "azure-gpt5nano-model-router.chunks.txt": "azure_openai/gpt-5-nano",
    "deepseek-reasoner-reasoning-content.sse": "openai/deepseek-reasoner",  # OpenAI-compatible
}


def _wire(name: str) -> Reply:
    """The recording as its provider's wire carries it."""
    if name.startswith("gemini"):
        return Reply(pieces=[gemini_sse(name)])
    if name.startswith("ollama"):
        return Reply(pieces=[recorded(name)], headers={"content-type": "application/x-ndjson"})
    data = recorded(name)
    if name.endswith(".chunks.txt") and name.startswith("anthropic"):
        data = frame_chunks(data)
    elif name.endswith(".chunks.txt"):
        lines = [line for line in data.splitlines() if line.strip()]
        data = b"".join(b"data: " + line + b"\n\n" for line in lines) + b"data: [DONE]\n\n"
    return Reply(pieces=[data])


def _payloads(name: str) -> list[Any]:
    """The recording's JSON payloads, whatever its framing."""
    out = []
    for line in recorded(name).decode().splitlines():
        line = line.strip().removeprefix("data:").strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


class Expected:
    def __init__(self) -> None:
        self.text, self.reasoning = "", ""
        self.calls: dict[int, list[Any]] = defaultdict(lambda: ["", "", ""])  # id, name, arguments

    def result(self) -> tuple[str, str, list[tuple[str, str, Any]]]:
        calls = [(call_id, name, json.loads(args or "{}")) for call_id, name, args in self.calls.values()]
        return self.text, self.reasoning, calls


def _openai(payloads: list[Any], out: Expected) -> None:
    for payload in payloads:
        for choice in payload.get("choices") or ():
            delta = choice.get("delta") or {}
            out.text += delta.get("content") or ""
            out.reasoning += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or ():
                entry = out.calls[call["index"]]
                function = call.get("function") or {}
                entry[0] = call.get("id") or entry[0]
                entry[1] += function.get("name") or ""
                entry[2] += function.get("arguments") or ""


def _anthropic(payloads: list[Any], out: Expected) -> None:
    for payload in payloads:
        if payload["type"] == "content_block_start" and payload["content_block"]["type"] == "tool_use":
            block = payload["content_block"]
            out.calls[payload["index"]][:2] = [block["id"], block["name"]]
        if payload["type"] != "content_block_delta":
            continue
        delta = payload["delta"]
        out.text += delta.get("text", "") if delta["type"] == "text_delta" else ""
        out.reasoning += delta.get("thinking", "") if delta["type"] == "thinking_delta" else ""
        if delta["type"] == "input_json_delta" and payload["index"] in out.calls:
            out.calls[payload["index"]][2] += delta["partial_json"]


def _gemini(payloads: list[Any], out: Expected) -> None:
    for payload in payloads:
        for candidate in payload.get("candidates") or ():
            for part in (candidate.get("content") or {}).get("parts") or ():
                if "functionCall" in part:
                    call = part["functionCall"]
                    out.calls[len(out.calls)] = ["", call["name"], json.dumps(call.get("args") or {})]
                elif part.get("thought"):
                    out.reasoning += part.get("text", "")
                else:
                    out.text += part.get("text", "")


def _ollama(payloads: list[Any], out: Expected) -> None:
    for payload in payloads:
        message = payload.get("message") or {}
        out.text += message.get("content") or ""
        out.reasoning += message.get("thinking") or ""


def expected(name: str) -> tuple[str, str, list[tuple[str, str, Any]]]:
    out = Expected()
    read = {"openai": _openai, "anthropic": _anthropic, "gemini": _gemini, "ollama": _ollama}
    read |= {"azure": _openai, "deepseek": _openai}  # both speak OpenAI's chunks
    read[name.split("-")[0]](_payloads(name), out)
    return out.result()


@pytest.fixture
def gw(start_gateway: StartGateway, upstream: FakeUpstream) -> Gateway:
    return start_gateway(CONFIG, environ=_environ(upstream))


@pytest.mark.parametrize("name", list(RECORDINGS))
async def test_a_recorded_stream_through_responses(gw: Gateway, upstream: FakeUpstream, name: str) -> None:
    text, reasoning, calls = expected(name)
    tools: Any = [
        {"type": "function", "name": tool, "parameters": {"type": "object"}} for tool in {c[1] for c in calls}
    ]
    upstream.reply(_wire(name))
    async with AsyncOpenAI(base_url=gw.http + "/v1", api_key=TOKEN, max_retries=0) as client:
        extra: Any = {"tools": tools} if tools else {}
        async with client.responses.stream(
            model=RECORDINGS[name], input="Go on.", reasoning={"effort": "low"}, **extra
        ) as stream:
            final = await stream.get_final_response()
    assert final.output_text == text
    reasoning_items = [item for item in final.output if item.type == "reasoning" and item.content]
    assert "".join(part.text for item in reasoning_items for part in item.content or ()) == reasoning
    got = [item for item in final.output if item.type == "function_call"]
    assert [(item.name, json.loads(item.arguments)) for item in got] == [c[1:] for c in calls]
    for item, (call_id, _, _) in zip(got, calls, strict=True):
        assert item.call_id == call_id or not call_id  # the provider's own id, where it gave one
    assert final.status in ("completed", "incomplete")
    assert final.usage is not None


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("anthropic-refusal.chunks.txt", "anthropic/claude-sonnet-4-5"),
        ("gemini-prompt-blocked.chunks.txt", "gemini/gemini-2.5-flash"),
    ],
)
async def test_a_refusal_is_incomplete_for_the_content_filter(
    gw: Gateway, upstream: FakeUpstream, name: str, model: str
) -> None:
    upstream.reply(_wire(name))
    async with AsyncOpenAI(base_url=gw.http + "/v1", api_key=TOKEN, max_retries=0) as client:
        events = [
            event async for event in await client.responses.create(model=model, input="Go on.", stream=True)
        ]
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details is not None
    assert last.response.incomplete_details.reason == "content_filter"


# ---- cancellation: a client that goes away cancels upstream ------------------------------------


async def test_closing_the_stream_cancels_upstream(gw: Gateway, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(pieces=[openai_chunk("Hel")], hang=True))
    async with AsyncOpenAI(base_url=gw.http + "/v1", api_key=TOKEN, max_retries=0) as client:
        stream = await client.responses.create(model="openai", input="Go on.", stream=True)
        async for event in stream:
            if event.type == "response.output_text.delta":
                assert event.delta == "Hel"
                break
        await stream.close()
        async with asyncio.timeout(2):
            await upstream.disconnected.wait()


@pytest.mark.parametrize("streamed", [True, False])
async def test_giving_up_before_the_first_token_cancels_upstream(
    gw: Gateway, upstream: FakeUpstream, streamed: bool
) -> None:
    upstream.reply(Reply(pieces=[], hang=True))  # headers, then nothing
    async with AsyncOpenAI(base_url=gw.http + "/v1", api_key=TOKEN, max_retries=0, timeout=0.5) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.responses.create(model="openai", input="Go on.", stream=streamed)
    async with asyncio.timeout(2):
        await upstream.disconnected.wait()


# ---- upstream errors -------------------------------------------------------------------------

RATE_LIMITED = b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'


@pytest.mark.parametrize("streamed", [True, False])
async def test_an_upstream_rate_limit_is_a_429(gw: Gateway, upstream: FakeUpstream, streamed: bool) -> None:
    headers = {"content-type": "application/json", "retry-after": "3"}
    upstream.reply(Reply(status=429, headers=headers, pieces=[RATE_LIMITED]))
    async with AsyncOpenAI(base_url=gw.http + "/v1", api_key=TOKEN, max_retries=0) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.responses.create(model="openai", input="Go on.", stream=streamed)
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "3"


@pytest.mark.parametrize("streamed", [True, False])
async def test_an_upstream_error_after_text_fails_the_response(
    gw: Gateway, upstream: FakeUpstream, streamed: bool
) -> None:
    error_line = b'data: {"error": {"message": "The server had an error", "type": "server_error"}}\n\n'
    upstream.reply(Reply(pieces=[openai_chunk("Hel"), error_line]))
    async with AsyncOpenAI(base_url=gw.http + "/v1", api_key=TOKEN, max_retries=0) as client:
        if streamed:
            events = [
                e async for e in await client.responses.create(model="openai", input="Go on.", stream=True)
            ]
            assert events[-1].type == "response.failed"
            response = events[-1].response
        else:
            response = await client.responses.create(model="openai", input="Go on.")
    assert response.status == "failed"
    assert response.error is not None
    assert "The server had an error" in response.error.message
    assert response.output_text == "Hel"
