"""Anthropic Messages beyond text: tool calls, thinking and its provider state, server tools,
images, structured output. Recorded streams and new transcripts fed whole, byte by byte and in
seeded random splits; request bodies field by field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from anthropic.lib.streaming._messages import accumulate_event

from protocol.messages import (
    ChatMessage,
    ImagePart,
    JsonFormat,
    JsonSchemaFormat,
    Options,
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
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from providers.dialect import ProviderSettings
from providers.dialects.anthropic import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODEL,
    JSON_INSTRUCTION,
    AnthropicDialect,
    AnthropicStreamParser,
)
from tests.support.anthropic_bytes import (
    MESSAGE_STOP,
    PING,
    block_start,
    block_stop,
    frame_chunks,
    input_json,
    message_delta,
    message_start,
    signature,
    text,
    thinking,
    thinking_start,
    tool_use_start,
)
from tests.support.transcripts import events_in_every_split

RECORDED = Path(__file__).parent / "recorded"
SETTINGS = ProviderSettings(
    api_key="sk-ant-test", base_url="https://api.example", default_model=DEFAULT_MODEL
)
DIALECT = AnthropicDialect(SETTINGS)


def _recording(name: str) -> bytes:
    data = (RECORDED / name).read_bytes()
    return frame_chunks(data) if name.endswith(".chunks.txt") else data


def _parse(data: bytes) -> list[Any]:
    return events_in_every_split(AnthropicStreamParser, data)


def _state(*blocks: dict[str, str]) -> ProviderState:
    state = {"provider": "anthropic", "blocks": list(blocks)}
    return ProviderState(json.dumps(state, separators=(",", ":"), ensure_ascii=False))


def _texts(events: list[Any]) -> list[str]:
    return [e.text for e in events if type(e) is TextDelta]


def _other(events: list[Any]) -> list[Any]:
    return [e for e in events if type(e) is not TextDelta]


# ---- recorded streams -------------------------------------------------------------------------

SIGNATURE = (
    "EvMCCkYICxgCKkCHP2cSuEdcJK/0rFwqES/ecn+VurRpNTwI4XNyM0vnNfGsc9OmE8YYHauwBZ/uaRpmlEn2I4/kszHlcpptO82J"
    "EgyRMSbPkJYaegxYF3AaDHZbSm9EzZ6CM+YtliIw3iNVP/ilYrfoneo8S2+ad/5xSC62nKbk6joLtKmqXgXwYFJRpjIUjM2V7EGR"
    "eOPRKtoBKfNHVmdNf7SeMhHalX/ObSeJ1G/NjDyGQAsDjyHGd7uY1r5gAIn3Cpdv5r+gHYJmWT+w2uiKZsBDRoSf4O3Km0l752Eh"
    "PD4InEhqpCKyqhbUZ3dt5+JVKQHk2iyTBhQMB/XBYgZTstIpRqQRXU5ypcrydgnqj3mD1G9C7YC0ZTCNvFluAx0OL8q+cQwufgfq"
    "KquLEf2+XMYzhx9jYkVFEpnf/s1nx6gNBATKfF3Dmrs2r4tWu2QJB+FjlRuDp/8dxUxgJbmyhGxb7XsYeb1vgb7wwzDvP/UhjfQYAQ=="
)
REDACTED = (
    "EqkECkYIBxgCKkA8AZ4noDfV5VcOJe/p3JTRB6Xz5297mrWhl3MbHSXDKTMfuB/Z52U2teiWWTN0gg4eQ4bGS9TPilFX/xWTIq9H"
    "EgyOmstSPriNwyn1G7AaDC51r0hQ062qEd55IiIwYQj3Z3MSBBv0bSVdXi60LEHDvC7tzzmpQfw5Hb6R9rtyOz/6vC/xPw9/E1mU"
    "qfBqKpADO2HS2QlE/CnuzR901nZOn0TOw7kEXwH7kg30c85b9W7iKALgEejY9sELMBdPyIZNlTgKqNOKtY3R/aV5rGIRPTHh2Wh9"
    "Ijmqsf/TT7i//Z+InaYTo6f/fxF8R0vFXMRPOBME4XIscb05HcNhh4c9FDkpqQGYKaq31IR1NNwPWA0BsvdDz7SIo1nfx4H+X0qK"
    "KqqegKnQ3ynaXiD5ydT1C4U7fku4ftgF0LGwIk4PwXBE+4BP0DcKr1HV3cn7YSyNakBSDTvRJMKcXW6hl7X3w2a4//sxjC1Cjq0u"
    "zkIHkhzRWirN0OSXt+g3m6b1ex0wGmSyuO17Ak6kgVBpxwPugtrqsflG0oujFem44hecXJ9LQNssPf4RSlcydiG8EXp/XLGTe0Yf"
    "Hbe3kJagkowSH/Dm6ErXBiVs7249brncyY8WA+7MOoqIM82YIU095B9frCqDJDUWnN84VwOszRrcaywmpJXZO4aeQLMC1kXD5Wab"
    "u+O/00tD/X67EWkkWuR0AhDIXXjpot45vnBd4ewJ/hgB",
    "EtgBCkYIBxgCKkDQfGkwzflEJP5asG3oQfJXcTwJLoRznn8CmuczWCsJ36dv93X9H0NCeaJRbi5BrCA2DyMgFnRKRuzZx8VTv5ax"
    "EgwkFmcHJk8BSiZMZRQaDDYv2KZPfbFgRa2QjyIwm47f5YYsSK9CT/oh/WWpU1HJJVHr8lrC6HG1ItRdtMvYQYmEGy+KhyfcIACf"
    "bssVKkDGv/NKqNMOAcu0bd66gJ2+R1R0PX11Jxn2Nd1JtZqkxx7vMT/PXtHDhm9jkDZ2k/6RjRRFuab/DBV3yRYdZ1J0GAE=",
)


def test_recorded_plain_text() -> None:
    assert _parse(_recording("anthropic-sonnet45-text.chunks.txt")) == [
        TextDelta("Hello"),
        TextDelta("! I"),
        TextDelta("'m doing well, thank you for asking"),
        TextDelta(". How are you doing today?"),
        TextDelta(" Is"),
        TextDelta(" there anything I can help you with?"),
        Usage(12, 30, cached_tokens=0),
        Finish("stop"),
    ]


def test_recorded_tool_use_only() -> None:
    call = "toolu_01KFbKqPYSuAKujiL6mTfzYA"
    first = '{"elements": [{"location": "San Francisco", "temperature": 58, "condition": "sunny"}]'
    assert _parse(_recording("anthropic-haiku45-tool-use-only.chunks.txt")) == [
        ToolCallStart(0, call, "json"),
        ToolCallDelta(call, first),
        ToolCallDelta(call, "}"),
        ToolCallEnd(
            call,
            "json",
            {"elements": [{"location": "San Francisco", "temperature": 58, "condition": "sunny"}]},
        ),
        Usage(849, 47, cached_tokens=0),
        Finish("tool_calls"),
    ]


def test_recorded_text_then_a_tool_without_arguments() -> None:
    # The only input fragment is "": no delta, and the arguments are {}.
    call = "toolu_01QE1WLsSVp5hy5Q3GmGTmjP"
    assert _parse(_recording("anthropic-sonnet45-text-then-tool-use.chunks.txt")) == [
        TextDelta("I'll update the issue list for"),
        TextDelta(" you."),
        ToolCallStart(0, call, "updateIssueList"),
        ToolCallEnd(call, "updateIssueList", {}),
        Usage(565, 48, cached_tokens=0),
        Finish("tool_calls"),
    ]


def test_recorded_message_delta_input_tokens_replace_message_start() -> None:
    # 43 in message_start, 61 in message_delta; no cache fields at all: no cached_tokens.
    assert _parse(_recording("anthropic-message-delta-input-tokens.chunks.txt")) == [
        TextDelta("p"),
        TextDelta("ong"),
        Usage(61, 2),
        Finish("stop"),
    ]


def test_recorded_refusal_without_content() -> None:
    assert _parse(_recording("anthropic-refusal.chunks.txt")) == [
        Usage(18, 5, cached_tokens=0),
        Finish("content_filter"),
    ]


def test_recorded_compaction_block_is_not_text_and_delta_usage_replaces_cache_reads() -> None:
    # message_start: 100 + 55096 cache reads (the compaction pass); message_delta: 181 and 0.
    assert _parse(_recording("anthropic-compaction-cache-usage.sse")) == [
        TextDelta("Hello!"),
        TextDelta(" "),
        TextDelta("👋"),
        Usage(181, 8, cached_tokens=0),
        Finish("stop"),
    ]


def test_recorded_thinking_signature_becomes_the_provider_state() -> None:
    events = _parse(_recording("anthropic-sonnet4-thinking.sse"))
    reasoning = (
        "This is a straightforward question about pedestrian safety. I should provide clear, helpful "
        "advice about how to safely cross a street. This is basic safety information that could help "
        "prevent accidents."
    )
    reasoning_deltas = [e for e in events if type(e) is ReasoningDelta]
    assert len(reasoning_deltas) == 13  # the empty thinking_delta before the signature says nothing
    assert "".join(e.text for e in reasoning_deltas) == reasoning
    assert events[13] == TextDelta("Here are")
    texts = _texts(events)
    assert len(texts) == 95
    assert texts[-3:] == [" when", " crossing", " streets."]
    assert "".join(texts).startswith("Here are the basic steps for safely crossing the street:\n\n**At")
    assert events[-3:] == [
        _state({"type": "thinking", "thinking": reasoning, "signature": SIGNATURE}),
        Usage(43, 282, cached_tokens=0),
        Finish("stop"),
    ]


def test_recorded_redacted_thinking_is_kept_whole_in_order() -> None:
    events = _parse(_recording("anthropic-redacted-thinking.sse"))
    assert _texts(events) == [
        "I notice that you've sent what",
        " appears to be some",
        " kind of test string",
        " or command. I don't have",
        ' any special "magic string"',
        " triggers or backdoor commands",
        " that would expose internal systems or",
        " change my behavior.",
        "\n\nI'm Claude",
        ", an AI assistant create",
        "d by Anthropic to",
        " be helpful, harmless",
        ", and honest. How",
        " can I assist you today with",
        " a legitimate task or question?",
    ]
    assert _other(events) == [
        _state(
            {"type": "redacted_thinking", "data": REDACTED[0]},
            {"type": "redacted_thinking", "data": REDACTED[1]},
        ),
        Usage(92, 189, cached_tokens=0),
        Finish("stop"),
    ]


def test_recorded_web_search_is_no_client_tool_call_and_citations_are_not_text() -> None:
    # server_tool_use runs on Anthropic's side: its input fragments, the web_search_tool_result
    # block and the citations_delta say nothing; the turn ends end_turn, a plain stop.
    events = _parse(_recording("anthropic-web-search-citations.sse"))
    assert _texts(events) == [
        "Let",
        " me search for a significant",
        " historical event that occurred on",
        " September 18th.",
        "Here",
        "'s one notable historical event that occurred on September",
        " 18th: ",
        "On September 18, 1793, President George Washington marke",
        "d the location for the Capitol Building",
        " in Washington DC, and he",
        " would return periodically to oversee its",
        " construction personally",
        ".",
    ]
    assert _other(events) == [Usage(12957, 152, cached_tokens=0), Finish("stop")]


def _sent_back(block: dict[str, Any]) -> dict[str, str]:
    """A thinking block as the API takes it back (the SDK's type has more fields)."""
    fields = ("thinking", "signature") if block["type"] == "thinking" else ("data",)
    return {"type": block["type"], **{name: block[name] for name in fields}}


RECORDINGS = sorted(path.name for path in RECORDED.glob("anthropic-*"))


@pytest.mark.parametrize("name", RECORDINGS)
def test_recordings_agree_with_the_official_sdk(name: str) -> None:
    """The official SDK's own accumulator, over the same events, ends with the same text, tool
    calls, thinking blocks and token counts."""
    events = _parse(_recording(name))
    payloads = [
        json.loads(line.removeprefix(b"data:"))
        for line in _recording(name).splitlines()
        if line.startswith(b"data:") and b'"ping"' not in line
    ]
    message, buffers = None, dict[int, bytes]()
    for payload in payloads:
        message = accumulate_event(event=payload, current_snapshot=message, json_bufs=buffers)
    assert message is not None
    blocks = message.content
    assert "".join(_texts(events)) == "".join(b.text for b in blocks if b.type == "text")
    ends = [(e.call_id, e.name, e.arguments) for e in events if type(e) is ToolCallEnd]
    assert ends == [(b.id, b.name, b.input) for b in blocks if b.type == "tool_use"]
    kept = [_sent_back(b.to_dict()) for b in blocks if b.type in ("thinking", "redacted_thinking")]
    states = [e for e in events if type(e) is ProviderState]
    assert states == ([_state(*kept)] if kept else [])
    usage = message.usage
    prompt = (
        usage.input_tokens + (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)
    )
    assert events[-2] == Usage(prompt, usage.output_tokens, cached_tokens=usage.cache_read_input_tokens)


# ---- new transcripts --------------------------------------------------------------------------


def test_two_tool_calls_in_one_turn_are_numbered_in_order() -> None:
    data = (
        message_start()
        + block_start(0)
        + text("Checking both.", 0)
        + block_stop(0)
        + tool_use_start(1, "toolu_01A", "get_weather")
        + input_json(1, "")
        + input_json(1, '{"city": ')
        + PING
        + input_json(1, '"Oslo"}')
        + block_stop(1)
        + tool_use_start(2, "toolu_01B", "get_time")
        + input_json(2, "")
        + block_stop(2)
        + message_delta("tool_use", '{"output_tokens":80}')
        + MESSAGE_STOP
    )
    assert _parse(data) == [
        TextDelta("Checking both."),
        ToolCallStart(0, "toolu_01A", "get_weather"),
        ToolCallDelta("toolu_01A", '{"city": '),
        ToolCallDelta("toolu_01A", '"Oslo"}'),
        ToolCallEnd("toolu_01A", "get_weather", {"city": "Oslo"}),
        ToolCallStart(1, "toolu_01B", "get_time"),
        ToolCallEnd("toolu_01B", "get_time", {}),
        Usage(21, 80, cached_tokens=0),
        Finish("tool_calls"),
    ]


def test_arguments_split_mid_escape_and_mid_character() -> None:
    # Fragments cut after a backslash, inside a \u escape and between the characters of a
    # multibyte string; every byte split of the stream also cuts the UTF-8 of 日本 and 🎉.
    fragments = ['{"q": "say \\', '"hi\\" caf\\u00', "e9 日", '本 🎉", "n": [1', ", 2]}"]
    data = message_start() + tool_use_start(0, "toolu_01C", "search")
    data += b"".join(input_json(0, fragment) for fragment in fragments)
    data += block_stop(0) + message_delta("tool_use") + MESSAGE_STOP
    assert _parse(data) == [
        ToolCallStart(0, "toolu_01C", "search"),
        *[ToolCallDelta("toolu_01C", fragment) for fragment in fragments],
        ToolCallEnd("toolu_01C", "search", {"q": 'say "hi" café 日本 🎉', "n": [1, 2]}),
        Usage(21, 7, cached_tokens=0),
        Finish("tool_calls"),
    ]


def test_invalid_argument_json_ends_the_call_with_an_error_and_the_stream_goes_on() -> None:
    data = (
        message_start()
        + tool_use_start(0, "toolu_01D", "calc")
        + input_json(0, '{"a": 1,,}')
        + block_stop(0)
        + tool_use_start(1, "toolu_01E", "calc")
        + input_json(1, "[1, 2]")
        + block_stop(1)
        + message_delta("tool_use")
        + MESSAGE_STOP
    )
    error = "the arguments are not valid JSON: JSON is malformed: object keys must be strings (byte 8)"
    assert _parse(data) == [
        ToolCallStart(0, "toolu_01D", "calc"),
        ToolCallDelta("toolu_01D", '{"a": 1,,}'),
        ToolCallEnd("toolu_01D", "calc", None, error),
        ToolCallStart(1, "toolu_01E", "calc"),
        ToolCallDelta("toolu_01E", "[1, 2]"),
        ToolCallEnd("toolu_01E", "calc", None, "the arguments are not a JSON object"),
        Usage(21, 7, cached_tokens=0),
        Finish("tool_calls"),
    ]


def test_a_tool_call_cut_by_max_tokens_ends_at_message_delta_with_an_error() -> None:
    # As recorded (anthropic-sdk-python incomplete_partial_json_response.txt): no content_block_stop,
    # and spaces after the JSON of each data line.
    data = (
        message_start()
        + block_start(0)
        + text("Filing:", 0)
        + block_stop(0)
        + tool_use_start(1, "toolu_01F", "make_note")
        + input_json(1, '{"title": ')
        + input_json(1, '"\\nFiling taxes')
        + message_delta("max_tokens", '{"output_tokens":124}').replace(b"}\n\n", b"}    \n\n")
        + MESSAGE_STOP
    )
    assert _parse(data) == [
        TextDelta("Filing:"),
        ToolCallStart(0, "toolu_01F", "make_note"),
        ToolCallDelta("toolu_01F", '{"title": '),
        ToolCallDelta("toolu_01F", '"\\nFiling taxes'),
        ToolCallEnd(
            "toolu_01F", "make_note", None, "the arguments are not valid JSON: Input data was truncated"
        ),
        Usage(21, 124, cached_tokens=0),
        Finish("length"),
    ]


def test_thinking_then_tool_use_gives_reasoning_a_call_and_the_signed_block() -> None:
    data = (
        message_start(input_tokens=50, cache_read=1000)
        + thinking_start(0)
        + thinking("Need Oslo ", 0)
        + thinking("weather, in °C.", 0)
        + thinking("", 0)
        + signature("EqQBCgIYAh==", 0)
        + block_stop(0)
        + tool_use_start(1, "toolu_01G", "get_weather")
        + input_json(1, '{"city": "Oslo"}')
        + block_stop(1)
        + message_delta("tool_use", '{"output_tokens":90,"output_tokens_details":{"thinking_tokens":40}}')
        + MESSAGE_STOP
    )
    assert _parse(data) == [
        ReasoningDelta("Need Oslo "),
        ReasoningDelta("weather, in °C."),
        ToolCallStart(0, "toolu_01G", "get_weather"),
        ToolCallDelta("toolu_01G", '{"city": "Oslo"}'),
        ToolCallEnd("toolu_01G", "get_weather", {"city": "Oslo"}),
        _state({"type": "thinking", "thinking": "Need Oslo weather, in °C.", "signature": "EqQBCgIYAh=="}),
        Usage(1050, 90, reasoning_tokens=40, cached_tokens=1000),
        Finish("tool_calls"),
    ]


def test_omitted_thinking_keeps_the_signature_and_unsigned_thinking_is_not_kept() -> None:
    omitted = thinking_start(0) + signature("EsigOnly==", 0) + block_stop(0)  # display: "omitted"
    cut = thinking_start(1) + thinking("and then", 1)  # max_tokens before its signature
    data = message_start() + omitted + cut + message_delta("max_tokens") + MESSAGE_STOP
    assert _parse(data) == [
        ReasoningDelta("and then"),
        _state({"type": "thinking", "thinking": "", "signature": "EsigOnly=="}),
        Usage(21, 7, cached_tokens=0),
        Finish("length"),
    ]


def test_server_tool_input_is_not_a_client_call_even_beside_one() -> None:
    server = block_start(0, '{"type":"server_tool_use","id":"srvtoolu_01","name":"web_search","input":{}}')
    server += input_json(0, '{"query": "x"}') + block_stop(0)
    result = block_start(1, '{"type":"web_search_tool_result","tool_use_id":"srvtoolu_01","content":[]}')
    result += block_stop(1)
    client = tool_use_start(2, "toolu_01H", "save") + input_json(2, '{"ok": true}') + block_stop(2)
    future = block_start(3, '{"type":"fallback","whatever":[1]}') + input_json(3, "{}") + block_stop(3)
    data = message_start() + server + result + client + future + message_delta("tool_use") + MESSAGE_STOP
    assert _parse(data) == [
        ToolCallStart(0, "toolu_01H", "save"),
        ToolCallDelta("toolu_01H", '{"ok": true}'),
        ToolCallEnd("toolu_01H", "save", {"ok": True}),
        Usage(21, 7, cached_tokens=0),
        Finish("tool_calls"),
    ]


def test_a_tool_use_block_that_starts_with_its_input() -> None:
    # A call pre-filled by code execution carries its input in content_block_start.
    block = (
        '{"type":"tool_use","id":"toolu_01I","name":"f","input":{"n":1},"caller":{"type":"code_execution"}}'
    )
    data = message_start() + block_start(0, block) + block_stop(0) + message_delta("tool_use") + MESSAGE_STOP
    assert _parse(data)[:3] == [
        ToolCallStart(0, "toolu_01I", "f"),
        ToolCallDelta("toolu_01I", '{"n":1}'),
        ToolCallEnd("toolu_01I", "f", {"n": 1}),
    ]


# ---- non-streaming ----------------------------------------------------------------------------


def test_completion_with_redacted_thinking_two_calls_and_cache_reads() -> None:
    body = json.dumps(
        {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "redacted_thinking", "data": "EmRed=="},
                {"type": "thinking", "thinking": "Two calls.", "signature": "EqSig=="},
                {"type": "text", "text": "On it."},
                {"type": "tool_use", "id": "toolu_1", "name": "a", "input": {"x": "日本"}},
                {"type": "tool_use", "id": "toolu_2", "name": "b", "input": {}},
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_1",
                    "name": "web_search",
                    "input": {"query": "q"},
                },
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 5, "cache_read_input_tokens": 100, "output_tokens": 30},
        },
        ensure_ascii=False,
    ).encode()
    state = _state(
        {"type": "redacted_thinking", "data": "EmRed=="},
        {"type": "thinking", "thinking": "Two calls.", "signature": "EqSig=="},
    )
    assert DIALECT.completion(body) == Completion(
        "On it.",
        "tool_calls",
        Usage(105, 30, cached_tokens=100),
        [
            ReasoningDelta("Two calls."),
            ToolCallStart(0, "toolu_1", "a"),
            ToolCallDelta("toolu_1", '{"x":"日本"}'),
            ToolCallEnd("toolu_1", "a", {"x": "日本"}),
            ToolCallStart(1, "toolu_2", "b"),
            ToolCallEnd("toolu_2", "b", {}),
            state,
        ],
    )


# ---- requests ---------------------------------------------------------------------------------

WEATHER = Tool(
    name="get_weather",
    description="Current weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CLOCK = Tool(name="get_time")
HELLO = [ChatMessage("user", "Hi")]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def _body(request: GenerationRequest, *, stream: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(DIALECT.request(request, stream=stream).body)
    return body


def _request(**fields: Any) -> GenerationRequest:
    return GenerationRequest(**{"model": "claude-sonnet-4-5", "messages": HELLO, **fields})


def test_tools_map_to_input_schema_with_an_empty_object_for_none() -> None:
    body = _body(_request(tools=[WEATHER, CLOCK]))
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body  # the API's default is auto


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        (ToolChoiceName("get_time"), {"type": "tool", "name": "get_time"}),
    ],
)
def test_tool_choice(choice: ToolChoice, sent: dict[str, str]) -> None:
    assert _body(_request(tools=[WEATHER, CLOCK], tool_choice=choice))["tool_choice"] == sent


def test_tool_choice_none_without_tools_sends_neither() -> None:
    body = _body(_request(tool_choice="none"))
    assert "tools" not in body
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("reasoning", "budget"),
    [
        (Reasoning(effort="low"), 1024),
        (Reasoning(effort="medium"), 4096),
        (Reasoning(effort="high"), 16384),
        (Reasoning(), 4096),
        (Reasoning(budget_tokens=3000), 3000),
        (Reasoning(effort="high", budget_tokens=2000), 2000),  # an explicit budget wins
    ],
)
def test_reasoning_is_a_thinking_budget_and_the_default_max_tokens_holds_it(
    reasoning: Reasoning, budget: int
) -> None:
    request = _request(reasoning=reasoning)
    body = _body(request)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == budget + DEFAULT_MAX_TOKENS
    assert DIALECT.unsupported(request) is None


def test_an_explicit_max_tokens_above_the_budget_is_kept() -> None:
    request = _request(
        reasoning=Reasoning(effort="low"), options=Options(max_tokens=1025, temperature=1, top_p=0.95)
    )
    assert DIALECT.unsupported(request) is None
    body = _body(request)
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (1025, 1, 0.95)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            {"reasoning": Reasoning(budget_tokens=1000)},
            "`reasoning.budget_tokens` (1000) is below anthropic's smallest, 1024",
        ),
        (
            {"reasoning": Reasoning(effort="high"), "options": Options(max_tokens=16384)},
            "`options.max_tokens` (16384) must exceed the thinking budget (16384 tokens): "
            "anthropic counts the thinking in max_tokens",
        ),
        (
            {"reasoning": Reasoning(), "tools": [CLOCK], "tool_choice": "required"},
            "anthropic cannot force a tool (`tool_choice`) while thinking (`reasoning`)",
        ),
        (
            {"reasoning": Reasoning(), "tools": [CLOCK], "tool_choice": ToolChoiceName("get_time")},
            "anthropic cannot force a tool (`tool_choice`) while thinking (`reasoning`)",
        ),
        (
            {"reasoning": Reasoning(), "options": Options(temperature=0.7)},
            "anthropic takes no `options.temperature` but 1 while thinking (`reasoning`)",
        ),
        (
            {"reasoning": Reasoning(), "options": Options(top_p=0.9)},
            "anthropic takes `options.top_p` only from 0.95 to 1 while thinking (`reasoning`)",
        ),
        (
            {
                "messages": [
                    *HELLO,
                    ChatMessage(
                        "assistant", tool_calls=[ToolCall(call_id="toolu_1", name="f", arguments=[1])]
                    ),
                    ChatMessage("tool", "done", tool_call_id="toolu_1"),
                ]
            },
            "tool call `toolu_1`: anthropic takes only a JSON object as `arguments`",
        ),
    ],
)
def test_unsupported_combinations_are_named(fields: dict[str, Any], problem: str) -> None:
    assert DIALECT.unsupported(_request(**fields)) == problem


def test_forced_tools_temperature_and_any_max_tokens_are_fine_without_reasoning() -> None:
    request = _request(
        tools=[CLOCK], tool_choice="required", options=Options(max_tokens=5, temperature=0.2, top_p=0.5)
    )
    assert DIALECT.unsupported(request) is None


def test_json_schema_is_structured_output() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    body = _body(_request(response_format=JsonSchemaFormat(name="place", schema=schema, strict=True)))
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "system" not in body


def test_json_without_a_schema_is_an_instruction_after_the_system_prompts() -> None:
    messages = [ChatMessage("system", "Be brief."), *HELLO]
    body = _body(_request(messages=messages, response_format=JsonFormat()))
    assert body["system"] == "Be brief.\n\n" + JSON_INSTRUCTION
    assert "output_config" not in body
    assert _body(_request(response_format=JsonFormat()))["system"] == JSON_INSTRUCTION
    text_only = _body(_request(response_format=TextFormat()))
    assert "system" not in text_only
    assert "output_config" not in text_only


def test_images_by_url_and_inline_in_the_order_given() -> None:
    content: list[TextPart | ImagePart] = [
        TextPart("Compare "),
        ImagePart("https://example.com/cat.jpg"),
        TextPart(""),
        ImagePart(f"data:image/PNG;base64,{PNG}"),
        TextPart("please"),
    ]
    body = _body(_request(messages=[ChatMessage("user", content)]))
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare "},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "text", "text": "please"},
            ],
        }
    ]
    text_parts = _body(_request(messages=[ChatMessage("user", [TextPart("a"), TextPart("b")])]))
    assert text_parts["messages"] == [{"role": "user", "content": "ab"}]


THOUGHT = {"type": "thinking", "thinking": "Need Oslo weather.", "signature": "EqQBCgIYAh=="}
HIDDEN = {"type": "redacted_thinking", "data": "EmRed=="}


def test_a_full_tool_loop_replays_the_signed_thinking_first() -> None:
    state = _state(THOUGHT, HIDDEN).data
    calls = [
        ToolCall(call_id="toolu_01Zq", name="get_weather", arguments={"city": "Oslo"}),
        ToolCall(call_id="toolu_01Zr", name="get_time", arguments=None, arguments_error="not JSON"),
    ]
    messages = [
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Weather and time in Oslo?"),
        ChatMessage("assistant", "Checking.", tool_calls=calls, provider_state=state),
        ChatMessage("tool", '{"temp_c": 4}', tool_call_id="toolu_01Zq"),
        ChatMessage("tool", "", tool_call_id="toolu_01Zr"),
        ChatMessage("assistant", "4 °C; the clock failed.", provider_state=_state(THOUGHT).data),
        ChatMessage("user", "Thanks"),
        ChatMessage("tool", [TextPart("late "), TextPart("result")], tool_call_id="toolu_01Zr"),
    ]
    request = _request(messages=messages, tools=[WEATHER, CLOCK], reasoning=Reasoning(effort="low"))
    assert DIALECT.unsupported(request) is None
    body = _body(request, stream=False)
    assert body["system"] == "Be brief."
    assert "stream" not in body
    assert body["messages"] == [
        {"role": "user", "content": "Weather and time in Oslo?"},
        {
            "role": "assistant",
            "content": [
                THOUGHT,
                HIDDEN,
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01Zq", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_01Zr", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01Zq", "content": '{"temp_c": 4}'},
                {"type": "tool_result", "tool_use_id": "toolu_01Zr"},
            ],
        },
        {"role": "assistant", "content": [THOUGHT, {"type": "text", "text": "4 °C; the clock failed."}]},
        {"role": "user", "content": "Thanks"},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_01Zr", "content": "late result"}],
        },
    ]


def test_the_state_a_stream_wrote_goes_back_unchanged() -> None:
    events = _parse(_recording("anthropic-redacted-thinking.sse"))
    (state,) = [e for e in events if type(e) is ProviderState]
    assistant = ChatMessage("assistant", tool_calls=[ToolCall(call_id="toolu_1", name="f", arguments={})])
    assistant = msgspec.structs.replace(assistant, provider_state=state.data)
    content = _body(_request(messages=[*HELLO, assistant]))["messages"][1]["content"]
    assert content == [
        {"type": "redacted_thinking", "data": REDACTED[0]},
        {"type": "redacted_thinking", "data": REDACTED[1]},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
    ]


@pytest.mark.parametrize(
    "state",
    [
        "garbage",
        "",
        "[]",
        '{"provider":"gemini","blocks":[{"type":"thinking","thinking":"x","signature":"y"}]}',
        '{"blocks":[{"type":"thinking","thinking":"x","signature":"y"}]}',
        '{"provider":"anthropic","blocks":[{"type":"tool_use","id":"x"}]}',
        '{"provider":"anthropic","blocks":[{"type":"thinking","thinking":"x"}]}',
        '{"provider":"anthropic","blocks":"EqQ"}',
        '{"provider":"anthropic","blocks":[{"type":"thinking","thinking":"\\ud800","signature":"y"}]}',
        '{"thoughtSignature":"Cq0BAdHtim9"}',
    ],
)
def test_a_foreign_or_garbage_state_is_ignored(state: str) -> None:
    calls = [ToolCall(call_id="toolu_1", name="f", arguments={"a": 1})]
    messages = [
        *HELLO,
        ChatMessage("assistant", "Sure.", provider_state=state),
        ChatMessage("user", "Again"),
        ChatMessage("assistant", tool_calls=calls, provider_state=state),
        ChatMessage("tool", "ok", tool_call_id="toolu_1"),
    ]
    assert _body(_request(messages=messages))["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Sure."},
        {"role": "user", "content": "Again"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]},
    ]
