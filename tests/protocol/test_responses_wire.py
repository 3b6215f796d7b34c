"""The Responses API's pure wire format: request items to the gateway's messages, the refusals
with their ``param``, and the event encoder's exact sequence (the SDK-level checks are in
tests/e2e/test_responses_*.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocol.errors import ErrorCode
from protocol.messages import (
    ChatMessage,
    Chunk,
    Done,
    Error,
    Metrics,
    ReasoningChunk,
    ServerMessage,
    StartAck,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from protocol.openai_wire import Problem
from protocol.responses_wire import (
    EventsEncoder,
    ResponsesRequest,
    decode_responses_request,
    response_json,
    shell,
    stream_request,
)


def _decode(body: dict[str, Any]) -> ResponsesRequest | Problem:
    return decode_responses_request(json.dumps({"model": "rulebased", **body}).encode())


def _messages(body: dict[str, Any]) -> list[ChatMessage]:
    request = _decode(body)
    assert isinstance(request, ResponsesRequest), request
    gateway = stream_request(request, id="resp_1", provider="rulebased", model=None, agent=None)
    assert not isinstance(gateway, Problem), gateway
    return gateway.messages or []


def test_a_string_input_is_one_user_message_after_the_instructions() -> None:
    assert _messages({"input": "Hi", "instructions": "Be brief."}) == [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Hi"),
    ]


def test_calls_join_their_assistant_turn_and_outputs_are_tool_messages() -> None:
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [],
            "content": [{"type": "reasoning_text", "text": "x"}],
        },
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Looking."}]},
        {"type": "function_call", "call_id": "c1", "name": "w", "arguments": '{"city": "Lima"}'},
        {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "not json"},
        {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "state-1"},
        {"type": "function_call_output", "call_id": "c1", "output": "4 C"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "9 C"}]},
    ]
    user, turn, first, second = _messages({"input": items})
    assert user == ChatMessage(role="user", content="Weather?")
    assert (turn.role, turn.content, turn.provider_state) == ("assistant", "Looking.", "state-1")
    calls = turn.tool_calls or []
    assert calls[0] == ToolCall(call_id="c1", name="w", arguments={"city": "Lima"})
    assert (calls[1].call_id, calls[1].arguments, bool(calls[1].arguments_error)) == ("c2", None, True)
    assert (first.role, first.tool_call_id, first.content) == ("tool", "c1", "4 C")
    assert (second.tool_call_id, second.content) == ("c2", "9 C")


def test_a_state_before_a_turn_goes_to_that_turn() -> None:
    items = [
        {"role": "user", "content": "Weather?"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "state-2"},
        {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ]
    _, turn, _ = _messages({"input": items, "tools": [{"type": "function", "name": "w"}]})
    assert (turn.content, turn.provider_state) == (None, "state-2")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x", "previous_response_id": "resp_0"}, "previous_response_id"),
        ({"input": "x", "conversation": "conv_1"}, "conversation"),
        ({"input": "x", "tools": [{"type": "code_interpreter"}]}, "tools[0].type"),
        ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"input": [{"role": "user"}]}, "input[0].content"),
        ({"input": [{"type": "function_call", "name": "w", "arguments": "{}"}]}, "input[0].call_id"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].type",
        ),
        ({"input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}}, "text.format.schema"),
        ({"input": "x", "reasoning": {"effort": "none"}}, "reasoning.effort"),
        ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "x", "tool_choice": {"type": "function", "name": "w"}}, "tool_choice"),
        ({"input": "x", "tools": [{"type": "function", "name": "w"}] * 2}, "tools[1].name"),
        (
            {
                "input": "x",
                "tools": [{"type": "function", "name": "w"}],
                "tool_choice": {"type": "function", "name": "v"},
            },
            "tool_choice.name",
        ),
        ({"input": [{"role": "assistant", "content": "hi"}]}, "input"),
        (
            {
                "input": [
                    {"role": "user", "content": "hi"},
                    {"type": "function_call_output", "call_id": "c", "output": "x"},
                ]
            },
            "input",
        ),
        (
            {
                "input": [
                    {"role": "user", "content": "hi"},
                    {"type": "function_call", "call_id": "c", "name": "w", "arguments": "{}"},
                ]
            },
            "input",
        ),
        (
            {
                "input": [
                    {
                        "type": "function_call_output",
                        "call_id": "c",
                        "output": [{"type": "input_image", "image_url": "x"}],
                    }
                ]
            },
            "input[0].output[0].type",
        ),
    ],
)
def test_refusals_name_the_field(body: dict[str, Any], param: str) -> None:
    decoded = _decode(body)
    problem: Any = decoded
    if isinstance(decoded, ResponsesRequest):  # refused by the gateway's own checks
        problem = stream_request(decoded, id="resp_1", provider="rulebased", model=None, agent=None)
    assert isinstance(problem, Problem)
    assert problem.param == param, problem


def test_a_body_that_is_not_json_is_refused() -> None:
    problem = decode_responses_request(b"{")
    assert isinstance(problem, Problem)
    assert problem.param is None


# ---- the encoder -------------------------------------------------------------------------------

ACK = StartAck(id="resp_1", seq=0, provider="parts", model="m", key="k")


def _done(finish: str = "stop", **fields: Any) -> Done:
    usage = Usage(prompt_tokens=5, completion_tokens=7, total_tokens=12, estimated=False, reasoning_tokens=2)
    metrics = Metrics("parts", "m", None, 1.0, None, None)
    return Done(id="resp_1", seq=9, finish_reason=finish, content="", usage=usage, metrics=metrics, **fields)


def _shell() -> Any:
    request = _decode({"input": "x", "tools": [{"type": "function", "name": "w"}]})
    assert isinstance(request, ResponsesRequest)
    return shell(request, id="resp_1", created_at=1767225600)


def _events(messages: list[ServerMessage]) -> list[dict[str, Any]]:
    encoder = EventsEncoder(_shell())
    raw = b"".join(encoder(message) for message in messages).decode()
    events = []
    for block in raw.split("\n\n")[:-1]:
        event, data = block.split("\n")
        payload = json.loads(data.removeprefix("data: "))
        assert event == "event: " + payload["type"]
        events.append(payload)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def test_reasoning_text_and_interleaved_calls_in_order() -> None:
    events = _events(
        [
            ACK,
            ReasoningChunk(id="resp_1", seq=1, content="Hmm."),
            Chunk(id="resp_1", seq=2, content="Both."),
            ToolCallStart(id="resp_1", seq=3, call_id="a", name="w", index=0),
            ToolCallStart(id="resp_1", seq=4, call_id="b", name="w", index=1),
            ToolCallDelta(id="resp_1", seq=5, call_id="b", arguments_delta='{"x": 1}'),
            ToolCallEnd(id="resp_1", seq=6, call_id="a", name="w", arguments={}),
            ToolCallEnd(id="resp_1", seq=7, call_id="b", name="w", arguments={"x": 1}),
            _done("tool_calls", provider_state="s"),
        ]
    )
    assert [(e["type"], e.get("output_index")) for e in events] == [
        ("response.created", None),
        ("response.in_progress", None),
        ("response.output_item.added", 0),
        ("response.content_part.added", 0),
        ("response.reasoning_text.delta", 0),
        ("response.reasoning_text.done", 0),
        ("response.content_part.done", 0),
        ("response.output_item.done", 0),
        ("response.output_item.added", 1),
        ("response.content_part.added", 1),
        ("response.output_text.delta", 1),
        ("response.output_text.done", 1),
        ("response.content_part.done", 1),
        ("response.output_item.done", 1),
        ("response.output_item.added", 2),
        ("response.output_item.added", 3),
        ("response.function_call_arguments.delta", 3),
        ("response.function_call_arguments.done", 2),
        ("response.output_item.done", 2),
        ("response.function_call_arguments.done", 3),
        ("response.output_item.done", 3),
        ("response.output_item.added", 4),
        ("response.output_item.done", 4),
        ("response.completed", None),
    ]
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
        "reasoning",
    ]
    assert final["output"][2]["arguments"] == "{}"  # a call with no argument text
    assert final["output"][3]["arguments"] == '{"x": 1}'
    assert final["output"][4]["encrypted_content"] == "s"
    assert final["usage"] == {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 12,
    }
    assert final["tools"] == [
        {"type": "function", "name": "w", "description": None, "parameters": None, "strict": None}
    ]


def test_an_error_fails_the_response_with_the_output_so_far() -> None:
    error = Error(id="resp_1", seq=2, code=ErrorCode.UPSTREAM_UNAVAILABLE, message="gone", retryable=True)
    events = _events([ACK, Chunk(id="resp_1", seq=1, content="Hal"), error])
    failed = events[-1]
    assert failed["type"] == "response.failed"
    assert failed["response"]["error"] == {"code": "server_error", "message": "gone (upstream_unavailable)"}
    assert failed["response"]["output"][0]["status"] == "incomplete"


def test_the_non_streamed_response_reads_text_entries() -> None:
    body = json.loads(response_json(_shell(), [ACK, "Hel", "lo", _done("length")]))
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["output"][0]["content"] == [
        {"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}
    ]


def test_a_cancelled_stream_is_incomplete_without_a_reason() -> None:
    events = _events([ACK, Chunk(id="resp_1", seq=1, content="Hal"), _done("cancelled")])
    last = events[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] is None
    assert last["response"]["output"][0]["status"] == "incomplete"
