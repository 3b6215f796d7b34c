"""The AI SDK's chat requests into stream requests, and stream events into UI message chunks."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from protocol.errors import ErrorCode
from protocol.messages import (
    ChatMessage,
    Chunk,
    Done,
    Error,
    ImagePart,
    Metrics,
    Notice,
    ReasoningChunk,
    StartAck,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from protocol.ui_messages import ChatRequest, Unsupported, stream_request
from protocol.ui_stream import UISSEEncoder, UIStreamEncoder

PNG = "data:image/png;base64,iVBORw0KGgo="


def chat(messages: list[dict[str, Any]], **extra: Any) -> ChatRequest:
    body = {"id": "c1", "messages": messages, "trigger": "submit-message", **extra}
    return msgspec.json.decode(json.dumps(body), type=ChatRequest)


# The second POST of a client-side tool round trip, as ai@7 sends it (captured from the SDK).
TOOL_FOLLOW_UP: list[dict[str, Any]] = [
    {"parts": [{"type": "text", "text": "weather in Oslo?"}], "id": "u1", "role": "user"},
    {
        "id": "msg_c-tool",
        "metadata": {"usage": {"prompt_tokens": 12}},
        "role": "assistant",
        "parts": [
            {"type": "step-start"},
            {
                "type": "reasoning",
                "id": "r0",
                "text": "The user wants the weather.",
                "providerMetadata": {"tokenwire": {"provider_state": "opaque-state-1"}},
                "state": "done",
            },
            {"type": "text", "text": "Checking.", "state": "done"},
            {
                "type": "tool-getWeather",
                "toolCallId": "call_1",
                "state": "output-available",
                "input": {"city": "Oslo"},
                "output": {"tempC": 4},
            },
            {
                "type": "tool-getWeather",
                "toolCallId": "call_2",
                "state": "output-error",
                "input": {"city": "Nowhere"},
                "errorText": "geolocation failed",
            },
            {"type": "tool-getWeather", "toolCallId": "call_3", "state": "input-available", "input": {}},
            {"type": "step-start"},
            {"type": "text", "text": "It is 4 C in Oslo.", "state": "done"},
        ],
    },
    {
        "parts": [
            {"type": "file", "mediaType": "image/png", "filename": "dot.png", "url": PNG},
            {"type": "text", "text": "and what is this?"},
        ],
        "id": "u2",
        "role": "user",
    },
]


def test_a_tool_round_trip_becomes_assistant_calls_and_tool_turns() -> None:
    request = stream_request(
        chat(TOOL_FOLLOW_UP, provider="rulebased", model="m", tools=[{"name": "getWeather"}])
    )
    assert request.provider == "rulebased"
    assert request.model == "m"
    assert request.tools is not None
    assert request.messages == [
        ChatMessage(role="user", content="weather in Oslo?"),
        ChatMessage(
            role="assistant",
            content="Checking.",
            tool_calls=[
                ToolCall(call_id="call_1", name="getWeather", arguments={"city": "Oslo"}),
                ToolCall(call_id="call_2", name="getWeather", arguments={"city": "Nowhere"}),
            ],
            provider_state="opaque-state-1",
        ),
        ChatMessage(role="tool", content='{"tempC":4}', tool_call_id="call_1"),
        ChatMessage(role="tool", content="Error: geolocation failed", tool_call_id="call_2"),
        ChatMessage(role="assistant", content="It is 4 C in Oslo."),
        ChatMessage(role="user", content=[ImagePart(PNG), TextPart("and what is this?")]),
    ]


def test_extra_body_fields_other_than_start_names_are_ignored() -> None:
    request = stream_request(
        chat([{"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]}], scenario=1)
    )
    assert request.messages == [ChatMessage(role="user", content="hi")]
    assert request.provider is None


def test_a_file_that_is_not_an_image_is_unsupported() -> None:
    pdf = {"type": "file", "mediaType": "application/pdf", "url": "data:application/pdf;base64,JVBE"}
    with pytest.raises(Unsupported, match=r"`application/pdf` - at `\$.messages\[0\].parts\[0\]`"):
        stream_request(chat([{"id": "u", "role": "user", "parts": [pdf]}]))


def test_what_the_converted_messages_break_is_a_validation_error() -> None:
    bad = {
        "type": "tool-get weather",
        "toolCallId": "c",
        "state": "output-available",
        "input": {},
        "output": 1,
    }
    messages = [
        {"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]},
        {"id": "a", "role": "assistant", "parts": [bad]},
    ]
    with pytest.raises(msgspec.ValidationError, match=r"\$.messages\[1\].tool_calls\[0\].name"):
        stream_request(chat(messages))


USAGE = Usage(prompt_tokens=3, completion_tokens=5, total_tokens=8, estimated=False, reasoning_tokens=2)
METRICS = Metrics(
    provider="rulebased",
    model="m",
    ttft_ms=1.0,
    duration_ms=3.0,
    tokens_per_second=9.0,
    estimated_cost_usd=0.0,
)


def done(seq: int, **fields: Any) -> Done:
    return Done(id="s", seq=seq, finish_reason="stop", content="", usage=USAGE, metrics=METRICS, **fields)


def encode_all(messages: list[Any], message_id: str = "msg_1") -> list[dict[str, Any]]:
    encoder = UIStreamEncoder(message_id)
    return [chunk for message in messages for chunk in encoder.chunks(message)]


def test_reasoning_text_and_a_tool_call_as_ui_chunks() -> None:
    events = [
        StartAck(id="s", seq=0, provider="p", model="m", key="k" * 32),
        ReasoningChunk(id="s", seq=1, content="Think"),
        ReasoningChunk(id="s", seq=3, content="ing.", from_seq=2),
        Chunk(id="s", seq=4, content="Let me "),
        Chunk(id="s", seq=5, content="look."),
        ToolCallStart(id="s", seq=6, call_id="c1", name="getWeather", index=0),
        ToolCallDelta(id="s", seq=7, call_id="c1", arguments_delta='{"city":'),
        ToolCallDelta(id="s", seq=8, call_id="c1", arguments_delta='"Oslo"}'),
        ToolCallEnd(id="s", seq=9, call_id="c1", name="getWeather", arguments={"city": "Oslo"}),
        msgspec.structs.replace(done(10, provider_state="sig"), finish_reason="tool_calls"),
    ]
    assert encode_all(events) == [
        {"type": "start", "messageId": "msg_1"},
        {"type": "start-step"},
        {"type": "reasoning-start", "id": "r1"},
        {"type": "reasoning-delta", "id": "r1", "delta": "Think"},
        {"type": "reasoning-delta", "id": "r1", "delta": "ing."},
        {"type": "text-start", "id": "t4"},
        {"type": "text-delta", "id": "t4", "delta": "Let me "},
        {"type": "text-delta", "id": "t4", "delta": "look."},
        {"type": "text-end", "id": "t4"},
        {"type": "tool-input-start", "toolCallId": "c1", "toolName": "getWeather"},
        {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": '{"city":'},
        {"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": '"Oslo"}'},
        {
            "type": "tool-input-available",
            "toolCallId": "c1",
            "toolName": "getWeather",
            "input": {"city": "Oslo"},
        },
        {"type": "reasoning-end", "id": "r1", "providerMetadata": {"tokenwire": {"provider_state": "sig"}}},
        {"type": "finish-step"},
        {
            "type": "finish",
            "finishReason": "tool-calls",
            "messageMetadata": {"usage": msgspec.to_builtins(USAGE), "metrics": msgspec.to_builtins(METRICS)},
        },
    ]


def test_invalid_arguments_are_a_tool_input_error_with_the_raw_text() -> None:
    events = [
        ToolCallStart(id="s", seq=1, call_id="c", name="f", index=0),
        ToolCallDelta(id="s", seq=2, call_id="c", arguments_delta='{"a": '),
        ToolCallEnd(id="s", seq=3, call_id="c", name="f", arguments=None, arguments_error="not JSON"),
    ]
    assert encode_all(events)[-1] == {
        "type": "tool-input-error",
        "toolCallId": "c",
        "toolName": "f",
        "input": '{"a": ',
        "errorText": "not JSON",
    }


def test_state_without_reasoning_rides_on_an_empty_reasoning_part() -> None:
    chunks = encode_all([Chunk(id="s", seq=1, content="hi"), done(2, provider_state="sig")])
    assert chunks[:5] == [
        {"type": "text-start", "id": "t1"},
        {"type": "text-delta", "id": "t1", "delta": "hi"},
        {"type": "text-end", "id": "t1"},
        {"type": "reasoning-start", "id": "r2"},
        {"type": "reasoning-end", "id": "r2", "providerMetadata": {"tokenwire": {"provider_state": "sig"}}},
    ]


@pytest.mark.parametrize(
    ("reason", "ui"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content-filter"),
        ("cancelled", "interrupted"),
        ("pause_turn", "other"),
    ],
)
def test_finish_reasons(reason: str, ui: str) -> None:
    assert encode_all([msgspec.structs.replace(done(1), finish_reason=reason)])[-1]["finishReason"] == ui


def test_an_error_ends_the_stream_and_a_notice_is_transient() -> None:
    notice = Notice(
        id="s",
        code="failover",
        message="p failed",
        provider="q",
        model="m",
        attempt=2,
        reason=ErrorCode.TIMEOUT,
    )
    error = Error(id="s", seq=1, code=ErrorCode.UPSTREAM_UNAVAILABLE, message="down", retryable=True)
    assert encode_all([notice, error]) == [
        {
            "type": "data-tokenwire-notice",
            "data": {
                "code": "failover",
                "message": "p failed",
                "provider": "q",
                "model": "m",
                "attempt": 2,
                "reason": "timeout",
            },
            "transient": True,
        },
        {"type": "error", "errorText": "upstream_unavailable: down"},
    ]


def test_sse_frames_each_chunk_and_ends_with_done() -> None:
    encoder = UISSEEncoder("msg_1")
    assert encoder(StartAck(id="s", seq=0, provider="p", model="m", key="k" * 32)) == (
        b'data: {"type":"start","messageId":"msg_1"}\n\ndata: {"type":"start-step"}\n\n'
    )
    body = encoder(done(1))
    assert body.startswith(b'data: {"type":"finish-step"}\n\ndata: {"type":"finish","finishReason":"stop",')
    assert body.endswith(b"\n\ndata: [DONE]\n\n")
