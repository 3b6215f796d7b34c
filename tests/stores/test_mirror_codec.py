"""The mirror's format, byte for byte: the expected entries are what the gateway wrote before the
codec had a module of its own, so instances of either version read each other's mirrors."""

from __future__ import annotations

import msgspec
import pytest

from protocol.codec import encode
from protocol.errors import ErrorCode
from protocol.messages import (
    Done,
    Error,
    Metrics,
    Notice,
    ReasoningChunk,
    StartAck,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from server.stores.mirror_codec import MirrorEntry, decode, encode_event, encode_notice
from server.streams.eventlog import Entry

ACK = StartAck(id="s1", seq=0, provider="openai", model="gpt-4o-mini", key="Kx_9-q")
RETRY = Notice(
    id="s1",
    code="retrying",
    message="openai failed (upstream_unavailable); retrying in 0.25 s",
    provider="openai",
    model="gpt-4o-mini",
    attempt=2,
    reason=ErrorCode.UPSTREAM_UNAVAILABLE,
    delay_s=0.25,
)
FAILOVER = Notice(
    id="s1",
    code="failover",
    message="openai failed; trying anthropic",
    provider="anthropic",
    model="claude",
    attempt=3,
    reason=ErrorCode.UPSTREAM_RATE_LIMITED,
)
DONE = Done(
    id="s1",
    seq=5,
    finish_reason="stop",
    content="Hé 世界 🎉",
    usage=Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7, estimated=True),
    metrics=Metrics(
        provider="openai",
        model="gpt-4o-mini",
        ttft_ms=12.5,
        duration_ms=40.25,
        tokens_per_second=None,
        estimated_cost_usd=None,
    ),
)
ERROR = Error(id="s1", seq=5, code=ErrorCode.TIMEOUT, message="no data for 2 s — «idle»", retryable=True)
ERROR_FULL = Error(
    id="s1",
    seq=5,
    code=ErrorCode.UPSTREAM_RATE_LIMITED,
    message="slow down",
    retryable=True,
    retry_after_s=1.5,
    provider="openai",
    status=429,
)

EVENTS: list[tuple[int, Entry, MirrorEntry]] = [
    (
        0,
        ACK,
        (
            b"1-0",
            b"j",
            b'{"type":"start","id":"s1","seq":0,"provider":"openai","model":"gpt-4o-mini","key":"Kx_9-q"}',
        ),
    ),
    (1, "Hello", (b"2-0", b"t", b"Hello")),
    (2, "", (b"3-0", b"t", b"")),
    (3, "Hé 世界 🎉", (b"4-0", b"t", b"H\xc3\xa9 \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x8e\x89")),
    (4, 'q"\\\n\t\x00', (b"5-0", b"t", b'q"\\\n\t\x00')),
    (99999, "late", (b"100000-0", b"t", b"late")),
    (
        5,
        DONE,
        (
            b"6-0",
            b"j",
            b'{"type":"done","id":"s1","seq":5,"finish_reason":"stop",'
            b'"content":"H\xc3\xa9 \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x8e\x89",'
            b'"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"estimated":true},'
            b'"metrics":{"provider":"openai","model":"gpt-4o-mini","ttft_ms":12.5,"duration_ms":40.25,'
            b'"tokens_per_second":null,"estimated_cost_usd":null}}',
        ),
    ),
    (
        5,
        ERROR,
        (
            b"6-0",
            b"j",
            b'{"type":"error","id":"s1","seq":5,"code":"timeout",'
            b'"message":"no data for 2 s \xe2\x80\x94 \xc2\xabidle\xc2\xbb","retryable":true}',
        ),
    ),
    (
        5,
        ERROR_FULL,
        (
            b"6-0",
            b"j",
            b'{"type":"error","id":"s1","seq":5,"code":"upstream_rate_limited","message":"slow down",'
            b'"retryable":true,"retry_after_s":1.5,"provider":"openai","status":429}',
        ),
    ),
]

NOTICES: list[tuple[int, Notice, MirrorEntry]] = [
    (
        1,
        RETRY,
        (
            b"1-1",
            b"j",
            b'{"type":"notice","id":"s1","code":"retrying",'
            b'"message":"openai failed (upstream_unavailable); retrying in 0.25 s",'
            b'"provider":"openai","model":"gpt-4o-mini","attempt":2,"reason":"upstream_unavailable","delay_s":0.25}',
        ),
    ),
    (
        2,
        FAILOVER,
        (
            b"1-2",
            b"j",
            b'{"type":"notice","id":"s1","code":"failover","message":"openai failed; trying anthropic",'
            b'"provider":"anthropic","model":"claude","attempt":3,"reason":"upstream_rate_limited"}',
        ),
    ),
]


def _name(case: tuple[int, object, MirrorEntry]) -> str:
    return case[2][0].decode() + ":" + (type(case[1]).__name__)


@pytest.mark.parametrize("case", EVENTS, ids=_name)
def test_an_event_is_written_as_before_and_read_back(case: tuple[int, Entry, MirrorEntry]) -> None:
    seq, event, written = case
    assert encode_event(seq, event) == written
    entry_id, field, value = written
    assert decode(entry_id, {field: value}) == (seq, event)


@pytest.mark.parametrize("case", NOTICES, ids=_name)
def test_a_notice_is_written_as_before_and_read_back(case: tuple[int, Notice, MirrorEntry]) -> None:
    n, notice, written = case
    assert encode_notice(n, notice) == written
    entry_id, field, value = written
    assert decode(entry_id, {field: value}) == (n, notice)


@pytest.mark.parametrize(
    ("entry_id", "event"),
    [
        (b"2-0", RETRY),  # a notice where an event goes
        (b"1-1", ACK),  # an event where a notice goes
        (b"3-0", ACK),  # an ack past seq 0
        (b"1-0", DONE),  # seq 0 that is not the ack
    ],
)
def test_an_entry_out_of_its_place_is_refused(entry_id: bytes, event: StartAck | Notice | Done) -> None:
    assert decode(entry_id, {b"j": encode(event)}) is None


PARTS: list[tuple[int, Entry]] = [
    (1, ReasoningChunk(id="s1", seq=1, content="thinking…")),
    (2, ToolCallStart(id="s1", seq=2, call_id="call_1", name="get_weather", index=0)),
    (3, ToolCallDelta(id="s1", seq=3, call_id="call_1", arguments_delta='{"city": "Par')),
    (4, ToolCallEnd(id="s1", seq=4, call_id="call_1", name="get_weather", arguments={"city": "Paris"})),
    (5, ToolCallEnd(id="s1", seq=5, call_id="c2", name="x", arguments=None, arguments_error="not JSON")),
]


@pytest.mark.parametrize("case", PARTS, ids=lambda case: type(case[1]).__name__)
def test_a_part_is_mirrored_as_its_protocol_json_and_read_back(case: tuple[int, Entry]) -> None:
    seq, part = case
    entry_id, field, value = encode_event(seq, part)
    assert (entry_id, field) == (b"%d-0" % (seq + 1), b"j")
    assert msgspec.json.decode(value)["type"] == part.__struct_config__.tag  # type: ignore[union-attr]
    assert decode(entry_id, {field: value}) == (seq, part)
