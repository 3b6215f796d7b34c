"""Gemini typed parts: function calls, thoughts and thought signatures, token details, on the
recorded streams and on new transcripts in every split; the request fields; what is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from protocol.messages import (
    ChatMessage,
    ImagePart,
    JsonFormat,
    JsonSchemaFormat,
    Reasoning,
    TextFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolChoiceName,
)
from providers.base import (
    Completion,
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
from providers.dialect import ProviderSettings
from providers.dialects import gemini
from providers.dialects.gemini import DEFAULT_BASE_URL, GeminiDialect, GeminiStreamParser
from tests.support.call_ids import NumberedIds
from tests.support.recorded import gemini_sse, recorded
from tests.support.transcripts import events_in_every_split

DIALECT = GeminiDialect(
    ProviderSettings(api_key="k", base_url=DEFAULT_BASE_URL, default_model="gemini-2.5-flash")
)
Parse = Callable[[bytes], list[Any]]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture
def numbered(monkeypatch: pytest.MonkeyPatch) -> Parse:
    """``_parse`` with the ids Gemini does not give numbered: call_0, call_1, …"""
    ids = NumberedIds(monkeypatch, gemini)
    return lambda data: events_in_every_split(ids.fresh(GeminiStreamParser), data)


def _parse(data: bytes) -> list[Any]:
    return events_in_every_split(GeminiStreamParser, data)


def _payloads(name: str) -> list[dict[str, Any]]:
    data = recorded(name).replace(b"\r\n", b"\n")
    return [json.loads(line.removeprefix(b"data: ")) for line in data.split(b"\n") if line.strip()]


def _parts(name: str) -> list[dict[str, Any]]:
    return [p for doc in _payloads(name) for p in doc["candidates"][0]["content"]["parts"]]


def _state(**fields: Any) -> ProviderState:
    return ProviderState(json.dumps({"provider": "gemini", **fields}, separators=(",", ":")))


# ---- recorded streams ------------------------------------------------------------------------


def test_recorded_function_call_is_a_tool_call_not_an_empty_stop(numbered: Parse) -> None:
    # gemini-2.0-flash: one chunk, a functionCall part only, finishReason STOP, no id.
    assert numbered(recorded("gemini-20flash-function-call-only.sse")) == [
        ToolCallStart(0, "call_0", "get_capital"),
        ToolCallDelta("call_0", '{"country":"France"}'),
        ToolCallEnd("call_0", "get_capital", {"country": "France"}),
        Usage(52, 5),
        Finish("tool_calls"),
    ]


def test_recorded_gemini3_call_keeps_its_signature_for_that_call(numbered: Parse) -> None:
    name = "gemini-3pro-function-call-signature.chunks.txt"
    (signature,) = [p["thoughtSignature"] for p in _parts(name) if "thoughtSignature" in p]
    assert numbered(gemini_sse(name)) == [
        ToolCallStart(0, "call_0", "weather"),
        ToolCallDelta("call_0", '{"location":"San Francisco"}'),
        ToolCallEnd("call_0", "weather", {"location": "San Francisco"}),
        Usage(29, 15 + 45, reasoning_tokens=45),
        _state(calls={"call_0": signature}),
        Finish("tool_calls"),
    ]


def test_recorded_thought_parts_then_text_signed_on_its_first_part() -> None:
    # gemini-2.5-pro with includeThoughts: four thought summaries, then the answer; the
    # signature rides on the first answer part.
    name = "gemini-25pro-thinking-parts.sse"
    parts = _parts(name)
    expected: list[Any] = [
        ReasoningDelta(p["text"]) if p.get("thought") else TextDelta(p["text"]) for p in parts
    ]
    assert [type(e) for e in expected[:5]] == [ReasoningDelta] * 4 + [TextDelta]
    (signature,) = [p["thoughtSignature"] for p in parts if "thoughtSignature" in p]
    expected += [Usage(34, 469 + 787, reasoning_tokens=787), _state(text=signature), Finish("stop")]
    assert _parse(recorded(name)) == expected


def test_recorded_gemini3_signature_on_a_trailing_empty_part() -> None:
    name = "gemini-3pro-thought-signature.chunks.txt"
    signature = _parts(name)[-1]["thoughtSignature"]
    assert _parse(gemini_sse(name)) == [
        TextDelta("There are **3**"),
        TextDelta(' "r"s in strawberry.\n\nst**r**awbe**rr**y'),
        Usage(9, 23 + 185, reasoning_tokens=185),
        _state(text=signature),
        Finish("stop"),
    ]


def test_recorded_text_without_thinking_reports_no_reasoning_tokens() -> None:
    assert _parse(recorded("gemini-20flash-text-crlf.sse")) == [
        TextDelta("The"),
        TextDelta(" capital of France"),
        TextDelta(" is Paris.\n"),
        Usage(13, 8),
        Finish("stop"),
    ]


def test_recorded_blocked_prompt() -> None:
    assert _parse(gemini_sse("gemini-prompt-blocked.chunks.txt")) == [Usage(9, 0), Finish("content_filter")]


# ---- transcripts (reference §5.2 shapes) -----------------------------------------------------


def _event(
    parts: list[dict[str, Any]], finish: str | None = None, usage: dict[str, int] | None = None
) -> bytes:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    doc: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": "gemini-3-pro-preview",
        "responseId": "r1",
    }
    if usage:
        doc["usageMetadata"] = usage
    return b"data: " + json.dumps(doc, ensure_ascii=False).encode() + b"\r\n\r\n"


USAGE = {
    "promptTokenCount": 120,
    "candidatesTokenCount": 30,
    "totalTokenCount": 250,
    "thoughtsTokenCount": 100,
}
SIG_A, SIG_B = "EqUCCqICAb4+9vsh" + "x" * 300, "CiIB0e2Kb6Syj1a9"


def test_parallel_calls_spread_over_chunks_signature_only_on_the_first(numbered: Parse) -> None:
    data = (
        _event([{"text": "Checking both cities."}])
        + _event(
            [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                    "thoughtSignature": SIG_A,
                },
                {"functionCall": {"name": "get_weather", "args": {"city": "Zürich 🌧"}}},
            ]
        )
        + _event([{"functionCall": {"name": "get_time", "args": {}}}])
        + _event([{"text": ""}], "STOP", USAGE)
    )
    assert numbered(data) == [
        TextDelta("Checking both cities."),
        ToolCallStart(0, "call_0", "get_weather"),
        ToolCallDelta("call_0", '{"city":"Oslo"}'),
        ToolCallEnd("call_0", "get_weather", {"city": "Oslo"}),
        ToolCallStart(1, "call_1", "get_weather"),
        ToolCallDelta("call_1", '{"city":"Zürich 🌧"}'),
        ToolCallEnd("call_1", "get_weather", {"city": "Zürich 🌧"}),
        ToolCallStart(2, "call_2", "get_time"),
        ToolCallDelta("call_2", "{}"),
        ToolCallEnd("call_2", "get_time", {}),
        Usage(120, 130, reasoning_tokens=100),
        _state(calls={"call_0": SIG_A}),
        Finish("tool_calls"),
    ]


def test_a_call_id_from_gemini_is_kept_and_recorded() -> None:
    data = _event([{"functionCall": {"id": "fc-7f3a", "name": "read_theme"}}], "STOP")
    assert _parse(data) == [
        ToolCallStart(0, "fc-7f3a", "read_theme"),
        ToolCallDelta("fc-7f3a", "{}"),
        ToolCallEnd("fc-7f3a", "read_theme", {}),
        _state(ids=["fc-7f3a"]),
        Finish("tool_calls"),
    ]


def test_a_signed_thought_part_keeps_its_text_for_the_replay() -> None:
    data = _event([{"text": "**Plan**\nLook it up.", "thought": True, "thoughtSignature": SIG_B}]) + _event(
        [{"text": "Done."}], "STOP", USAGE | {"cachedContentTokenCount": 96}
    )
    assert _parse(data) == [
        ReasoningDelta("**Plan**\nLook it up."),
        TextDelta("Done."),
        Usage(120, 130, reasoning_tokens=100, cached_tokens=96),
        _state(thoughts=[{"text": "**Plan**\nLook it up.", "signature": SIG_B}]),
        Finish("stop"),
    ]


def test_a_call_at_the_token_limit_ends_with_length(numbered: Parse) -> None:
    data = _event([{"functionCall": {"name": "search", "args": {"q": "x"}}}], "MAX_TOKENS")
    assert numbered(data)[-1] == Finish("length")


def test_arguments_that_are_not_an_object_end_the_call_with_an_error(numbered: Parse) -> None:
    data = _event([{"functionCall": {"name": "search", "args": ["x"]}}], "STOP")
    assert numbered(data)[:3] == [
        ToolCallStart(0, "call_0", "search"),
        ToolCallDelta("call_0", '["x"]'),
        ToolCallEnd("call_0", "search", None, "the arguments are not a JSON object"),
    ]


def test_nameless_function_call_pieces_are_no_calls() -> None:
    # Vertex's streamed-argument pieces end a call with {"functionCall": {}}; never requested.
    assert _parse(_event([{"functionCall": {}}], "STOP")) == [Finish("stop")]


def test_generated_ids_are_unique_per_call_and_carried_by_every_event() -> None:
    data = _event([{"functionCall": {"name": "a"}}, {"functionCall": {"name": "b"}}], "STOP")
    first, second = GeminiStreamParser(), GeminiStreamParser()
    events = [*first.feed(data), *first.close()]
    ids = [e.call_id for e in events if isinstance(e, ToolCallStart | ToolCallDelta | ToolCallEnd)]
    assert ids[:3] == [ids[0]] * 3
    assert ids[3:] == [ids[3]] * 3
    assert ids[0].startswith("call_")
    assert ids[0] != ids[3]
    again = [e for e in [*second.feed(data), *second.close()] if isinstance(e, ToolCallStart)]
    assert again[0].call_id not in ids


# ---- non-streaming ---------------------------------------------------------------------------


def test_completion_with_thoughts_text_and_parallel_calls() -> None:
    body = json.dumps(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "**Plan**", "thought": True},
                            {"text": "Let me check."},
                            {
                                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                                "thoughtSignature": SIG_A,
                            },
                            {"functionCall": {"name": "get_weather", "args": {"city": "Tokyo"}}},
                        ],
                    },
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": USAGE,
        },
        indent=2,
    ).encode()
    result = DIALECT.completion(body)
    assert isinstance(result, Completion)
    assert (result.text, result.finish_reason, result.usage) == (
        "Let me check.",
        "tool_calls",
        Usage(120, 130, reasoning_tokens=100),
    )
    ends = [e for e in result.parts if isinstance(e, ToolCallEnd)]
    assert [(e.name, e.arguments) for e in ends] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Tokyo"}),
    ]
    first = ends[0].call_id
    assert result.parts == [
        ReasoningDelta("**Plan**"),
        ToolCallStart(0, first, "get_weather"),
        ToolCallDelta(first, '{"city":"Paris"}'),
        ends[0],
        ToolCallStart(1, ends[1].call_id, "get_weather"),
        ToolCallDelta(ends[1].call_id, '{"city":"Tokyo"}'),
        ends[1],
        _state(calls={first: SIG_A}),
    ]


# ---- requests --------------------------------------------------------------------------------

WEATHER = Tool(
    name="get_weather",
    description="Current weather for a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"$ref": "#/$defs/Unit"}},
        "required": ["city"],
        "$defs": {"Unit": {"enum": ["c", "f"]}},
    },
)
CLOCK = Tool(name="clock")


def _body(**fields: Any) -> dict[str, Any]:
    fields.setdefault("messages", [ChatMessage("user", "hi")])
    request = GenerationRequest(model="gemini-2.5-flash", **fields)
    body: dict[str, Any] = json.loads(DIALECT.request(request, stream=True).body)
    return body


def test_tools_are_function_declarations_with_their_json_schema() -> None:
    body = _body(tools=[WEATHER, CLOCK])
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parametersJsonSchema": WEATHER.parameters,
                },
                {"name": "clock"},
            ]
        }
    ]
    assert "toolConfig" not in body


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (ToolChoiceName("clock"), {"mode": "ANY", "allowedFunctionNames": ["clock"]}),
    ],
)
def test_tool_choice_is_the_function_calling_mode(choice: ToolChoice, config: dict[str, Any]) -> None:
    assert _body(tools=[WEATHER, CLOCK], tool_choice=choice)["toolConfig"] == {
        "functionCallingConfig": config
    }


def test_tool_choice_none_without_tools_sends_nothing() -> None:
    body = _body(tool_choice="none")
    assert "tools" not in body
    assert "toolConfig" not in body


@pytest.mark.parametrize(
    ("reasoning", "thinking"),
    [
        (Reasoning(), {"includeThoughts": True}),
        (Reasoning(effort="low"), {"includeThoughts": True, "thinkingBudget": 1024}),
        (Reasoning(effort="medium"), {"includeThoughts": True, "thinkingBudget": 8192}),
        (Reasoning(effort="high"), {"includeThoughts": True, "thinkingBudget": 24576}),
        (Reasoning(budget_tokens=3000), {"includeThoughts": True, "thinkingBudget": 3000}),
        (Reasoning(effort="high", budget_tokens=512), {"includeThoughts": True, "thinkingBudget": 512}),
    ],
)
def test_reasoning_is_the_thinking_config(reasoning: Reasoning, thinking: dict[str, Any]) -> None:
    assert _body(reasoning=reasoning)["generationConfig"] == {"thinkingConfig": thinking}


def test_response_formats() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    assert "generationConfig" not in _body(response_format=TextFormat())
    assert _body(response_format=JsonFormat())["generationConfig"] == {"responseMimeType": "application/json"}
    assert _body(response_format=JsonSchemaFormat(name="city", schema=schema, strict=True))[
        "generationConfig"
    ] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }


def test_images_are_inline_data_in_their_place_among_the_text() -> None:
    content: list[TextPart | ImagePart] = [
        TextPart("Compare "),
        ImagePart(f"data:image/png;base64,{PNG}"),
        TextPart(" with "),
        ImagePart(f"data:IMAGE/JPEG;base64,{PNG}"),
    ]
    assert _body(messages=[ChatMessage("user", content)])["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "Compare "},
                {"inlineData": {"mimeType": "image/png", "data": PNG}},
                {"text": " with "},
                {"inlineData": {"mimeType": "image/jpeg", "data": PNG}},
            ],
        }
    ]


def _state_json(**fields: Any) -> str:
    return json.dumps({"provider": "gemini", **fields})


TURN = [
    ChatMessage("system", "Be brief."),
    ChatMessage("user", "Weather in Oslo and Paris?"),
    ChatMessage(
        "assistant",
        "Checking.",
        tool_calls=[
            ToolCall(call_id="call_a", name="get_weather", arguments={"city": "Oslo"}),
            ToolCall(call_id="fc-2", name="get_weather", arguments={"city": "Paris"}),
            ToolCall(call_id="call_c", name="clock", arguments=None, arguments_error="not JSON"),
        ],
        provider_state=_state_json(
            text="SIG_TEXT",
            calls={"call_a": "SIG_CALL"},
            thoughts=[{"text": "**Plan**", "signature": "SIG_THOUGHT"}],
            ids=["fc-2"],
        ),
    ),
    ChatMessage("tool", '{"temp_c": 4}', tool_call_id="call_a"),
    ChatMessage("tool", "rain, 11 °C", tool_call_id="fc-2"),
    ChatMessage("tool", "[1, 2]", tool_call_id="call_c"),
    ChatMessage("user", "Thanks!"),
]


def test_assistant_calls_replay_each_signature_on_its_part_and_results_answer_by_name() -> None:
    assert _body(messages=TURN, tools=[WEATHER, CLOCK])["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Oslo and Paris?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "**Plan**", "thought": True, "thoughtSignature": "SIG_THOUGHT"},
                {"text": "Checking.", "thoughtSignature": "SIG_TEXT"},
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                    "thoughtSignature": "SIG_CALL",
                },
                {"functionCall": {"name": "get_weather", "id": "fc-2", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "clock"}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 4}}},
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"output": "rain, 11 °C"},
                        "id": "fc-2",
                    }
                },
                {"functionResponse": {"name": "clock", "response": {"output": "[1, 2]"}}},
                {"text": "Thanks!"},
            ],
        },
    ]


@pytest.mark.parametrize(
    "state",
    [
        "not json",
        '{"provider": "anthropic", "blocks": [{"type": "thinking", "signature": "x"}]}',
        '{"provider": "gemini", "calls": ["not", "a", "map"]}',
        '{"calls": {"call_a": "SIG"}}',
        "[]",
        "",
    ],
)
def test_a_foreign_or_garbage_provider_state_is_ignored(state: str) -> None:
    message = ChatMessage(
        "assistant",
        "",
        tool_calls=[ToolCall(call_id="call_a", name="clock", arguments={})],
        provider_state=state,
    )
    messages = [ChatMessage("user", "time?"), message, ChatMessage("tool", "12:00", tool_call_id="call_a")]
    assert _body(messages=messages)["contents"][1:] == [
        {"role": "model", "parts": [{"functionCall": {"name": "clock", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "clock", "response": {"output": "12:00"}}}]},
    ]


def test_a_recorded_turn_goes_back_with_its_signature_on_the_call() -> None:
    name = "gemini-3pro-function-call-signature.chunks.txt"
    parser = GeminiStreamParser()
    events: list[StreamEvent] = [*parser.feed(gemini_sse(name)), *parser.close()]
    (end,) = [e for e in events if isinstance(e, ToolCallEnd)]
    (state,) = [e for e in events if isinstance(e, ProviderState)]
    assistant = ChatMessage(
        "assistant",
        "",
        tool_calls=[ToolCall(call_id=end.call_id, name=end.name, arguments=end.arguments)],
        provider_state=state.data,
    )
    messages = [
        ChatMessage("user", "Weather in SF?"),
        assistant,
        ChatMessage("tool", "sunny", tool_call_id=end.call_id),
    ]
    (signature,) = [p["thoughtSignature"] for p in _parts(name) if "thoughtSignature" in p]
    assert _body(messages=messages)["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "weather", "args": {"location": "San Francisco"}},
                    "thoughtSignature": signature,
                }
            ],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "weather", "response": {"output": "sunny"}}}],
        },
    ]


# ---- refused before the stream ---------------------------------------------------------------


def _unsupported(messages: list[ChatMessage]) -> str | None:
    return DIALECT.unsupported(GenerationRequest(model="m", messages=messages))


def test_an_https_image_is_unsupported() -> None:
    content: list[TextPart | ImagePart] = [
        TextPart("What is this?"),
        ImagePart("https://example.com/cat.png"),
    ]
    assert _unsupported([ChatMessage("user", content)]) == "image URLs: gemini takes only inline data: images"


def test_a_tool_result_for_an_unknown_call_is_unsupported() -> None:
    messages = [ChatMessage("user", "hi"), ChatMessage("tool", "12:00", tool_call_id="call_zz")]
    assert _unsupported(messages) == (
        "the tool result for `call_zz` answers no call of an assistant message: "
        "gemini needs the name of the tool it answers"
    )


def test_a_served_request_is_not_unsupported() -> None:
    content: list[TextPart | ImagePart] = [TextPart("Look"), ImagePart(f"data:image/png;base64,{PNG}")]
    assert _unsupported([ChatMessage("user", content)]) is None
    assert _unsupported(TURN) is None
