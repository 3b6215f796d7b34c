"""Protocol v1 messages: round trips, decoding errors with paths, SSE framing."""

from __future__ import annotations

import json

import msgspec
import pytest

from protocol import (
    BadMessage,
    Cancel,
    ChatMessage,
    Chunk,
    Done,
    Error,
    ErrorCode,
    Limits,
    Metrics,
    Options,
    Ping,
    Pong,
    ProviderInfo,
    Ready,
    ServerInfo,
    ServerMessage,
    StartAck,
    StartRequest,
    StreamRequest,
    Usage,
    decode_client_message,
    decode_http_request,
    encode,
)
from protocol.messages import Brief, Plan
from protocol.sse import KEEPALIVE, sse_frame, v1_event

USAGE = Usage(prompt_tokens=3, completion_tokens=5, total_tokens=8, estimated=True)
METRICS = Metrics(
    provider="rulebased",
    model="script",
    ttft_ms=1.5,
    duration_ms=20.0,
    tokens_per_second=250.0,
    estimated_cost_usd=0.0,
)
SERVER_MESSAGES: list[ServerMessage] = [
    Ready(
        protocol=1,
        server=ServerInfo("tokenwire", "0.1.0"),
        providers=[ProviderInfo("rulebased", "native", True, "script")],
        limits=Limits(16, 65536),
    ),
    StartAck(id="a", seq=0, provider="rulebased", model="script", key="k" * 32),
    Chunk(id="a", seq=1, content="Hello "),
    Chunk(id="a", seq=4, content="merged", from_seq=2),
    Done(id="a", seq=5, finish_reason="stop", content="Hello merged", usage=USAGE, metrics=METRICS),
    Error(id="a", seq=6, code=ErrorCode.TIMEOUT, message="late", retryable=True, provider="x", status=504),
    Error(code=ErrorCode.BAD_MESSAGE, message="bad", retryable=False),
    Pong(ts=12),
]
CLIENT_MESSAGES = [
    StartRequest(id="a", prompt="hi", options=Options(temperature=0.5, max_tokens=10, stop=["\n"])),
    StartRequest(
        id="b.1:x-y", messages=[ChatMessage("user", "hi")], provider="rulebased", model="m", agent="g"
    ),
    StartRequest(id="c", brief=Brief(topic="t"), plan=Plan(target_duration_seconds=30, pacing="fast")),
    Cancel(id="a"),
    Ping(ts="abc"),
    Ping(),
]


@pytest.mark.parametrize("message", SERVER_MESSAGES, ids=lambda m: type(m).__name__)
def test_server_messages_round_trip(message: ServerMessage) -> None:
    decoded = msgspec.json.decode(encode(message), type=ServerMessage)
    assert decoded == message


@pytest.mark.parametrize("message", CLIENT_MESSAGES, ids=lambda m: type(m).__name__)
def test_client_messages_round_trip(message: StartRequest | Cancel | Ping) -> None:
    assert decode_client_message(msgspec.json.encode(message)) == message


def test_optional_fields_are_left_out_of_the_wire() -> None:
    assert json.loads(encode(Chunk(id="a", seq=1, content="x"))) == {
        "type": "chunk",
        "id": "a",
        "seq": 1,
        "content": "x",
    }
    assert json.loads(encode(Error(code=ErrorCode.BAD_MESSAGE, message="m", retryable=False))) == {
        "type": "error",
        "code": "bad_message",
        "message": "m",
        "retryable": False,
    }
    done = json.loads(encode(SERVER_MESSAGES[4]))
    assert set(done) == {"type", "id", "seq", "finish_reason", "content", "usage", "metrics"}
    assert json.loads(encode(StartAck(id="a", seq=0, provider="p", model="m", key="k" * 32)))["seq"] == 0


@pytest.mark.parametrize(
    ("raw", "expected_id", "fragment"),
    [
        (b"{", None, "not valid JSON"),
        (b"[]", None, "Expected `object`"),
        (b'{"type":"start","id":"a","prompt":"x","options":{"top_p":2}}', "a", "`$.options.top_p`"),
        (b'{"type":"start","id":"a","prompt":"x","options":{"stop":' + b'["s"]' * 1 + b"}}", None, ""),
        (b'{"type":"start","id":"a","prompt":"  "}', "a", "`$.prompt`"),
        (b'{"type":"start","id":"a","plan":{},"prompt":"x"}', "a", "`plan` goes with `brief`"),
        (b'{"type":"start","id":"a","messages":[{"role":"system","content":"x"}]}', "a", "role `user`"),
        (b'{"type":"start","id":"a","brief":{"topic":""}}', "a", "`$.brief.topic`"),
        (b'{"type":"start","id":7,"prompt":"x"}', None, "`$.id`"),
        ('{"type":"cancel","id":"ü"}', None, "`$.id`"),
    ],
)
def test_bad_messages_say_what_and_where(raw: bytes | str, expected_id: str | None, fragment: str) -> None:
    result = decode_client_message(raw)
    if not fragment:
        assert isinstance(result, StartRequest)
        return
    assert isinstance(result, BadMessage)
    assert result.id == expected_id
    assert fragment in result.message


KEY = "k" * 32


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r", "\x00"])
@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"type": "start", "id": "a{end}", "prompt": "x"}, "id"),
        ({"type": "cancel", "id": "a{end}"}, "id"),
        ({"type": "cancel", "key": KEY + "{end}"}, "key"),
        ({"type": "resume", "key": KEY + "{end}"}, "key"),
        ({"type": "resume", "key": KEY, "id": "a{end}"}, "id"),
    ],
)
def test_an_id_or_key_with_a_line_end_after_it_is_refused(
    message: dict[str, str], field: str, end: str
) -> None:
    def decoded(end: str) -> object:
        return decode_client_message(json.dumps({k: v.format(end=end) for k, v in message.items()}))

    assert not isinstance(decoded(""), BadMessage)
    result = decoded(end)
    assert isinstance(result, BadMessage), result
    assert f"`$.{field}`" in result.message
    assert result.id is None  # nor is such an id named in the refusal


def test_a_trailing_line_end_is_not_part_of_a_request_id() -> None:
    bad = decode_http_request(b'{"id":"q\\n","prompt":"x"}')
    assert isinstance(bad, BadMessage)
    assert "`$.id`" in bad.message


def test_http_body_decoding() -> None:
    assert decode_http_request(b'{"prompt":"x"}') == StreamRequest(prompt="x")
    bad = decode_http_request(b'{"id":"q","prompt":"x","brief":{"topic":"t"}}')
    assert isinstance(bad, BadMessage)
    assert bad.id == "q"
    assert isinstance(decode_http_request(b"nope"), BadMessage)


def test_stop_may_be_a_string_or_a_short_list() -> None:
    ok = decode_client_message(b'{"type":"start","id":"a","prompt":"x","options":{"stop":"END"}}')
    assert isinstance(ok, StartRequest)
    assert ok.options == Options(stop="END")
    too_many = json.dumps({"type": "start", "id": "a", "prompt": "x", "options": {"stop": ["s"] * 17}})
    assert isinstance(decode_client_message(too_many), BadMessage)


def test_sse_framing() -> None:
    assert sse_frame("done", b"{}") == b"event: done\ndata: {}\n\n"
    assert sse_frame("chunk", b'{"a":1}', 3) == b'id: 3\nevent: chunk\ndata: {"a":1}\n\n'
    assert KEEPALIVE.startswith(b":")
    frame = v1_event(Chunk(id="a", seq=2, content="line\nbreak\u2028"))
    head, data = frame.split(b"\ndata: ")
    assert head == b"id: 2\nevent: chunk"
    assert data.endswith(b"\n\n")
    assert data.count(b"\n") == 2, "a payload must stay on one data line"
    assert json.loads(data)["content"] == "line\nbreak\u2028"
    assert v1_event(Error(code=ErrorCode.INTERNAL, message="x", retryable=True)).startswith(b"event: error\n")
