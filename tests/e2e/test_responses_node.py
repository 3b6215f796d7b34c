"""The Responses API from Node: the official ``openai`` npm package (tests/openai_node) and the AI
SDK's default OpenAI provider, which speaks Responses, through ``streamText`` (tests/ai_sdk_node),
against a live gateway with the rulebased provider."""

from __future__ import annotations

from tests.conftest import StartGateway
from tests.e2e.test_responses_compat import CONFIG, TOKEN
from tests.support.ai_sdk_node import node_or_skip, run_node_tests
from tests.support.openai_node import run_script


async def test_the_openai_node_client(start_gateway: StartGateway) -> None:
    gw = start_gateway(CONFIG)
    env = {"TOKENWIRE_BASE_URL": gw.http + "/v1", "TOKENWIRE_TOKEN": TOKEN}
    out = await run_script("openai", "responses.mjs", env)
    stream = out["stream"]
    assert stream["types"][:2] == ["response.created", "response.in_progress"]
    assert stream["types"][-1] == "response.completed"
    assert stream["sequence"] == list(range(len(stream["types"])))
    assert stream["text"]
    assert stream["final"]["output"][0]["content"][0]["text"] == stream["text"]
    assert out["whole"]["status"] == "completed"
    assert out["whole"]["outputText"]
    assert out["whole"]["usage"]["output_tokens"] > 0
    assert out["refused"]["name"] == "BadRequestError"
    assert out["refused"]["param"] == "tools[0].type"
    assert "web_search" in out["refused"]["message"]


async def test_ai_sdk_openai_provider_stream_text(start_gateway: StartGateway) -> None:
    node_or_skip()
    gw = start_gateway(CONFIG)
    await run_node_tests("responses.test.mjs", {"TOKENWIRE_URL": gw.http, "TOKENWIRE_TOKEN": TOKEN}, passed=3)
    assert not gw.hub.running
