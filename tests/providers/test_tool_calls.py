"""The tool-call tracker every dialect assembles calls with."""

from __future__ import annotations

from protocol.structured import parse_arguments
from providers.base import StreamEvent, ToolCallDelta, ToolCallEnd, ToolCallStart
from providers.tool_calls import ToolCallTracker


def test_fragments_are_joined_and_parsed_once_at_the_end() -> None:
    tracker, out = ToolCallTracker(), list[StreamEvent]()
    tracker.start(0, "call_a", "get_weather", out)
    for piece in ['{"ci', "", 'ty": "Par', 'is"}']:
        tracker.delta(0, piece, out)
    tracker.end_all(out)
    assert out == [
        ToolCallStart(0, "call_a", "get_weather"),
        ToolCallDelta("call_a", '{"ci'),
        ToolCallDelta("call_a", 'ty": "Par'),
        ToolCallDelta("call_a", 'is"}'),
        ToolCallEnd("call_a", "get_weather", {"city": "Paris"}),
    ]


def test_calls_are_numbered_in_order_and_get_an_id_when_the_provider_has_none() -> None:
    tracker, out = ToolCallTracker(), list[StreamEvent]()
    tracker.whole("a", None, "one", '{"x": 1}', out)
    tracker.whole("b", None, "two", "{}", out)
    starts = [e for e in out if isinstance(e, ToolCallStart)]
    assert [s.index for s in starts] == [0, 1]
    assert all(s.call_id.startswith("call_") for s in starts)
    assert starts[0].call_id != starts[1].call_id
    assert tracker.count == 2


def test_a_new_call_under_an_open_key_ends_the_old_one() -> None:
    tracker, out = ToolCallTracker(), list[StreamEvent]()
    tracker.start(0, "c1", "a", out)
    tracker.start(0, "c2", "b", out)
    assert [type(e) for e in out] == [ToolCallStart, ToolCallEnd, ToolCallStart]
    assert tracker.is_open(0)


def test_arguments() -> None:
    assert parse_arguments("") == ({}, None)
    assert parse_arguments('{"a": [1, "\\u00e9"]}') == ({"a": [1, "é"]}, None)
    value, error = parse_arguments('{"a": ')
    assert value is None
    assert error is not None
    assert error.startswith("the arguments are not valid JSON")
    assert parse_arguments("[1]") == (None, "the arguments are not a JSON object")
