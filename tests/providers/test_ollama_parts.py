"""Ollama typed parts: whole tool calls and thinking on NDJSON transcripts (reference §6 shapes)
and the recorded text streams, in every split; the request fields; what is refused."""

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
from providers import tool_calls
from providers.base import (
    Completion,
    Finish,
    GenerationRequest,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from providers.dialect import ProviderSettings
from providers.dialects.ollama import OllamaDialect, OllamaStreamParser
from tests.support.call_ids import NumberedIds
from tests.support.recorded import recorded
from tests.support.transcripts import events_in_every_split

Parse = Callable[[bytes], list[Any]]
DIALECT = OllamaDialect(ProviderSettings(base_url="127.0.0.1:11434", default_model="llama3.2"))
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture
def numbered(monkeypatch: pytest.MonkeyPatch) -> Parse:
    """``_parse`` with the ids an old server does not give numbered: call_0, call_1, …"""
    ids = NumberedIds(monkeypatch, tool_calls)
    return lambda data: events_in_every_split(ids.fresh(OllamaStreamParser), data)


def _parse(data: bytes) -> list[Any]:
    return events_in_every_split(OllamaStreamParser, data)


def _line(model: str = "qwen3", *, done: bool = False, **message: Any) -> bytes:
    doc: dict[str, Any] = {
        "model": model,
        "created_at": "2026-01-01T10:00:03.5Z",
        "message": {"role": "assistant", "content": "", **message},
        "done": done,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _done(reason: str = "stop", model: str = "qwen3") -> bytes:
    doc = {
        "model": model,
        "created_at": "2026-01-01T10:00:04Z",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": reason,
        "total_duration": 182242375,
        "load_duration": 41295167,
        "prompt_eval_count": 169,
        "prompt_eval_duration": 24573166,
        "eval_count": 15,
        "eval_duration": 115959084,
    }
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def _call(
    name: str, arguments: dict[str, Any], index: int | None = None, call_id: str | None = None
) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name, "arguments": arguments}
    if index is not None:
        function = {"index": index, **function}
    return {"function": function} if call_id is None else {"id": call_id, "function": function}


USAGE = Usage(169, 15)

# ---- recorded text streams -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ollama-llama3-chat.ndjson", "ollama-llama3-chat-async.ndjson"])
def test_recorded_text_streams(name: str) -> None:
    docs = [json.loads(line) for line in recorded(name).splitlines() if line.strip()]
    texts = [TextDelta(d["message"]["content"]) for d in docs if d["message"]["content"]]
    last = docs[-1]
    assert last["done"] is True
    assert _parse(recorded(name)) == [
        *texts,
        Usage(last["prompt_eval_count"], last["eval_count"]),
        Finish(last["done_reason"]),
    ]


# ---- transcripts -----------------------------------------------------------------------------


def test_a_current_server_call_keeps_its_id() -> None:
    # The reference's own example (PWF §6.3): id and function.index on a current server.
    data = _line("llama3.2", tool_calls=[_call("get_weather", {"city": "Oslo"}, 0, "call_x1y2")]) + _done(
        model="llama3.2"
    )
    assert _parse(data) == [
        ToolCallStart(0, "call_x1y2", "get_weather"),
        ToolCallDelta("call_x1y2", '{"city":"Oslo"}'),
        ToolCallEnd("call_x1y2", "get_weather", {"city": "Oslo"}),
        USAGE,
        Finish("tool_calls"),
    ]


def test_thinking_then_parallel_calls_from_an_old_server(numbered: Parse) -> None:
    # qwen3 with think: the thinking first; two calls in one object, a third in the next; no ids.
    data = (
        _line(thinking="Need both cities.")
        + _line(thinking=" And the time.")
        + _line(
            tool_calls=[
                _call("get_temperature", {"city": "New York"}),
                _call("get_temperature", {"city": "Zürich"}),
            ]
        )
        + _line(tool_calls=[_call("get_time", {})])
        + _done()
    )
    assert numbered(data) == [
        ReasoningDelta("Need both cities."),
        ReasoningDelta(" And the time."),
        ToolCallStart(0, "call_0", "get_temperature"),
        ToolCallDelta("call_0", '{"city":"New York"}'),
        ToolCallEnd("call_0", "get_temperature", {"city": "New York"}),
        ToolCallStart(1, "call_1", "get_temperature"),
        ToolCallDelta("call_1", '{"city":"Zürich"}'),
        ToolCallEnd("call_1", "get_temperature", {"city": "Zürich"}),
        ToolCallStart(2, "call_2", "get_time"),
        ToolCallDelta("call_2", "{}"),
        ToolCallEnd("call_2", "get_time", {}),
        USAGE,
        Finish("tool_calls"),
    ]


def test_thinking_and_content_in_one_object_reasoning_first() -> None:
    data = _line(thinking="17\u00d723 = 391", content="391") + _done()
    assert _parse(data) == [ReasoningDelta("17\u00d723 = 391"), TextDelta("391"), USAGE, Finish("stop")]


def test_json_format_thinks_first_then_streams_the_json() -> None:
    data = _line(thinking="A city object.") + _line(content='{"city": ') + _line(content='"Oslo"}') + _done()
    assert _parse(data) == [
        ReasoningDelta("A city object."),
        TextDelta('{"city": '),
        TextDelta('"Oslo"}'),
        USAGE,
        Finish("stop"),
    ]


def test_a_call_without_arguments_and_one_on_the_done_object(numbered: Parse) -> None:
    last = json.loads(_done())
    last["message"]["tool_calls"] = [{"function": {"name": "get_time"}}]
    data = _line(content="Let me look.") + json.dumps(last).encode() + b"\n"
    assert numbered(data) == [
        TextDelta("Let me look."),
        ToolCallStart(0, "call_0", "get_time"),
        ToolCallDelta("call_0", "{}"),
        ToolCallEnd("call_0", "get_time", {}),
        USAGE,
        Finish("tool_calls"),
    ]


def test_a_call_before_the_length_limit_ends_with_length(numbered: Parse) -> None:
    data = _line(tool_calls=[_call("search", {"q": "x"})]) + _done("length")
    assert numbered(data)[-1] == Finish("length")


def test_completion_with_thinking_and_calls() -> None:
    body = json.loads(_done())
    body["message"] = {
        "role": "assistant",
        "content": "",
        "thinking": "Both cities.",
        "tool_calls": [_call("get_temperature", {"city": "Paris"}, 0, "call_ab12cd34")],
    }
    result = DIALECT.completion(json.dumps(body).encode())
    assert result == Completion(
        "",
        "tool_calls",
        USAGE,
        [
            ReasoningDelta("Both cities."),
            ToolCallStart(0, "call_ab12cd34", "get_temperature"),
            ToolCallDelta("call_ab12cd34", '{"city":"Paris"}'),
            ToolCallEnd("call_ab12cd34", "get_temperature", {"city": "Paris"}),
        ],
    )


# ---- requests --------------------------------------------------------------------------------

WEATHER = Tool(
    name="get_temperature",
    description="Current temperature",
    parameters={"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}},
)
CLOCK = Tool(name="clock")


def _body(**fields: Any) -> dict[str, Any]:
    fields.setdefault("messages", [ChatMessage("user", "hi")])
    body: dict[str, Any] = json.loads(
        DIALECT.request(GenerationRequest(model="qwen3", **fields), stream=True).body
    )
    return body


def test_tools_in_openai_shape() -> None:
    assert _body(tools=[WEATHER, CLOCK])["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_temperature",
                "description": "Current temperature",
                "parameters": WEATHER.parameters,
            },
        },
        {
            "type": "function",
            "function": {"name": "clock", "parameters": {"type": "object", "properties": {}}},
        },
    ]


@pytest.mark.parametrize(("choice", "sent"), [(None, True), ("auto", True), ("none", False)])
def test_tool_choice_auto_sends_the_tools_none_sends_none(choice: ToolChoice | None, sent: bool) -> None:
    assert ("tools" in _body(tools=[CLOCK], tool_choice=choice)) is sent


@pytest.mark.parametrize(
    ("reasoning", "think"),
    [
        (Reasoning(), True),
        (Reasoning(effort="low"), "low"),
        (Reasoning(effort="high", budget_tokens=9000), "high"),
        (Reasoning(budget_tokens=2048), True),
    ],
)
def test_reasoning_is_think(reasoning: Reasoning, think: bool | str) -> None:
    assert _body(reasoning=reasoning)["think"] == think


def test_response_formats() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    assert "format" not in _body(response_format=TextFormat())
    assert _body(response_format=JsonFormat())["format"] == "json"
    assert _body(response_format=JsonSchemaFormat(schema=schema))["format"] == schema


def test_a_plain_request_has_none_of_the_new_fields() -> None:
    assert set(_body()) == {"model", "messages", "stream"}


def test_images_are_raw_base64_on_the_message() -> None:
    content: list[TextPart | ImagePart] = [
        TextPart("What is "),
        ImagePart(f"data:image/png;base64,{PNG}"),
        TextPart("this?"),
        ImagePart(f"data:image/webp;base64,{PNG[:8]}"),
    ]
    assert _body(messages=[ChatMessage("user", content)])["messages"] == [
        {"role": "user", "content": "What is this?", "images": [PNG, PNG[:8]]}
    ]


def test_assistant_calls_and_tool_results_by_name() -> None:
    messages = [
        ChatMessage("user", "Temperature in New York and London?"),
        ChatMessage(
            "assistant",
            None,
            tool_calls=[
                ToolCall(call_id="call_ny", name="get_temperature", arguments={"city": "New York"}),
                ToolCall(
                    call_id="call_ld", name="get_temperature", arguments=None, arguments_error="bad JSON"
                ),
            ],
            provider_state='{"provider": "gemini", "calls": {"call_ny": "SIG"}}',
        ),
        ChatMessage("tool", "22°C", tool_call_id="call_ny"),
        ChatMessage("tool", "15°C", tool_call_id="call_ld"),
    ]
    assert _body(messages=messages, tools=[WEATHER])["messages"][1:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_ny", "function": {"name": "get_temperature", "arguments": {"city": "New York"}}},
                {"id": "call_ld", "function": {"name": "get_temperature", "arguments": {}}},
            ],
        },
        {"role": "tool", "content": "22°C", "tool_name": "get_temperature", "tool_call_id": "call_ny"},
        {"role": "tool", "content": "15°C", "tool_name": "get_temperature", "tool_call_id": "call_ld"},
    ]


# ---- refused before the stream ---------------------------------------------------------------


def _unsupported(**fields: Any) -> str | None:
    fields.setdefault("messages", [ChatMessage("user", "hi")])
    return DIALECT.unsupported(GenerationRequest(model="qwen3", **fields))


def test_a_forced_tool_is_unsupported() -> None:
    assert (
        _unsupported(tools=[CLOCK], tool_choice="required")
        == 'tool_choice "required": ollama cannot force a tool call'
    )
    assert _unsupported(tools=[CLOCK], tool_choice=ToolChoiceName("clock")) == (
        "tool_choice `clock`: ollama cannot force a tool call"
    )
    assert _unsupported(tools=[CLOCK], tool_choice="auto") is None
    assert _unsupported(tools=[CLOCK], tool_choice="none") is None


def test_an_https_image_and_an_unknown_call_are_unsupported() -> None:
    image: list[TextPart | ImagePart] = [ImagePart("https://example.com/cat.png")]
    assert (
        _unsupported(messages=[ChatMessage("user", image)])
        == "image URLs: ollama takes only inline data: images"
    )
    orphan = [ChatMessage("user", "hi"), ChatMessage("tool", "22°C", tool_call_id="call_zz")]
    assert _unsupported(messages=orphan) == (
        "the tool result for `call_zz` answers no call of an assistant message: "
        "ollama needs the name of the tool it answers"
    )
