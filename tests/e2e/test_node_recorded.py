"""The official Node SDKs against every provider: ``openai`` (Responses API),
``@anthropic-ai/sdk`` (Messages API) and the AI SDK's ``@ai-sdk/openai`` through ``streamText``
each stream one recorded answer per provider, replayed by a fake upstream through the gateway
(tests/openai_node/recorded.mjs, tests/ai_sdk_node/recorded.test.mjs). The text the SDK assembles must
be the recording's own, read here as tests/e2e/test_responses_recorded.py reads it."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Gateway, StartGateway
from tests.e2e.test_openai_compat import CONFIG, TOKEN, _environ
from tests.e2e.test_responses_recorded import RECORDINGS, _wire, expected
from tests.support.ai_sdk_node import run_node_tests
from tests.support.openai_node import run_script
from tests.support.upstream import FakeUpstream

TEXT_RECORDINGS = [
    "openai-gpt41nano-text.chunks.txt",
    "anthropic-sonnet45-text.chunks.txt",
    "gemini-20flash-text-crlf.sse",
    "ollama-llama3-chat.ndjson",
]
TOOL_RECORDINGS = ["openai-gpt4omini-toolcall-only.sse", "anthropic-sonnet45-text-then-tool-use.chunks.txt"]


@pytest.fixture
def gw(start_gateway: StartGateway, upstream: FakeUpstream) -> Gateway:
    return start_gateway(CONFIG, environ=_environ(upstream))


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
@pytest.mark.parametrize("name", TEXT_RECORDINGS + TOOL_RECORDINGS)
async def test_a_node_sdk_streams_a_recorded_answer(
    gw: Gateway, upstream: FakeUpstream, name: str, sdk: str
) -> None:
    text, _, calls = expected(name)
    assert text or calls
    upstream.reply(_wire(name))
    env = {
        "TOKENWIRE_BASE_URL": gw.http,
        "TOKENWIRE_TOKEN": TOKEN,
        "TOKENWIRE_SDK": sdk,
        "TOKENWIRE_MODEL": RECORDINGS[name],
        "TOKENWIRE_EXPECTED_TEXT": text,
        "TOKENWIRE_EXPECTED_CALLS": json.dumps([[call_name, args] for _, call_name, args in calls]),
    }
    await run_script(sdk, "recorded.mjs", env)
    assert upstream.requests  # the answer came from the fake upstream, not elsewhere


@pytest.mark.parametrize("name", TEXT_RECORDINGS)
async def test_ai_sdk_stream_text_streams_a_recorded_answer(
    gw: Gateway, upstream: FakeUpstream, name: str
) -> None:
    text = expected(name)[0]
    upstream.reply(_wire(name))
    env = {
        "TOKENWIRE_URL": gw.http,
        "TOKENWIRE_TOKEN": TOKEN,
        "TOKENWIRE_MODEL": RECORDINGS[name],
        "TOKENWIRE_EXPECTED_TEXT": text,
    }
    await run_node_tests("recorded.test.mjs", env, passed=1)
    assert upstream.requests
