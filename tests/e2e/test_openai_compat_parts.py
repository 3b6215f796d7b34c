"""Protocol v1.1 parts through the OpenAI-compatible API, driven by the official ``openai`` client
and LangChain's ``ChatOpenAI`` against a live gateway: streamed tool calls assembled by the SDK's
own helpers, ``parse`` with a Pydantic model, tool loops, reasoning, images and token details.

The providers here are scripted (tests/support/providers.py): they yield the gateway's own
events, so what is checked is the encoding, whatever upstream produced them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Iterator
from typing import Any, Literal

import aiohttp
import openai
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langchain_openai import ChatOpenAI
from openai import OpenAI
from pydantic import BaseModel, Field, SecretStr

from protocol.messages import (
    ChatMessage,
    ImagePart,
    JsonFormat,
    JsonSchemaFormat,
    Reasoning,
    TextPart,
    ToolCall,
    ToolChoiceName,
)
from providers.base import (
    Finish,
    GenerationRequest,
    ProviderState,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from tests.conftest import Gateway, StartGateway
from tests.support.providers import PartsProvider
from tests.support.recorded import sse_events
from tests.support.upstream import FakeUpstream, Reply


class GetWeather(BaseModel):
    """The weather now in a city."""

    city: str


class Place(BaseModel):
    city: str
    population: int


def weather_call(name: str = "GetWeather") -> list[StreamEvent]:
    """Reasoning, then one call of the tool ``name`` for Paris, with provider state."""
    return [
        ReasoningDelta("The user wants "),
        ReasoningDelta("the weather."),
        ToolCallStart(0, "call_1", name),
        ToolCallDelta("call_1", '{"ci'),
        ToolCallDelta("call_1", 'ty": "Pa'),
        ToolCallDelta("call_1", 'ris"}'),
        ToolCallEnd("call_1", name, {"city": "Paris"}),
        ProviderState("sig-1"),
        Usage(12, 30, reasoning_tokens=9, cached_tokens=4),
        Finish("stop"),  # as Gemini and Ollama report a call: the gateway says tool_calls
    ]


def two_calls(name: str = "GetWeather") -> list[StreamEvent]:
    """Two calls one after the other, as OpenAI streams them (both end at the finish, as its
    parser learns a call is complete only then)."""
    return [
        TextDelta("Looking both up."),
        ToolCallStart(0, "call_a", name),
        ToolCallDelta("call_a", '{"city":'),
        ToolCallDelta("call_a", ' "Lima"}'),
        ToolCallStart(1, "call_b", name),
        ToolCallDelta("call_b", '{"city": "Oslo"}'),
        ToolCallEnd("call_a", name, {"city": "Lima"}),
        ToolCallEnd("call_b", name, {"city": "Oslo"}),
        Finish("tool_calls"),
    ]


def interleaved(events: list[StreamEvent]) -> list[StreamEvent]:
    """``two_calls`` with the fragments of the two calls interleaved, as some compatible servers
    send them."""
    return [events[i] for i in (0, 1, 4, 2, 5, 3, 6, 7, 8)]


WEATHER_CALL = weather_call()
ANSWER: list[StreamEvent] = [TextDelta("It is 4 °C "), TextDelta("in Paris."), Usage(40, 6), Finish("stop")]
PLACE_JSON: list[StreamEvent] = [
    TextDelta('{"city": "Par'),
    TextDelta('is", "population": 2100000}'),
    Finish("stop"),
]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


class TurnsProvider(PartsProvider):
    """Answers its n-th request with the n-th script: one turn of a conversation each."""

    def __init__(self, *turns: list[StreamEvent], name: str = "turns") -> None:
        super().__init__([], name=name)
        self.turns = turns

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        self.events = self.turns[len(self.requests)]
        async for event in super().stream(request):
            yield event


@pytest.fixture
def client() -> Iterator[Any]:
    """A factory of sync clients: the providers are in the gateway, so no upstream shares the loop."""
    made: list[OpenAI] = []

    def make(gateway: Gateway) -> OpenAI:
        made.append(OpenAI(base_url=gateway.http + "/v1", api_key="any", max_retries=0))
        return made[-1]

    yield make
    for one in made:
        one.close()


def _tools() -> list[Any]:
    return [openai.pydantic_function_tool(GetWeather)]


# ---- streamed tool calls, assembled by the SDK ----------------------------------------------


def test_a_streamed_call_is_assembled_by_the_sdk_helpers(start_gateway: StartGateway, client: Any) -> None:
    gw = start_gateway(providers=[PartsProvider(WEATHER_CALL)])
    with client(gw).chat.completions.stream(model="parts", messages=ASK, tools=_tools()) as stream:
        events = list(stream)
        final = stream.get_final_completion()
    done = [e for e in events if e.type == "tool_calls.function.arguments.done"]
    assert [(e.name, e.index, e.arguments, e.parsed_arguments) for e in done] == [
        ("GetWeather", 0, '{"city": "Paris"}', GetWeather(city="Paris"))
    ]
    deltas = [e.arguments_delta for e in events if e.type == "tool_calls.function.arguments.delta"]
    assert "".join(deltas) == '{"city": "Paris"}'  # fragments a slow reader may get merged
    (choice,) = final.choices
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert (call.id, call.type, call.function.name) == ("call_1", "function", "GetWeather")
    assert call.function.parsed_arguments == GetWeather(city="Paris")
    assert choice.message.refusal is None


def test_parallel_calls_are_assembled_by_the_sdk_helpers(start_gateway: StartGateway, client: Any) -> None:
    gw = start_gateway(providers=[PartsProvider(two_calls())])
    with client(gw).chat.completions.stream(model="parts", messages=ASK, tools=_tools()) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Looking both up."
    calls = [(c.id, c.function.arguments, c.function.parsed_arguments) for c in message.tool_calls or []]
    assert calls == [
        ("call_a", '{"city": "Lima"}', GetWeather(city="Lima")),
        ("call_b", '{"city": "Oslo"}', GetWeather(city="Oslo")),
    ]
    assert final.choices[0].finish_reason == "tool_calls"


async def test_interleaved_calls_stream_interleaved_by_index(start_gateway: StartGateway) -> None:
    """Byte-level: fragments keep the order the upstream sent them in, each keyed by its call's
    index (OpenAI's own stream has them one call after the other, as above)."""
    gw = start_gateway(providers=[PartsProvider(interleaved(two_calls()))])
    tools = [
        {"type": "function", "function": {"name": "GetWeather", "parameters": GetWeather.model_json_schema()}}
    ]
    chunks = await _raw_chunks(gw, {"model": "parts", "messages": ASK, "tools": tools, "stream": True})
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "Looking both up."},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "GetWeather", "arguments": ""},
                }
            ]
        },
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "GetWeather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
        {"tool_calls": [{"index": 1, "function": {"arguments": '{"city": "Oslo"}'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": ' "Lima"}'}}]},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * 7 + ["tool_calls"]


async def _raw_chunks(gw: Gateway, body: dict[str, Any]) -> list[Any]:
    """The data of each event of a streamed answer, before ``[DONE]``."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(gw.http + "/v1/chat/completions", json=body) as resp,
    ):
        assert resp.status == 200
        raw = (await resp.read()).decode()
    assert raw.endswith("data: [DONE]\n\n")
    return [json.loads(event[6:]) for event in raw.split("\n\n")[:-2]]


# ---- structured output ----------------------------------------------------------------------


def test_parse_with_a_pydantic_model(start_gateway: StartGateway, client: Any) -> None:
    provider = PartsProvider(PLACE_JSON)
    gw = start_gateway(providers=[provider])
    sdk = client(gw)
    completion = sdk.chat.completions.parse(model="parts", messages=ASK, response_format=Place)
    message = completion.choices[0].message
    assert message.parsed == Place(city="Paris", population=2_100_000)
    assert message.content == '{"city": "Paris", "population": 2100000}'  # the JSON text, as OpenAI's
    assert message.refusal is None
    with sdk.chat.completions.stream(model="parts", messages=ASK, response_format=Place) as stream:
        streamed = stream.get_final_completion()
    assert streamed.choices[0].message.parsed == Place(city="Paris", population=2_100_000)
    response_format = provider.requests[0].response_format
    assert isinstance(response_format, JsonSchemaFormat)
    assert (response_format.name, response_format.strict) == ("Place", True)
    assert response_format.schema["required"] == ["city", "population"]
    assert response_format.schema["additionalProperties"] is False


def test_json_object_mode(start_gateway: StartGateway, client: Any) -> None:
    provider = PartsProvider(PLACE_JSON)
    gw = start_gateway(providers=[provider])
    completion = client(gw).chat.completions.create(
        model="parts", messages=ASK, response_format={"type": "json_object"}
    )
    assert json.loads(completion.choices[0].message.content or "") == {"city": "Paris", "population": 2100000}
    assert isinstance(provider.requests[0].response_format, JsonFormat)


# ---- tool loops ------------------------------------------------------------------------------


def _weather(arguments: GetWeather) -> str:
    return json.dumps({"city": arguments.city, "temp_c": 4})


@pytest.mark.parametrize("streamed", [False, True])
def test_a_two_turn_tool_loop(start_gateway: StartGateway, client: Any, streamed: bool) -> None:
    provider = TurnsProvider(WEATHER_CALL, ANSWER)
    gw = start_gateway(providers=[provider])
    sdk = client(gw)
    messages: list[Any] = list(ASK)
    tools = _tools()
    if streamed:
        with sdk.chat.completions.stream(model="turns", messages=messages, tools=tools) as stream:
            first = stream.get_final_completion()
    else:
        first = sdk.chat.completions.parse(model="turns", messages=messages, tools=tools)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    messages.append(message)  # the SDK's own message object, passed back as apps do
    for call in message.tool_calls or []:
        result = _weather(call.function.parsed_arguments)
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    final = sdk.chat.completions.create(model="turns", messages=messages, tools=tools)
    assert final.choices[0].message.content == "It is 4 °C in Paris."
    assert final.choices[0].finish_reason == "stop"

    second = provider.requests[1]
    assert second.messages[1:] == [
        # provider_state (tokenwire's extension) came back on the SDK's message object
        _assistant_call(provider_state="sig-1", content="" if streamed else None),
        _tool_result(),
    ]
    assert second.tools is not None
    assert second.tools[0].name == "GetWeather"


def _assistant_call(**fields: Any) -> ChatMessage:
    call = ToolCall(call_id="call_1", name="GetWeather", arguments={"city": "Paris"})
    content = fields.pop("content", "")
    return ChatMessage(role="assistant", content=content, tool_calls=[call], **fields)


def _tool_result() -> ChatMessage:
    return ChatMessage(role="tool", content='{"city": "Paris", "temp_c": 4}', tool_call_id="call_1")


def test_tool_choice_and_parallel_tool_calls_reach_the_provider(
    start_gateway: StartGateway, client: Any
) -> None:
    provider = PartsProvider(WEATHER_CALL)
    gw = start_gateway(providers=[provider])
    choice: Any = {"type": "function", "function": {"name": "GetWeather"}}
    client(gw).chat.completions.create(
        model="parts", messages=ASK, tools=_tools(), tool_choice=choice, parallel_tool_calls=False
    )
    assert provider.requests[0].tool_choice == ToolChoiceName("GetWeather")


# ---- reasoning, usage details, images --------------------------------------------------------


def test_reasoning_content_and_token_details(start_gateway: StartGateway, client: Any) -> None:
    provider = PartsProvider(WEATHER_CALL)
    gw = start_gateway(providers=[provider])
    sdk = client(gw)
    stream = sdk.chat.completions.create(
        model="parts",
        messages=ASK,
        tools=_tools(),
        reasoning_effort="minimal",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    reasoning = [getattr(c.choices[0].delta, "reasoning_content", None) for c in chunks if c.choices]
    assert "".join(r for r in reasoning if r) == "The user wants the weather."
    states = [getattr(c.choices[0].delta, "provider_state", None) for c in chunks if c.choices]
    assert [s for s in states if s] == ["sig-1"]
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens_details is not None
    assert usage.prompt_tokens_details is not None
    assert (usage.completion_tokens_details.reasoning_tokens, usage.prompt_tokens_details.cached_tokens) == (
        9,
        4,
    )
    assert provider.requests[0].reasoning == Reasoning(effort="low")  # minimal: the gateway's low

    completion = sdk.chat.completions.create(
        model="parts", messages=ASK, tools=_tools(), reasoning_effort="high"
    )
    message = completion.choices[0].message
    assert message.model_extra is not None
    assert message.model_extra["reasoning_content"] == "The user wants the weather."
    assert message.model_extra["provider_state"] == "sig-1"
    assert message.content is None  # a call and no text, as OpenAI answers
    assert completion.usage is not None
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 9


def test_reasoning_is_not_sent_unless_asked_for(start_gateway: StartGateway, client: Any) -> None:
    gw = start_gateway(providers=[PartsProvider(WEATHER_CALL)])
    completion = client(gw).chat.completions.create(model="parts", messages=ASK, tools=_tools())
    message = completion.choices[0].message
    assert "reasoning_content" not in (message.model_extra or {})
    assert message.tool_calls is not None


async def test_a_client_without_the_new_fields_gets_text_only(start_gateway: StartGateway) -> None:
    gw = start_gateway(providers=[PartsProvider([*WEATHER_CALL[:2], TextDelta("Hi."), *WEATHER_CALL[2:]])])
    chunks = await _raw_chunks(gw, {"model": "parts", "messages": ASK, "stream": True})
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hi."},
        {},
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"  # no tools asked for: no calls to run


def test_images_reach_the_provider_as_parts(start_gateway: StartGateway, client: Any) -> None:
    provider = PartsProvider(ANSWER)
    gw = start_gateway(providers=[provider])
    png = "data:image/png;base64,iVBORw0KGgo="
    content: Any = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": png}},
    ]
    client(gw).chat.completions.create(model="parts", messages=[{"role": "user", "content": content}])
    assert provider.requests[0].messages[0].content == [
        TextPart("What is in these?"),
        ImagePart("https://example.com/a.jpg"),
        ImagePart(png),
    ]


def test_what_a_provider_cannot_take_is_a_bad_request(start_gateway: StartGateway, client: Any) -> None:
    refusing = PartsProvider(ANSWER, refuse="image URLs: it takes only inline images")
    gw = start_gateway(providers=[refusing])
    image: Any = [{"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}]
    with pytest.raises(openai.BadRequestError) as caught:
        client(gw).chat.completions.create(model="parts", messages=[{"role": "user", "content": image}])
    assert caught.value.code == "unsupported_input"
    assert "image URLs" in caught.value.message
    assert refusing.requests == []


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "http://a/b.png"}}],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
        ),
        (
            {"messages": [*ASK, {"role": "tool", "tool_call_id": "call_1", "content": "4"}]},
            "messages[1].role",
        ),
        ({"tool_choice": {"type": "function", "function": {"name": "Nope"}}}, "tool_choice.function.name"),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "nope"}},
                }
            },
            "response_format.json_schema.schema",
        ),
        ({"reasoning_effort": "none"}, "reasoning_effort"),
        ({"functions": [{"name": "f"}]}, "functions"),
    ],
)
def test_a_bad_field_is_a_bad_request_naming_it(
    start_gateway: StartGateway, client: Any, fields: dict[str, Any], param: str
) -> None:
    gw = start_gateway(providers=[PartsProvider(ANSWER)])
    body: dict[str, Any] = {"model": "parts", "messages": ASK, "tools": _tools(), **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        client(gw).chat.completions.create(**body)
    assert caught.value.param == param
    assert caught.value.type == "invalid_request_error"


# ---- LangChain -------------------------------------------------------------------------------


@tool
def get_weather(city: str) -> str:
    """The weather now in a city."""
    return json.dumps({"city": city, "temp_c": 4})


@pytest.fixture
def http(monkeypatch: pytest.MonkeyPatch) -> Iterator[openai.DefaultHttpxClient]:
    """LangChain's HTTP client, closed after the test (its default one is shared and kept open);
    no tracing, so LangChain talks only to the gateway."""
    monkeypatch.setenv("LANGCHAIN_TRACING_V2", "false")
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    with openai.DefaultHttpxClient() as client:
        yield client


def _chat_openai(gw: Gateway, model: str, http: openai.DefaultHttpxClient) -> ChatOpenAI:
    """``ChatOpenAI`` pointed at the gateway. Nothing here counts tokens: tiktoken never loads."""
    key = SecretStr("any")
    return ChatOpenAI(
        model=model, base_url=gw.http + "/v1", api_key=key, max_retries=0, http_client=http, stream_usage=True
    )


def _langchain_loop(bound: Any, question: str, run: BaseTool, streamed: bool) -> list[BaseMessage]:
    """The bind_tools loop of LangChain's docs: ask, run each call of the answer with ``run``,
    send the results, until an answer makes no call."""
    messages: list[BaseMessage] = [HumanMessage(question)]
    for _ in range(3):
        reply: AIMessage = _aggregate(bound.stream(messages)) if streamed else bound.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            return messages
        messages.extend(
            ToolMessage(run.invoke(call["args"]), tool_call_id=call["id"]) for call in reply.tool_calls
        )
    raise AssertionError("the loop did not end")


def _aggregate(chunks: Iterator[Any]) -> AIMessage:
    total = None
    for chunk in chunks:
        total = chunk if total is None else total + chunk
    assert total is not None
    return AIMessage(
        content=total.content, tool_calls=total.tool_calls, id=total.id, usage_metadata=total.usage_metadata
    )


@pytest.mark.parametrize("streamed", [False, True])
def test_a_langchain_bind_tools_loop(
    start_gateway: StartGateway, http: openai.DefaultHttpxClient, streamed: bool
) -> None:
    provider = TurnsProvider(weather_call("get_weather"), ANSWER)
    gw = start_gateway(providers=[provider])
    bound = _chat_openai(gw, "turns", http).bind_tools([get_weather])
    messages = _langchain_loop(bound, "What is the weather in Paris?", get_weather, streamed)
    assert messages[-1].content == "It is 4 °C in Paris."
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert messages[1].tool_calls == [  # type: ignore[attr-defined]
        {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}
    ]
    second = provider.requests[1]
    assert second.messages[1].tool_calls == [
        ToolCall(call_id="call_1", name="get_weather", arguments={"city": "Paris"})
    ]
    assert second.messages[2].tool_call_id == "call_1"
    assert json.loads(second.messages[2].text) == {"city": "Paris", "temp_c": 4}
    assert second.messages[1].provider_state is None  # LangChain drops fields it does not know


def test_langchain_assembles_interleaved_calls(
    start_gateway: StartGateway, http: openai.DefaultHttpxClient
) -> None:
    gw = start_gateway(providers=[PartsProvider(interleaved(two_calls("get_weather")))])
    bound = _chat_openai(gw, "parts", http).bind_tools([get_weather])
    reply = _aggregate(bound.stream([HumanMessage("Weather in Lima and Oslo?")]))
    assert reply.content == "Looking both up."
    assert [(c["id"], c["args"]) for c in reply.tool_calls] == [
        ("call_a", {"city": "Lima"}),
        ("call_b", {"city": "Oslo"}),
    ]


# ---- LangChain over recorded OpenAI streams --------------------------------------------------


@tool
def get_capital(country: str) -> str:
    """The capital city of a country."""
    return {"UK": "London"}.get(country, "unknown")


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_langchain_loop_over_recorded_openai_streams(
    start_gateway: StartGateway, upstream: FakeUpstream, http: openai.DefaultHttpxClient, streamed: bool
) -> None:
    """gpt-4o-mini's recorded answers: a tool call alone, then the text after its result."""
    upstream.reply(
        Reply(pieces=sse_events("openai-gpt4omini-toolcall-only.sse")),
        Reply(pieces=sse_events("openai-gpt4omini-text-usage.sse")),
    )
    environ = {"OPENAI_API_KEY": "sk-upstream", "OPENAI_BASE_URL": upstream.url + "/v1"}
    gw = start_gateway({"streaming": {"retry_attempts": 0}}, environ=environ)
    bound = _chat_openai(gw, "openai/gpt-4o-mini", http).bind_tools([get_capital])
    question = "What is the capital of the UK?"
    messages = await asyncio.to_thread(_langchain_loop, bound, question, get_capital, streamed)
    call_id = "call_ZR5UUuTt3pf61kjwAJIYdVMj"
    assert messages[1].tool_calls == [  # type: ignore[attr-defined]
        {"name": "get_capital", "args": {"country": "UK"}, "id": call_id, "type": "tool_call"}
    ]
    assert messages[-1].content == "The capital of the UK is London."
    # the recorded usage's details, in the gateway's usage and so in LangChain's
    assert messages[-1].usage_metadata == {  # type: ignore[attr-defined]
        "input_tokens": 78,
        "output_tokens": 9,
        "total_tokens": 87,
        "input_token_details": {"cache_read": 0},
        "output_token_details": {"reasoning": 0},
    }
    first, second = (request.json() for request in upstream.requests)
    assert first["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_capital",
                "description": "The capital city of a country.",
                "parameters": {
                    "type": "object",
                    "properties": {"country": {"type": "string"}},
                    "required": ["country"],
                },
            },
        }
    ]
    assert second["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "get_capital", "arguments": '{"country":"UK"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "London"},
    ]


# ---- the offline rulebased provider: real turns, no key --------------------------------------


class Day(BaseModel):
    weekday: Literal["mon", "tue", "wed"]
    high_c: float = Field(ge=-40, le=50)


class Forecast(BaseModel):
    city: str
    days: list[Day] = Field(min_length=1, max_length=3)
    note: str | None = None


def test_parse_against_rulebased(gateway: Gateway, client: Any) -> None:
    sdk = client(gateway)
    question = [{"role": "user", "content": "Forecast for Paris on tue"}]
    completion = sdk.chat.completions.parse(model="rulebased", messages=question, response_format=Forecast)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Forecast)
    assert (parsed.city, parsed.days[0].weekday) == ("Paris", "tue")  # drawn from the prompt
    assert parsed == Forecast.model_validate_json(completion.choices[0].message.content or "")
    assert completion.choices[0].finish_reason == "stop"
    with sdk.chat.completions.stream(
        model="rulebased", messages=question, response_format=Forecast
    ) as stream:
        assert stream.get_final_completion().choices[0].message.parsed == parsed  # deterministic


def test_a_streamed_tool_loop_with_reasoning_against_rulebased(gateway: Gateway, client: Any) -> None:
    sdk = client(gateway)
    messages: list[Any] = [{"role": "user", "content": "Use GetWeather for Paris"}]
    for _ in range(3):
        with sdk.chat.completions.stream(
            model="rulebased", messages=messages, tools=_tools(), reasoning_effort="low"
        ) as stream:
            message = stream.get_final_completion().choices[0].message
        messages.append(message)
        for call in message.tool_calls or []:
            result = _weather(call.function.parsed_arguments)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        if not message.tool_calls:
            break
    _, call_turn, result, answer = messages
    (call,) = call_turn.tool_calls
    assert (call.function.name, call.function.parsed_arguments) == ("GetWeather", GetWeather(city="Paris"))
    assert result == {"role": "tool", "tool_call_id": call.id, "content": '{"city": "Paris", "temp_c": 4}'}
    assert answer.content == 'The GetWeather tool returned: {"city": "Paris", "temp_c": 4}'
    # the reasoning_content deltas, as the SDK's helper assembled them
    assert call_turn.model_extra["reasoning_content"].startswith('The user asks: "Use GetWeather for Paris".')
    assert answer.model_extra["reasoning_content"].startswith("The GetWeather tool returned a result.")


@pytest.mark.parametrize("streamed", [False, True])
def test_a_langchain_bind_tools_loop_against_rulebased(
    gateway: Gateway, http: openai.DefaultHttpxClient, streamed: bool
) -> None:
    bound = _chat_openai(gateway, "rulebased", http).bind_tools([get_weather])
    messages = _langchain_loop(bound, "What does get_weather say for Paris?", get_weather, streamed)
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    (call,) = messages[1].tool_calls  # type: ignore[attr-defined]
    assert call["name"] == "get_weather"
    assert call["args"] == {"city": "Paris"}  # the place the prompt names
    assert messages[-1].content == f"The get_weather tool returned: {messages[2].content}"
