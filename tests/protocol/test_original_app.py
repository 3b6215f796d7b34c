"""The original application's event formats, encoded from protocol v1 events."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from protocol.errors import ErrorCode
from protocol.messages import Chunk, Done, Error, Metrics, ServerMessage, StartAck, Usage
from protocol.original_app import AgentChatBody, ScriptEventEncoder, ScriptStreamBody, agent_chat_event

DONE = Done(
    id="s",
    seq=4,
    finish_reason="stop",
    content="abc",
    usage=Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3, estimated=True),
    metrics=Metrics(
        provider="rulebased",
        model="script",
        ttft_ms=1.0,
        duration_ms=2.0,
        tokens_per_second=3.0,
        estimated_cost_usd=0.0,
    ),
)


def _events(frames: bytes) -> list[tuple[str, Any]]:
    out = []
    for block in frames.decode().split("\n\n"):
        if block:
            lines = dict(line.split(": ", 1) for line in block.split("\n"))
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_script_encoder_accumulates_and_marks_the_final_chunk() -> None:
    encode = ScriptEventEncoder()
    messages: list[ServerMessage] = [
        StartAck(id="s", seq=0, provider="rulebased", model="script", key="k" * 32),
        Chunk(id="s", seq=1, content="a"),
        Chunk(id="s", seq=3, content="bc", from_seq=2),
        DONE,
    ]
    frames = b"".join(encode(m) for m in messages)
    events = _events(frames)
    assert [name for name, _ in events] == ["chunk", "chunk", "chunk", "done"]
    assert [data["accumulated"] for _, data in events[:3]] == ["a", "abc", "abc"]
    assert [data["tokenIndex"] for _, data in events[:3]] == [0, 2, 3]
    assert [data["isFinal"] for _, data in events[:3]] == [False, False, True]
    assert events[2][1]["content"] == ""
    assert events[0][1]["metadata"] == {"model": "script", "seq": 1}
    assert events[3][1]["finishReason"] == "stop"
    assert events[3][1]["metadata"]["usage"] == {
        "promptTokens": 1,
        "completionTokens": 2,
        "totalTokens": 3,
        "estimated": True,
    }


def test_errors_in_both_formats() -> None:
    error = Error(id="s", seq=2, code=ErrorCode.TIMEOUT, message="late", retryable=True)
    expected = [("error", {"message": "late", "code": "timeout"})]
    assert _events(ScriptEventEncoder()(error)) == expected
    assert _events(agent_chat_event(error)) == expected


def test_agent_chat_events() -> None:
    assert agent_chat_event(StartAck(id="s", seq=0, provider="p", model="m", key="k" * 32)) == b""
    assert _events(agent_chat_event(Chunk(id="s", seq=1, content="hi"))) == [("token", {"content": "hi"})]
    assert _events(agent_chat_event(DONE)) == [("done", {"totalTokens": 3, "finishReason": "stop"})]


def test_camel_case_bodies_become_stream_requests() -> None:
    body = msgspec.json.decode(
        b'{"brief":{"topic":"t"},"planSpec":{"targetDurationSeconds":30,"density":"dense"},"providerName":"rulebased"}',
        type=ScriptStreamBody,
    )
    request = body.to_request()
    assert request.provider == "rulebased"
    assert request.plan is not None
    assert request.plan.target_duration_seconds == 30
    assert request.plan.density == "dense"
    chat = msgspec.json.decode(
        b'{"prompt":"p","conversationHistory":[{"role":"user","content":"h"}],"additionalContext":"ctx"}',
        type=AgentChatBody,
    ).to_request("assistant")
    assert chat.agent == "assistant"
    assert [(m.role, m.content) for m in chat.messages or []] == [
        ("user", "h"),
        ("system", "Additional context: ctx"),
        ("user", "p"),
    ]
