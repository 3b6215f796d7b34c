"""The OpenAI-compatible API's pure encoder and decoder: request fields mapped to the gateway's,
each bad input refused naming OpenAI's field, and the gateway's events encoded as OpenAI's
chunks and completion objects."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from msgspec.structs import replace

from protocol.messages import (
    ChatMessage,
    Chunk,
    Done,
    ImagePart,
    JsonFormat,
    JsonSchemaFormat,
    Metrics,
    Reasoning,
    ReasoningChunk,
    ServerMessage,
    StartAck,
    StreamRequest,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolChoiceName,
    Usage,
)
from protocol.openai_wire import (
    ChunkEncoder,
    Problem,
    completion_json,
    decode_chat_request,
    stream_request,
)

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}
USER = {"role": "user", "content": "weather in Paris?"}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
}


def decode(**fields: Any) -> StreamRequest | Problem:
    body = {"model": "rulebased", "messages": [USER], **fields}
    chat = decode_chat_request(json.dumps(body).encode())
    if isinstance(chat, Problem):
        return chat
    return stream_request(chat, id="chatcmpl-1", provider="rulebased", model=None, agent=None)


def request(**fields: Any) -> StreamRequest:
    decoded = decode(**fields)
    assert isinstance(decoded, StreamRequest), decoded
    return decoded


def refused(**fields: Any) -> Problem:
    decoded = decode(**fields)
    assert isinstance(decoded, Problem), decoded
    return decoded


# ---- requests --------------------------------------------------------------------------------


def test_a_text_only_request_has_none_of_the_new_fields() -> None:
    decoded = request(
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Say"}, {"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": None},
            {"role": "user", "content": "More"},
        ],
        seed=1,
    )
    assert decoded == StreamRequest(
        id="chatcmpl-1",
        provider="rulebased",
        messages=[
            ChatMessage(role="system", content="Be brief."),
            ChatMessage(role="user", content="Say\nhi"),
            ChatMessage(role="assistant", content=""),
            ChatMessage(role="user", content="More"),
        ],
    )


def test_tools_and_tool_choice_map_to_the_gateways() -> None:
    strict = {"type": "function", "function": {"name": "now", "description": "The time", "strict": True}}
    decoded = request(tools=[TOOL, strict], tool_choice="required", parallel_tool_calls=False)
    assert decoded.tools == [
        Tool(name="get_weather", parameters=WEATHER),
        Tool(name="now", description="The time"),
    ]
    assert decoded.tool_choice == "required"
    for choice in ("auto", "none", "required"):
        assert request(tools=[TOOL], tool_choice=choice).tool_choice == choice
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert request(tools=[TOOL], tool_choice=named).tool_choice == ToolChoiceName("get_weather")
    assert request(tools=[]).tools is None  # an empty list asks for nothing
    assert request(tools=[TOOL], parallel_tool_calls=True).tools is not None


def test_a_tool_loop_maps_calls_results_and_provider_state() -> None:
    no_args = {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}}
    decoded = request(
        messages=[
            USER,
            {"role": "assistant", "content": None, "tool_calls": [CALL, no_args], "provider_state": "st"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "13:05"}]},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 4}'},
            {"role": "assistant", "content": "4 degrees at 13:05."},
            {"role": "user", "content": "Thanks"},
        ]
    )
    assert decoded.messages is not None
    assert decoded.messages[1:4] == [
        ChatMessage(
            role="assistant",
            tool_calls=[
                ToolCall(call_id="call_1", name="get_weather", arguments={"city": "Paris"}),
                ToolCall(call_id="call_2", name="now", arguments={}),  # no text: no arguments
            ],
            provider_state="st",
        ),
        ChatMessage(role="tool", content="13:05", tool_call_id="call_2"),
        ChatMessage(role="tool", content='{"temp_c": 4}', tool_call_id="call_1"),
    ]


@pytest.mark.parametrize(
    ("arguments", "why"), [('{"city": "Par', "not valid JSON"), ("[1]", "not a JSON object")]
)
def test_unparseable_arguments_pass_back_as_a_failed_call(arguments: str, why: str) -> None:
    call = {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
    messages = [
        USER,
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c", "content": "?"},
    ]
    decoded = request(messages=messages)
    assert decoded.messages is not None
    (passed,) = decoded.messages[1].tool_calls or []
    assert (passed.call_id, passed.arguments) == ("c", None)
    assert passed.arguments_error is not None
    assert why in passed.arguments_error


def test_response_formats() -> None:
    assert request(response_format={"type": "text"}).response_format is None
    assert request(response_format={"type": "json_object"}).response_format == JsonFormat()
    spec = {"name": "place", "description": "A place", "schema": WEATHER, "strict": True}
    decoded = request(response_format={"type": "json_schema", "json_schema": spec})
    assert decoded.response_format == JsonSchemaFormat(name="place", schema=WEATHER, strict=True)


@pytest.mark.parametrize(
    ("effort", "reasoning", "expected"),
    [
        ("minimal", None, Reasoning(effort="low")),
        ("low", None, Reasoning(effort="low")),
        ("medium", None, Reasoning(effort="medium")),
        ("high", None, Reasoning(effort="high")),
        ("xhigh", None, Reasoning(effort="high")),
        ("high", {"budget_tokens": 2048}, Reasoning(effort="high", budget_tokens=2048)),
        (None, {}, Reasoning()),
        (None, {"effort": "low", "budget_tokens": 512}, Reasoning(effort="low", budget_tokens=512)),
        (None, None, None),
    ],
)
def test_reasoning_effort_and_the_reasoning_extension(
    effort: str | None, reasoning: dict[str, Any] | None, expected: Reasoning | None
) -> None:
    fields = {"reasoning_effort": effort, "reasoning": reasoning}
    assert request(**{k: v for k, v in fields.items() if v is not None}).reasoning == expected


def test_image_parts_keep_their_place_among_the_text() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": PNG}},
    ]
    decoded = request(messages=[{"role": "user", "content": content}])
    assert decoded.messages == [
        ChatMessage(
            role="user",
            content=[TextPart("What is this?"), ImagePart("https://example.com/cat.jpg"), ImagePart(PNG)],
        )
    ]


def _image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_turn(*after: dict[str, Any]) -> list[dict[str, Any]]:
    return [USER, {"role": "assistant", "content": None, "tool_calls": [CALL]}, *after]


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0].type", "custom"),
        ({"tools": [{"type": "function", "function": {"name": "a b"}}]}, "tools[0].function.name", "match"),
        ({"tools": [TOOL, TOOL]}, "tools[1].function.name", "unique"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 5}}}]},
            "tools[0].function.parameters",
            "JSON Schema",
        ),
        ({"tool_choice": "auto"}, "tool_choice", "needs `tools`"),
        (
            {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice.function.name",
            "nope",
        ),
        ({"tools": [TOOL], "tool_choice": {"type": "allowed_tools"}}, "tool_choice.type", "allowed_tools"),
        ({"functions": [{"name": "f"}]}, "functions", "use `tools`"),
        ({"function_call": "auto"}, "function_call", "use `tools`"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format.json_schema.schema",
            "schema",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 1}}}},
            "response_format.json_schema.schema",
            "JSON Schema",
        ),
        ({"response_format": {"type": "grammar"}}, "response_format.type", "grammar"),
        ({"reasoning_effort": "none"}, "reasoning_effort", "leave it out"),
        ({"reasoning_effort": "turbo"}, "reasoning_effort", "turbo"),
        ({"reasoning_effort": "low", "reasoning": {"effort": "high"}}, "reasoning_effort", "once"),
        ({"reasoning": {"max_tokens": 5}}, "reasoning", "max_tokens"),
        (
            {"messages": [{"role": "user", "content": [_image("http://example.com/a.png")]}]},
            "messages[0].content[0].image_url.url",
            "https",
        ),
        (
            {"messages": [{"role": "user", "content": [_image("data:image/png;base64,@@")]}]},
            "messages[0].content[0].image_url.url",
            "base64",
        ),
        (
            {"messages": [{"role": "user", "content": [_image("file:///etc/passwd")]}]},
            "messages[0].content[0].image_url.url",
            "https",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0]",
            "type `image_url` needs the field `image_url`",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages[0].content[0]",
            "type `text` needs the field `text`",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "file", "file": {}}]}]},
            "messages[0].content[0]",
            "`file` is not supported",
        ),
        (
            {"messages": [{"role": "system", "content": [_image(PNG)]}, USER]},
            "messages[0].content[0]",
            "user",
        ),
        (
            {"messages": [USER, {"role": "tool", "tool_call_id": "c", "content": "x"}]},
            "messages[1].role",
            "tool_calls",
        ),
        ({"messages": _tool_turn({"role": "tool", "content": "x"})}, "messages[2].tool_call_id", "needs"),
        (
            {"messages": _tool_turn({"role": "tool", "tool_call_id": "call_9", "content": "x"})},
            "messages[2].tool_call_id",
            "call_9",
        ),
        ({"messages": _tool_turn(USER)}, "messages[1].tool_calls", "call_1"),
        ({"messages": _tool_turn()}, "messages[1].tool_calls", "call_1"),
        (
            {"messages": _tool_turn({"role": "tool", "tool_call_id": "call_1", "content": [_image(PNG)]})},
            "messages[2].content[0]",
            "user",
        ),
        (
            {"messages": [USER, {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f"}}]}]},
            "messages[1].tool_calls[0].function.arguments",
            "arguments",
        ),
        ({"messages": [{**USER, "provider_state": "x"}]}, "messages[0]", "assistant"),
        ({"messages": [{**USER, "tool_call_id": "x"}]}, "messages[0]", "tool_call_id"),
    ],
)
def test_a_bad_field_is_refused_naming_it(fields: dict[str, Any], param: str, words: str) -> None:
    problem = refused(**fields)
    assert problem.param == param
    assert words in problem.message


# ---- the streamed chunks ---------------------------------------------------------------------


def _usage(**details: int) -> Usage:
    return Usage(prompt_tokens=12, completion_tokens=30, total_tokens=42, estimated=False, **details)


def _done(**fields: Any) -> Done:
    metrics = Metrics("parts", "parts-1", None, 1.0, None, None)
    return Done(id="s", seq=9, finish_reason="stop", content="", usage=_usage(), metrics=metrics, **fields)


def _stream(messages: list[ServerMessage], include_usage: bool = False) -> list[Any]:
    """The data of each SSE event the encoder writes for ``messages``."""
    encoder = ChunkEncoder("chatcmpl-1", 1767225600, "parts", include_usage)
    raw = b"".join(encoder(message) for message in messages).decode()
    assert raw.endswith("\n\n")
    events = raw.split("\n\n")[:-1]
    assert all(event.startswith("data: ") for event in events)
    return [event[6:] if event == "data: [DONE]" else json.loads(event[6:]) for event in events]


def _deltas(events: list[Any]) -> list[Any]:
    return [e["choices"][0]["delta"] for e in events if isinstance(e, dict) and e["choices"]]


ACK = StartAck(id="s", seq=0, provider="parts", model="parts-1", key="k" * 16)


def test_parallel_calls_stream_as_openai_sends_them() -> None:
    messages: list[ServerMessage] = [
        ACK,
        ReasoningChunk(id="s", seq=1, content="Two lookups."),
        Chunk(id="s", seq=2, content="Checking."),
        ToolCallStart(id="s", seq=3, call_id="call_a", name="get_weather", index=0),
        ToolCallStart(id="s", seq=4, call_id="call_b", name="now", index=1),
        ToolCallDelta(id="s", seq=5, call_id="call_a", arguments_delta='{"city":'),
        ToolCallDelta(id="s", seq=6, call_id="call_b", arguments_delta=""),  # an empty piece says nothing
        ToolCallDelta(id="s", seq=7, call_id="call_a", arguments_delta=' "Oslo"}', from_seq=7),
        ToolCallEnd(id="s", seq=8, call_id="call_a", name="get_weather", arguments={"city": "Oslo"}),
        ToolCallEnd(id="s", seq=9, call_id="call_b", name="now", arguments={}),
        replace(
            _done(tool_calls=[], reasoning="Two lookups.", provider_state="sig"),
            finish_reason="tool_calls",
            usage=_usage(reasoning_tokens=9, cached_tokens=4),
        ),
    ]
    events = _stream(messages, include_usage=True)
    assert _deltas(events) == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "Two lookups."},
        {"content": "Checking."},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        },
        {
            "tool_calls": [
                {"index": 1, "id": "call_b", "type": "function", "function": {"name": "now", "arguments": ""}}
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": ' "Oslo"}'}}]},
        {
            "tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]
        },  # no text: `{}`, as the gateway parsed it
        {"provider_state": "sig"},
        {},
    ]
    *body, end, usage, done = events
    assert [e["choices"][0]["finish_reason"] for e in body] == [None] * len(body)
    assert end["choices"][0]["finish_reason"] == "tool_calls"
    assert usage["choices"] == []
    assert usage["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 30,
        "total_tokens": 42,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 9},
    }
    assert done == "[DONE]"


def test_a_text_stream_is_the_bytes_of_before() -> None:
    encoder = ChunkEncoder("chatcmpl-1", 1767225600, "rulebased", include_usage=True)
    raw = b"".join(
        encoder(m)
        for m in (
            ACK,
            Chunk(id="s", seq=1, content="Hi"),
            replace(_done(), content="Hi", finish_reason="length"),
        )
    )
    head = b'{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1767225600,"model":"rulebased","system_fingerprint":null,"choices":'
    assert raw == (
        b"data: "
        + head
        + b'[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
        b"data: "
        + head
        + b'[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
        b"data: "
        + head
        + b'[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}],"usage":null}\n\n'
        b"data: " + head + b'[],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42}}\n\n'
        b"data: [DONE]\n\n"
    )


# ---- the completion object -------------------------------------------------------------------


def test_a_completion_with_calls_reasoning_and_state() -> None:
    log: list[object] = [
        ACK,
        ToolCallStart(id="s", seq=1, call_id="call_a", name="get_weather", index=0),
        ToolCallDelta(id="s", seq=2, call_id="call_a", arguments_delta='{"city": '),
        ToolCallStart(id="s", seq=3, call_id="call_b", name="now", index=1),
        ToolCallDelta(id="s", seq=4, call_id="call_a", arguments_delta='"Oslo"'),  # cut off: invalid JSON
        ToolCallEnd(
            id="s", seq=5, call_id="call_a", name="get_weather", arguments=None, arguments_error="bad"
        ),
        ToolCallEnd(id="s", seq=6, call_id="call_b", name="now", arguments={}),
    ]
    done = replace(
        _done(
            tool_calls=[
                ToolCall(call_id="call_a", name="get_weather", arguments=None, arguments_error="bad"),
                ToolCall(call_id="call_b", name="now", arguments={}),
            ],
            reasoning="Hm.",
            provider_state="sig",
        ),
        finish_reason="length",
        usage=_usage(reasoning_tokens=3),
    )
    completion = json.loads(completion_json(done, log, "chatcmpl-1", 1767225600, "parts"))
    assert completion["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,  # calls and no text, as OpenAI sends it
                "reasoning_content": "Hm.",
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"'},
                    },
                    {"id": "call_b", "type": "function", "function": {"name": "now", "arguments": "{}"}},
                ],
                "provider_state": "sig",
            },
            "logprobs": None,
            "finish_reason": "length",
        }
    ]
    assert completion["usage"]["completion_tokens_details"] == {"reasoning_tokens": 3}
    assert "prompt_tokens_details" not in completion["usage"]


def test_a_text_completion_is_the_object_of_before() -> None:
    done = replace(_done(), content="Hello!")
    completion = json.loads(
        completion_json(done, [ACK, "Hello!", done], "chatcmpl-1", 1767225600, "rulebased")
    )
    assert completion == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "rulebased",
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42},
    }
