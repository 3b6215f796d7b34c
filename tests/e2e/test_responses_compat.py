"""The OpenAI Responses API (``POST /v1/responses``), driven by the official ``openai`` client
against a live gateway: rulebased offline, scripted providers for tool calls and reasoning.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

from providers.base import (
    Failure,
    Finish,
    ProviderState,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UpstreamProtocolError,
    Usage,
)
from tests.conftest import Gateway, StartGateway
from tests.e2e.test_openai_compat_parts import TurnsProvider
from tests.support.providers import PartsProvider

TOKEN = "gw-token-0123456789"
CONFIG: dict[str, Any] = {
    "server": {"auth_tokens": [TOKEN]},
    "streaming": {"retry_attempts": 0},
    "providers": {"rulebased": {"chunk_delay_ms": 1}},
}
WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather now in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def weather_call() -> list[StreamEvent]:
    return [
        ReasoningDelta("The user wants "),
        ReasoningDelta("the weather."),
        ToolCallStart(0, "call_1", "get_weather"),
        ToolCallDelta("call_1", '{"ci'),
        ToolCallDelta("call_1", 'ty": "Paris"}'),
        ToolCallEnd("call_1", "get_weather", {"city": "Paris"}),
        ProviderState("sig-1"),
        Usage(12, 30, reasoning_tokens=9, cached_tokens=4),
        Finish("stop"),
    ]


ANSWER: list[StreamEvent] = [TextDelta("It is 4 °C "), TextDelta("in Paris."), Usage(40, 6), Finish("stop")]


@pytest.fixture
def plain_gw(start_gateway: StartGateway) -> Gateway:
    return start_gateway(CONFIG)


@pytest.fixture
def client() -> Iterator[Any]:
    made: list[OpenAI] = []

    def make(gateway: Gateway, api_key: str = TOKEN) -> OpenAI:
        made.append(OpenAI(base_url=gateway.http + "/v1", api_key=api_key, max_retries=0))
        return made[-1]

    yield make
    for one in made:
        one.close()


# ---- text, streamed and not ------------------------------------------------------------------


def test_create_streamed_and_not_rulebased(plain_gw: Gateway, client: Any) -> None:
    sdk = client(plain_gw)
    events = list(sdk.responses.create(model="rulebased/script", input="Say hello", stream=True))
    whole = sdk.responses.create(model="rulebased/script", input="Say hello", instructions="Be brief.")
    types = [e.type for e in events]
    assert types[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text
    assert events[-1].response.output_text == text
    assert whole.status == "completed"
    assert whole.object == "response"
    assert whole.output_text  # the SDK computes it from `output`
    assert whole.usage is not None
    assert whole.usage.output_tokens > 0
    assert whole.instructions == "Be brief."


def test_responses_stream_helper_assembles_the_final_response(plain_gw: Gateway, client: Any) -> None:
    with client(plain_gw).responses.stream(model="rulebased", input="Tell me about tea") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.output_text == "".join(deltas)
    assert deltas
    (message,) = final.output
    assert message.type == "message"
    assert message.status == "completed"
    assert final.usage is not None
    assert final.usage.total_tokens > 0


@pytest.mark.parametrize("model", ["rulebased", "rulebased/script", "assistant"])
def test_model_routing_and_max_output_tokens(plain_gw: Gateway, client: Any, model: str) -> None:
    response = client(plain_gw).responses.create(model=model, input="hello there", max_output_tokens=5)
    assert response.model == model
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text


def test_a_length_stop_streams_response_incomplete(plain_gw: Gateway, client: Any) -> None:
    stream = client(plain_gw).responses.create(
        model="rulebased", input="hello there", max_output_tokens=4, stream=True
    )
    last = list(stream)[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert last.response.output[0].status == "incomplete"


# ---- tools, reasoning and formats -------------------------------------------------------------


def _weather(arguments: str) -> str:
    return json.dumps({"city": json.loads(arguments)["city"], "temp_c": 4})


def test_a_function_call_loop_against_rulebased(plain_gw: Gateway, client: Any) -> None:
    sdk = client(plain_gw)
    items: list[Any] = [{"role": "user", "content": "Use get_weather for Paris"}]
    for _ in range(3):
        with sdk.responses.stream(
            model="rulebased", input=items, tools=[WEATHER_TOOL], reasoning={"effort": "low"}
        ) as stream:
            final = stream.get_final_response()
        calls = [item for item in final.output if item.type == "function_call"]
        items += [item.model_dump(exclude_none=True) for item in final.output]
        items += [
            {"type": "function_call_output", "call_id": c.call_id, "output": _weather(c.arguments)}
            for c in calls
        ]
        if not calls:
            break
    kinds = [item.get("type", "message") for item in items]
    assert kinds == ["message", "reasoning", "function_call", "function_call_output", "reasoning", "message"]
    call = items[2]
    assert (call["name"], json.loads(call["arguments"])) == ("get_weather", {"city": "Paris"})
    assert items[3]["call_id"] == call["call_id"]
    assert final.output_text == 'The get_weather tool returned: {"city": "Paris", "temp_c": 4}'
    reasoning = items[1]["content"][0]["text"]
    assert reasoning.startswith('The user asks: "Use get_weather for Paris".')


def test_streamed_reasoning_call_and_state(start_gateway: StartGateway, client: Any) -> None:
    provider = TurnsProvider(weather_call(), ANSWER)
    gw = start_gateway(CONFIG, providers=[provider])
    sdk = client(gw)
    with sdk.responses.stream(
        model="turns", input="Weather in Paris?", tools=[WEATHER_TOOL], reasoning={"effort": "high"}
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    reasoning = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    assert reasoning == "The user wants the weather."
    args = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [(e.name, e.arguments) for e in args] == [("get_weather", '{"city": "Paris"}')]
    thought, call, state = final.output
    assert thought.type == "reasoning"
    assert thought.content[0].text == reasoning
    assert (call.type, call.call_id, call.name, call.arguments) == (
        "function_call",
        "call_1",
        "get_weather",
        '{"city": "Paris"}',
    )
    assert (state.type, state.encrypted_content) == ("reasoning", "sig-1")
    assert final.usage.output_tokens_details.reasoning_tokens == 9
    assert final.usage.input_tokens_details.cached_tokens == 4
    items: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    items += [item.model_dump(exclude_none=True) for item in final.output]
    items.append({"type": "function_call_output", "call_id": "call_1", "output": "4 °C"})
    answer = sdk.responses.create(model="turns", input=items, tools=[WEATHER_TOOL])
    assert answer.output_text == "It is 4 °C in Paris."
    _, turn, result = provider.requests[1].messages
    assert turn.provider_state == "sig-1"  # the reasoning item's encrypted_content, passed back
    assert [(c.call_id, c.name, c.arguments) for c in turn.tool_calls or []] == [
        ("call_1", "get_weather", {"city": "Paris"})
    ]
    assert (result.role, result.tool_call_id, result.content) == ("tool", "call_1", "4 °C")


class Forecast(BaseModel):
    city: str
    high_c: float


def test_json_schema_text_format_against_rulebased(plain_gw: Gateway, client: Any) -> None:
    sdk = client(plain_gw)
    parsed = sdk.responses.parse(model="rulebased", input="Forecast for Paris", text_format=Forecast)
    assert isinstance(parsed.output_parsed, Forecast)
    assert parsed.output_parsed.city == "Paris"
    schema = {"type": "json_schema", "name": "forecast", "schema": Forecast.model_json_schema()}
    raw = sdk.responses.create(model="rulebased", input="Forecast for Paris", text={"format": schema})
    assert Forecast.model_validate_json(raw.output_text) == parsed.output_parsed
    with sdk.responses.stream(model="rulebased", input="Forecast for Paris", text_format=Forecast) as stream:
        assert stream.get_final_response().output_parsed == parsed.output_parsed  # deterministic


def test_images_and_developer_messages_reach_the_provider(start_gateway: StartGateway, client: Any) -> None:
    provider = PartsProvider(ANSWER)
    gw = start_gateway(CONFIG, providers=[provider])
    image = "data:image/png;base64,iVBORw0KGgo="
    items: Any = [
        {"role": "developer", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": image},
            ],
        },
    ]
    client(gw).responses.create(model="parts", input=items, instructions="You are terse.")
    system, developer, user = provider.requests[0].messages
    assert (system.role, system.content) == ("system", "You are terse.")
    assert (developer.role, developer.content) == ("system", "Be brief.")
    assert user.text == "What is this?"
    assert [i.url for i in user.images] == [image]


# ---- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", "stores no responses"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", "`web_search`"),
        ({"tools": [{"type": "file_search", "vector_store_ids": []}]}, "tools[0].type", "`file_search`"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type", "item_reference"),
        ({"temperature": 3}, "temperature", "<= 2"),
        ({"tool_choice": "required"}, "tool_choice", "needs `tools`"),
    ],
)
def test_bad_requests_are_typed_400s(
    plain_gw: Gateway, client: Any, fields: dict[str, Any], param: str, words: str
) -> None:
    body: dict[str, Any] = {"model": "rulebased", "input": "hi", **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        client(plain_gw).responses.create(**body)
    error = caught.value
    assert error.status_code == 400
    assert error.param == param
    assert words in error.message
    assert error.type == "invalid_request_error"


def test_unknown_model_and_bad_token(plain_gw: Gateway, client: Any) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client(plain_gw).responses.create(model="nobody/model", input="hi")
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError) as unstored:  # nothing is stored to retrieve
        client(plain_gw).responses.retrieve("resp_0123")
    assert unstored.value.code == "not_found"
    with pytest.raises(openai.AuthenticationError) as denied:
        client(plain_gw, api_key="wrong").responses.create(model="rulebased", input="hi")
    assert denied.value.code == "invalid_api_key"


def test_a_failure_mid_stream_is_response_failed(start_gateway: StartGateway, client: Any) -> None:
    broken = Failure(UpstreamProtocolError("the upstream broke"))
    provider = PartsProvider([TextDelta("Half an "), broken])
    gw = start_gateway(CONFIG, providers=[provider])
    events = list(client(gw).responses.create(model="parts", input="hi", stream=True))
    last = events[-1]
    assert last.type == "response.failed"
    assert last.response.error.code == "server_error"
    assert "the upstream broke" in last.response.error.message
    assert last.response.output[0].content[0].text == "Half an "
    assert last.response.output[0].status == "incomplete"


async def test_wire_bytes_are_responses_events(plain_gw: Gateway) -> None:
    body = {"model": "rulebased", "input": "hi", "stream": True, "max_output_tokens": 12, "store": False}
    headers = {"authorization": f"Bearer {TOKEN}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(plain_gw.http + "/v1/responses", json=body, headers=headers) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        raw = (await resp.read()).decode()
    blocks = [b for b in raw.split("\n\n") if b and not b.startswith(":")]
    for i, block in enumerate(blocks):
        event, data = block.split("\n")
        payload = json.loads(data.removeprefix("data: "))
        assert event == f"event: {payload['type']}"
        assert payload["sequence_number"] == i
    created = json.loads(blocks[0].split("\n")[1][6:])["response"]
    assert (created["status"], created["output"], created["store"]) == ("in_progress", [], False)
