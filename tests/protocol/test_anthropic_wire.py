"""The Anthropic Messages API's pure encoder and decoder: request fields mapped to the gateway's,
each bad input refused naming Anthropic's field, and the gateway's events encoded as Anthropic's
stream events and message objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocol.anthropic_state import RedactedThinkingBlock, ThinkingBlock, encode_state, replay_blocks
from protocol.anthropic_wire import (
    EventEncoder,
    MessagesRequest,
    Problem,
    decode_messages_request,
    error_json,
    error_status,
    error_type,
    message_json,
    stream_request,
)
from protocol.errors import ErrorCode
from protocol.messages import (
    ChatMessage,
    Chunk,
    Done,
    Error,
    ImagePart,
    Metrics,
    Options,
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

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}


def _decode(**fields: Any) -> MessagesRequest | Problem:
    body = {"model": "anthropic/claude", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]}
    return decode_messages_request(json.dumps({**body, **fields}).encode())


def _request(**fields: Any) -> StreamRequest:
    decoded = _decode(**fields)
    assert isinstance(decoded, MessagesRequest), decoded
    request = stream_request(decoded, id="msg_1", provider="anthropic", model="claude", agent=None)
    assert isinstance(request, StreamRequest), request
    return request


# ---- requests ----------------------------------------------------------------------------------


def test_a_text_request() -> None:
    request = _request(system=[{"type": "text", "text": "Be"}, {"type": "text", "text": "brief."}])
    assert request.messages == [
        ChatMessage(role="system", content="Be\nbrief."),
        ChatMessage(role="user", content="Hi"),
    ]
    assert request.options == Options(max_tokens=100)
    assert (request.tools, request.tool_choice, request.reasoning) == (None, None, None)


def test_options_tools_tool_choice_and_thinking() -> None:
    request = _request(
        system="Be brief.",
        temperature=1,
        top_p=0.99,
        stop_sequences=["END"],
        metadata={"user_id": "u"},
        tools=[{"name": "get_weather", "description": "Weather.", "input_schema": SCHEMA}],
        tool_choice={"type": "auto"},
        thinking={"type": "enabled", "budget_tokens": 2048},
    )
    assert request.options == Options(temperature=1, max_tokens=100, top_p=0.99, stop=["END"])
    assert request.tools == [Tool(name="get_weather", description="Weather.", parameters=SCHEMA)]
    assert request.tool_choice == "auto"
    assert request.reasoning == Reasoning(budget_tokens=2048)
    assert _request(thinking={"type": "disabled"}).reasoning is None


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, ToolChoiceName("f")),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: object) -> None:
    tools = [{"name": "f", "input_schema": SCHEMA}]
    assert _request(tools=tools, tool_choice=choice).tool_choice == expected


def test_images_tool_turns_and_thinking_blocks() -> None:
    signed = {"type": "thinking", "thinking": "Let me look.", "signature": "sig=="}
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw=="},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                signed,
                {"type": "redacted_thinking", "data": "EmwKAhgB"},
                {"type": "thinking", "thinking": "cut off", "signature": ""},  # unsigned: not sent back
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Here:"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "4 °C"}],
                },
            ],
        },
    ]
    user, assistant, tool, text = _request(messages=messages, tools=[{"name": "get_weather"}]).messages or []
    assert user == ChatMessage(
        role="user",
        content=[
            TextPart("What is this?"),
            ImagePart("data:image/png;base64,iVBORw=="),
            ImagePart("https://example.com/a.png"),
        ],
    )
    assert (assistant.content, assistant.tool_calls) == (
        "Checking.",
        [ToolCall(call_id="toolu_1", name="get_weather", arguments={"city": "Paris"})],
    )
    # exactly what the anthropic provider reads back and replays
    assert replay_blocks(assistant.provider_state) == [
        ThinkingBlock("Let me look.", "sig=="),
        RedactedThinkingBlock("EmwKAhgB"),
    ]
    assert tool == ChatMessage(role="tool", tool_call_id="toolu_1", content="4 °C")  # results come first
    assert text == ChatMessage(role="user", content="Here:")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "f"}]}]},
            "messages.0.content.0",
        ),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages.0.content.0"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}]},
            "messages.0.content.0",
        ),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0.type"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
        ({"temperature": 1.5}, "temperature"),
        ({"top_k": 5}, "top_k"),
    ],
)
def test_a_bad_field_is_named(fields: dict[str, Any], field: str) -> None:
    body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}], **fields}
    problem = decode_messages_request(json.dumps({k: v for k, v in body.items() if v is not None}).encode())
    assert isinstance(problem, Problem)
    assert problem.field == field
    assert problem.text.startswith(f"{field}: ")


def test_a_body_that_is_not_json() -> None:
    problem = decode_messages_request(b"{")
    assert isinstance(problem, Problem)
    assert problem.field is None


def test_count_tokens_takes_no_max_tokens() -> None:
    body = b'{"model": "m", "messages": [{"role": "user", "content": "Hi"}]}'
    assert isinstance(decode_messages_request(body, counting=True), MessagesRequest)


def test_what_the_gateway_refuses_names_the_field() -> None:
    decoded = _decode(tools=[{"name": "f", "input_schema": {"type": "no-such-type"}}])
    assert isinstance(decoded, MessagesRequest)
    problem = stream_request(decoded, id="msg_1", provider="anthropic", model="claude", agent=None)
    assert isinstance(problem, Problem)
    assert problem.field == "tools.0.input_schema"
    decoded = _decode(tool_choice={"type": "any"})
    assert isinstance(decoded, MessagesRequest)
    problem = stream_request(decoded, id="msg_1", provider="anthropic", model="claude", agent=None)
    assert isinstance(problem, Problem)
    assert problem.text == "tool_choice: `tool_choice` needs `tools`"


# ---- the stream ------------------------------------------------------------------------------------

USAGE = Usage(prompt_tokens=9, completion_tokens=3, total_tokens=12, estimated=False, cached_tokens=2)
METRICS = Metrics(
    provider="anthropic",
    model="claude",
    ttft_ms=1.0,
    duration_ms=2.0,
    tokens_per_second=None,
    estimated_cost_usd=None,
)
ACK = StartAck(id="msg_1", seq=0, provider="anthropic", model="claude", key="k")


def _done(finish: str = "stop", **fields: Any) -> Done:
    return Done(id="msg_1", seq=99, finish_reason=finish, content="", usage=USAGE, metrics=METRICS, **fields)


def _events(messages: list[ServerMessage]) -> list[dict[str, Any]]:
    encoder = EventEncoder("msg_1", "anthropic/claude")
    raw = b"".join(encoder(message) for message in messages).decode()
    out = []
    for frame in filter(None, raw.split("\n\n")):
        event, data = frame.split("\n")
        decoded = json.loads(data.removeprefix("data: "))
        assert event == f"event: {decoded['type']}"
        out.append(decoded)
    return out


def _compact(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each event as (type, index, what it carries)."""
    out: list[tuple[Any, ...]] = []
    for e in events:
        if e["type"] == "content_block_start":
            out.append(("start", e["index"], e["content_block"]))
        elif e["type"] == "content_block_delta":
            out.append(("delta", e["index"], e["delta"]))
        elif e["type"] == "content_block_stop":
            out.append(("stop", e["index"]))
        else:
            out.append((e["type"],))
    return out


def test_text_in_the_exact_sequence() -> None:
    events = _events(
        [ACK, Chunk(id="msg_1", seq=1, content="Hel"), Chunk(id="msg_1", seq=2, content="lo"), _done()]
    )
    assert events[0] == {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "anthropic/claude",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        },
    }
    assert _compact(events[1:]) == [
        ("ping",),
        ("start", 0, {"type": "text", "text": ""}),
        ("delta", 0, {"type": "text_delta", "text": "Hel"}),
        ("delta", 0, {"type": "text_delta", "text": "lo"}),
        ("stop", 0),
        ("message_delta",),
        ("message_stop",),
    ]
    assert events[-2] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"input_tokens": 9, "output_tokens": 3, "cache_read_input_tokens": 2},
    }


def test_thinking_then_text_then_a_call_with_the_signature_at_the_end() -> None:
    state = encode_state([ThinkingBlock("Hm.", "sig=="), RedactedThinkingBlock("EmwK")])
    events = _events(
        [
            ACK,
            ReasoningChunk(id="msg_1", seq=1, content="Hm."),
            Chunk(id="msg_1", seq=2, content="Let me check."),
            ToolCallStart(id="msg_1", seq=3, call_id="toolu_1", name="f", index=0),
            ToolCallDelta(id="msg_1", seq=4, call_id="toolu_1", arguments_delta='{"a":'),
            ToolCallDelta(id="msg_1", seq=5, call_id="toolu_1", arguments_delta=" 1}"),
            ToolCallEnd(id="msg_1", seq=6, call_id="toolu_1", name="f", arguments={"a": 1}),
            _done("tool_calls", provider_state=state),
        ]
    )
    assert _compact(events[2:]) == [
        ("start", 0, {"type": "thinking", "thinking": "", "signature": ""}),
        ("delta", 0, {"type": "thinking_delta", "thinking": "Hm."}),
        ("stop", 0),
        ("start", 1, {"type": "text", "text": ""}),
        ("delta", 1, {"type": "text_delta", "text": "Let me check."}),
        ("stop", 1),
        ("start", 2, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}),
        ("delta", 2, {"type": "input_json_delta", "partial_json": '{"a":'}),
        ("delta", 2, {"type": "input_json_delta", "partial_json": " 1}"}),
        ("stop", 2),
        ("delta", 0, {"type": "signature_delta", "signature": "sig=="}),
        ("start", 3, {"type": "redacted_thinking", "data": "EmwK"}),
        ("stop", 3),
        ("message_delta",),
        ("message_stop",),
    ]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_interleaved_calls_go_out_one_block_after_the_other() -> None:
    def start(call: str, index: int) -> ToolCallStart:
        return ToolCallStart(id="msg_1", seq=0, call_id=call, name="f", index=index)

    def delta(call: str, text: str) -> ToolCallDelta:
        return ToolCallDelta(id="msg_1", seq=0, call_id=call, arguments_delta=text)

    def end(call: str) -> ToolCallEnd:
        return ToolCallEnd(id="msg_1", seq=0, call_id=call, name="f", arguments={})

    messages: list[ServerMessage] = [ACK, start("a", 0), delta("a", "{"), start("b", 1), delta("b", "{}")]
    messages += [delta("a", "}"), end("a"), end("b"), _done("tool_calls")]
    assert _compact(_events(messages)[2:-2]) == [
        ("start", 0, {"type": "tool_use", "id": "a", "name": "f", "input": {}}),
        ("delta", 0, {"type": "input_json_delta", "partial_json": "{"}),
        ("delta", 0, {"type": "input_json_delta", "partial_json": "}"}),
        ("stop", 0),
        ("start", 1, {"type": "tool_use", "id": "b", "name": "f", "input": {}}),
        ("delta", 1, {"type": "input_json_delta", "partial_json": "{}"}),
        ("stop", 1),
    ]


def test_calls_left_open_at_the_end_each_get_their_block() -> None:
    def start(call: str, index: int) -> ToolCallStart:
        return ToolCallStart(id="msg_1", seq=0, call_id=call, name="f", index=index)

    messages: list[ServerMessage] = [ACK, start("a", 0), start("b", 1), start("c", 2), _done("tool_calls")]
    compact = _compact(_events(messages)[2:-2])
    assert [event[:2] for event in compact] == [
        ("start", 0),
        ("stop", 0),
        ("start", 1),
        ("stop", 1),
        ("start", 2),
        ("stop", 2),
    ]


def test_another_providers_state_adds_no_signature() -> None:
    events = _events(
        [ACK, ReasoningChunk(id="msg_1", seq=1, content="Hm."), _done(provider_state='{"provider":"gemini"}')]
    )
    assert [e["delta"]["type"] for e in events if e["type"] == "content_block_delta"] == ["thinking_delta"]


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        ("cancelled", "end_turn"),
    ],
)
def test_stop_reasons(finish: str, stop: str) -> None:
    assert _events([ACK, _done(finish)])[-2]["delta"]["stop_reason"] == stop


def test_an_error_mid_stream_is_an_error_event() -> None:
    error = Error(id="msg_1", seq=3, code=ErrorCode.UPSTREAM_UNAVAILABLE, message="gone", retryable=True)
    assert EventEncoder("msg_1", "m")(error) == (
        b'event: error\ndata: {"error":{"type":"api_error","message":"gone"},"type":"error"}\n\n'
    )


def test_a_message_object() -> None:
    state = encode_state([ThinkingBlock("Hm.", "sig=="), RedactedThinkingBlock("EmwK")])
    call = ToolCall(call_id="toolu_1", name="f", arguments={"a": 1})
    done = _done("tool_calls", provider_state=state, reasoning="Hm.", tool_calls=[call])
    done = Done(**{**{f: getattr(done, f) for f in done.__struct_fields__}, "content": "Checking."})
    assert json.loads(message_json(done, "msg_1", "anthropic/claude")) == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "anthropic/claude",
        "content": [
            {"type": "thinking", "thinking": "Hm.", "signature": "sig=="},
            {"type": "redacted_thinking", "data": "EmwK"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 3, "cache_read_input_tokens": 2},
    }


def test_a_message_object_without_anthropic_state_has_unsigned_thinking() -> None:
    done = _done(provider_state='{"provider":"gemini","parts":[]}', reasoning="Hm.")
    content = json.loads(message_json(done, "msg_1", "gemini/x"))["content"]
    assert content == [{"type": "thinking", "thinking": "Hm.", "signature": ""}]


# ---- errors ----------------------------------------------------------------------------------------

# The anthropic SDKs' exception class for each status: BadRequestError 400, AuthenticationError
# 401, PermissionDeniedError 403, NotFoundError 404, ConflictError 409, RateLimitError 429,
# InternalServerError >= 500 (ServiceUnavailableError 503, OverloadedError 529).
EXPECTED_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
    529: "overloaded_error",
}


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_error_code_has_a_status_and_type(code: ErrorCode) -> None:
    status = error_status(code)
    assert error_type(status) == EXPECTED_TYPES[status]
    assert json.loads(error_json(status, "why")) == {
        "type": "error",
        "error": {"type": EXPECTED_TYPES[status], "message": "why"},
    }


def test_an_overloaded_gateway_is_529() -> None:
    assert error_status(ErrorCode.SERVER_BUSY) == error_status(ErrorCode.SHUTTING_DOWN) == 529
