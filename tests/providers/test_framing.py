"""The framing bounds (providers/framing.py): what one line, and one SSE event, may hold."""

from __future__ import annotations

from providers.base import Failure, TextDelta
from providers.dialects.openai import ChatStreamParser
from providers.framing import MAX_EVENT, MAX_LINE, NDJSONDecoder, SSEDecoder

MIB = 1024 * 1024


def test_an_event_of_many_data_lines_is_cut_at_the_event_bound() -> None:
    decoder = SSEDecoder(max_line=100, max_event=1000)
    line = b"data: " + b"x" * 90 + b"\n"
    assert decoder.feed(line * 11) == []  # 990 bytes of data: under the bound
    assert decoder.overflow is None
    assert decoder.feed(line) == []  # 1080: over it, the event's data is dropped
    assert decoder.overflow == "event"


def test_the_event_bound_counts_one_event_at_a_time() -> None:
    decoder = SSEDecoder(max_line=100, max_event=1000)
    event = b"data: " + b"x" * 90 + b"\n"
    events = decoder.feed((event * 10 + b"\n") * 5)  # 5 events of 900 bytes, 4500 in all
    assert len(events) == 5
    assert decoder.overflow is None


def test_real_sized_events_pass() -> None:
    # One line at the line bound's edge, then an event of two such lines: both under MAX_EVENT.
    big = b"y" * (MAX_LINE - 16)
    decoder = SSEDecoder()
    events = decoder.feed(b"data: " + big + b"\n\ndata: " + big + b"\ndata: " + big + b"\n\n")
    assert [len(e.data) for e in events] == [len(big), 2 * len(big) + 1]
    assert decoder.overflow is None


def test_many_data_lines_end_the_stream_unretryable() -> None:
    parser = ChatStreamParser("openai")
    hello = b'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    assert parser.feed(hello) == [TextDelta("Hel")]
    line = b"data: " + b"z" * MIB + b"\n"
    events = []
    for _ in range(MAX_EVENT // MIB + 1):  # the attack sent 150 of them, growing without bound
        events += parser.feed(line)
    assert len(events) == 1
    failure = events[0]
    assert isinstance(failure, Failure)
    assert failure.error.code == "upstream_protocol"
    assert failure.error.message == "openai sent an over-long event"
    assert failure.error.retryable is False
    assert parser.feed(line + b"\n") == []
    assert parser.close() == []


def test_an_over_long_line_is_unretryable_too() -> None:
    parser = ChatStreamParser("openai")
    events = parser.feed(b"data: " + b"x" * (MAX_LINE + 1))
    assert len(events) == 1
    assert isinstance(events[0], Failure)
    assert events[0].error.message == "openai sent an over-long line"
    assert events[0].error.retryable is False


def test_ndjson_holds_no_more_than_one_line() -> None:
    decoder = NDJSONDecoder(max_line=100)
    assert decoder.feed(b'{"a":1}\n' * 1000) == [b'{"a":1}'] * 1000
    assert decoder.overflow is None
    decoder.feed(b"x" * 101)
    assert decoder.overflow == "line"
