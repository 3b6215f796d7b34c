"""OpenAI and Azure OpenAI typed parts: tool calls, reasoning and token details parsed from the
recorded streams and from new transcripts (whole, byte by byte, in seeded random splits), and the
non-streaming completion's parts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from providers.base import (
    Completion,
    Failure,
    Finish,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from providers.dialect import ProviderSettings
from providers.dialects.azure_openai import AzureOpenAIDialect
from providers.dialects.openai import ChatStreamParser, OpenAIDialect, parse_completion
from tests.support.transcripts import events_in_every_split

RECORDED = Path(__file__).parent / "recorded"
DONE = b"data: [DONE]\n\n"
# The ids the tracker makes for calls the provider named none (providers.tool_calls.new_call_id).
MADE_UP_ID = re.compile(r"\Acall_[A-Za-z0-9_-]{16}\Z")


class _NumberedIds:
    """The parser with made-up call ids renamed ``made-up-0``, ``made-up-1``…, so that runs
    over different splits compare equal."""

    def __init__(self, provider: str) -> None:
        self._parser = ChatStreamParser(provider)
        self._names: dict[str, str] = {}

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        return [self._rename(e) for e in self._parser.feed(chunk)]

    def close(self) -> list[StreamEvent]:
        return [self._rename(e) for e in self._parser.close()]

    def _rename(self, event: StreamEvent) -> StreamEvent:
        if isinstance(event, ToolCallStart | ToolCallDelta | ToolCallEnd) and MADE_UP_ID.match(event.call_id):
            name = self._names.setdefault(event.call_id, f"made-up-{len(self._names)}")
            return msgspec.structs.replace(event, call_id=name)
        return event


def _parse(data: bytes, provider: str = "openai") -> list[Any]:
    return events_in_every_split(lambda: _NumberedIds(provider), data)


def _recording(name: str) -> bytes:
    """A recorded body; ``*.chunks.txt`` (one payload per line) framed as OpenAI sends it."""
    data = (RECORDED / name).read_bytes()
    if not name.endswith(".chunks.txt"):
        return data
    return b"".join(b"data: " + line + b"\n\n" for line in data.splitlines() if line.strip()) + DONE


def _deltas(data: bytes) -> list[Any]:
    """The reasoning and text deltas of a recording, read with the json module: the oracle the
    parser's long delta runs are checked against."""
    out: list[Any] = []
    for line in data.splitlines():
        if not line.startswith(b"data: {"):
            continue
        for choice in json.loads(line[len(b"data: ") :]).get("choices") or []:
            delta = choice.get("delta") or {}
            if reasoning := delta.get("reasoning_content") or delta.get("reasoning"):
                out.append(ReasoningDelta(reasoning))
            if content := delta.get("content"):
                out.append(TextDelta(content))
    return out


def _text(events: list[Any], kind: type[TextDelta] | type[ReasoningDelta] = TextDelta) -> str:
    return "".join(e.text for e in events if type(e) is kind)


# ---- recorded streams ------------------------------------------------------------------------


def test_recorded_gpt4o_mini_tool_call_only() -> None:
    call = "call_ZR5UUuTt3pf61kjwAJIYdVMj"
    assert _parse(_recording("openai-gpt4omini-toolcall-only.sse")) == [
        ToolCallStart(0, call, "get_capital"),
        ToolCallDelta(call, '{"'),
        ToolCallDelta(call, "country"),
        ToolCallDelta(call, '":"'),
        ToolCallDelta(call, "UK"),
        ToolCallDelta(call, '"}'),
        Usage(53, 15, reasoning_tokens=0, cached_tokens=0),
        ToolCallEnd(call, "get_capital", {"country": "UK"}),
        Finish("tool_calls"),
    ]


def test_recorded_gpt4o_mini_text_with_usage_details() -> None:
    data = _recording("openai-gpt4omini-text-usage.sse")
    events = _parse(data)
    assert events == [*_deltas(data), Usage(78, 9, reasoning_tokens=0, cached_tokens=0), Finish("stop")]
    assert _text(events) == "The capital of the UK is London."
    assert len(events) == 10


def test_recorded_gpt5_moderation_chunk_after_usage_is_ignored() -> None:
    assert _parse(_recording("openai-gpt5-moderation-trailing-chunk.sse")) == [
        TextDelta("Paris"),
        TextDelta("."),
        Usage(13, 11, reasoning_tokens=0, cached_tokens=0),
        Finish("stop"),
    ]


def test_recorded_gpt41_nano_long_text() -> None:
    data = _recording("openai-gpt41nano-text.chunks.txt")
    events = _parse(data)
    assert events == [*_deltas(data), Usage(16, 300, reasoning_tokens=0, cached_tokens=0), Finish("stop")]
    assert sum(type(e) is TextDelta for e in events) == 300
    assert _text(events).startswith("**Holiday Name:** Harmony Day\n\n**Date:**")


def test_recorded_deepseek_reasoning_content_then_text() -> None:
    data = _recording("deepseek-reasoner-reasoning-content.sse")
    events = _parse(data)
    # Usage rides on DeepSeek's finish chunk, not on a chunk of its own.
    assert events == [*_deltas(data), Usage(6, 212, reasoning_tokens=198, cached_tokens=0), Finish("stop")]
    assert [type(e) for e in events[:198]] == [ReasoningDelta] * 198
    assert [type(e) for e in events[198:209]] == [TextDelta] * 11
    assert _text(events, ReasoningDelta).startswith('Hmm, the user just said "Hello".')
    assert _text(events) == "Hello there! 😊 How can I help you today?"


def test_recorded_openrouter_reasoning_then_error_chunk() -> None:
    # A numeric error code is read as an HTTP status: 400, not retryable.
    data = _recording("openrouter-minimax-midstream-error.sse")
    failure = ChatStreamParser("openai").feed(data)[-1]
    assert isinstance(failure, Failure)
    assert failure.error.retryable is False
    assert _parse(data) == [
        ReasoningDelta("We need"),
        ReasoningDelta(" to respond to a greeting. The user"),
        (
            "failure",
            "UpstreamBadRequest",
            "upstream_bad_request",
            "openai reported an error mid-stream: Token limit reached",
            400,
            None,
        ),
    ]


def test_recorded_groq_reasoning_then_error_event() -> None:
    data = _recording("groq-gptoss-tool-use-failed.sse")
    events = _parse(data)
    assert events[:-1] == _deltas(data)
    assert len(events) == 94
    assert _text(events, ReasoningDelta).startswith("We need to call the tool with invalid parameters first")
    assert events[-1][:3] == ("failure", "UpstreamBadRequest", "upstream_bad_request")
    assert events[-1][3].startswith("openai reported an error mid-stream: Tool call validation failed")
    assert events[-1][4] == 400


def test_recorded_azure_filter_results_and_reasoning_tokens() -> None:
    assert _parse(_recording("azure-gpt5nano-model-router.chunks.txt"), "azure_openai") == [
        TextDelta("Capital"),
        TextDelta(" of"),
        TextDelta(" Denmark"),
        TextDelta("."),
        Usage(15, 78, reasoning_tokens=64, cached_tokens=0),
        Finish("stop"),
    ]


# ---- transcripts -----------------------------------------------------------------------------

ENVELOPE = {
    "id": "chatcmpl-T1",
    "object": "chat.completion.chunk",
    "created": 1767225600,
    "model": "gpt-4o-2024-08-06",
    "system_fingerprint": "fp_5050236cbd",
}
ROLE = {"role": "assistant", "content": None}


def _data(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None, usage: Any = None) -> bytes:
    choice = {"index": 0, "delta": {} if delta is None else delta, "logprobs": None, "finish_reason": finish}
    return _data({**ENVELOPE, "choices": [choice], "usage": usage})


def _usage(prompt: int, completion: int, **details: Any) -> bytes:
    return _data(
        {
            **ENVELOPE,
            "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, **details},
        }
    )


def _calls(*pieces: dict[str, Any]) -> bytes:
    return _chunk({"tool_calls": list(pieces)})


def _piece(
    index: int | None, arguments: Any = None, *, id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    """One ``delta.tool_calls`` item as OpenAI writes it: id, type and name on the first only."""
    piece: dict[str, Any] = {} if index is None else {"index": index}
    if id is not None:
        piece |= {"id": id, "type": "function"}
    function: dict[str, Any] = {}
    if name is not None:
        function["name"] = name
    if arguments is not None:
        function["arguments"] = arguments
    return piece | {"function": function}


def test_parallel_calls_one_after_the_other_end_at_done_in_order() -> None:
    data = (
        _chunk(ROLE)
        + _calls(_piece(0, "", id="call_a", name="get_weather"))
        + _calls(_piece(0, '{"city":'))
        + _calls(_piece(0, '"Oslo"}'))
        + _calls(_piece(1, "", id="call_b", name="get_time"))
        + _calls(_piece(1, '{"tz":"CET"}'))
        + _chunk(finish="tool_calls")
        + _usage(149, 60, completion_tokens_details={"reasoning_tokens": 0})
        + DONE
    )
    assert _parse(data) == [
        ToolCallStart(0, "call_a", "get_weather"),
        ToolCallDelta("call_a", '{"city":'),
        ToolCallDelta("call_a", '"Oslo"}'),
        ToolCallStart(1, "call_b", "get_time"),
        ToolCallDelta("call_b", '{"tz":"CET"}'),
        Usage(149, 60, reasoning_tokens=0),
        ToolCallEnd("call_a", "get_weather", {"city": "Oslo"}),
        ToolCallEnd("call_b", "get_time", {"tz": "CET"}),
        Finish("tool_calls"),
    ]


def test_interleaved_calls_keyed_by_an_index_starting_at_one_after_text() -> None:
    data = (
        _chunk({"role": "assistant", "content": "Checking"})
        + _calls(_piece(1, "", id="call_a", name="get_weather"))
        + _calls(_piece(2, "", id="call_b", name="get_time"))
        + _calls(_piece(1, '{"city":'))
        + _calls(_piece(2, '{"tz":"CET"}'))
        + _calls(_piece(1, '"Oslo"}'))
        + _chunk(finish="tool_calls")
        + DONE
    )
    assert _parse(data) == [
        TextDelta("Checking"),
        ToolCallStart(0, "call_a", "get_weather"),
        ToolCallStart(1, "call_b", "get_time"),
        ToolCallDelta("call_a", '{"city":'),
        ToolCallDelta("call_b", '{"tz":"CET"}'),
        ToolCallDelta("call_a", '"Oslo"}'),
        ToolCallEnd("call_a", "get_weather", {"city": "Oslo"}),
        ToolCallEnd("call_b", "get_time", {"tz": "CET"}),
        Finish("tool_calls"),
    ]


def test_two_pieces_of_one_chunk_go_to_their_calls() -> None:
    data = (
        _calls(_piece(0, '{"a":', id="call_a", name="f"), _piece(1, '{"b":', id="call_b", name="g"))
        + _calls(_piece(1, "2}"), _piece(0, "1}"))
        + _chunk(finish="tool_calls")
        + DONE
    )
    assert _parse(data) == [
        ToolCallStart(0, "call_a", "f"),
        ToolCallDelta("call_a", '{"a":'),
        ToolCallStart(1, "call_b", "g"),
        ToolCallDelta("call_b", '{"b":'),
        ToolCallDelta("call_b", "2}"),
        ToolCallDelta("call_a", "1}"),
        ToolCallEnd("call_a", "f", {"a": 1}),
        ToolCallEnd("call_b", "g", {"b": 2}),
        Finish("tool_calls"),
    ]


def test_arguments_split_mid_escape_and_mid_character() -> None:
    # The argument text is JSON inside a JSON string: fragments end inside its escapes (\\, \",
    # \u00e9, a surrogate pair), and the bytes of é, 🎉 and 日本 are split by the byte-wise feeds.
    fragments = [
        '{"path":"C:\\',
        "\\dir\\",
        '"q\\"","name":"caf\\u00',
        'e9 é","emoji":"\\ud83c',
        '\\udf89🎉日本"}',
    ]
    arguments = "".join(fragments)
    data = (
        _calls(_piece(0, "", id="call_a", name="save"))
        + b"".join(_calls(_piece(0, f)) for f in fragments)
        + _chunk(finish="tool_calls")
        + DONE
    )
    events = _parse(data)
    assert events == [
        ToolCallStart(0, "call_a", "save"),
        *(ToolCallDelta("call_a", f) for f in fragments),
        ToolCallEnd("call_a", "save", {"path": 'C:\\dir"q"', "name": "café é", "emoji": "🎉🎉日本"}),
        Finish("tool_calls"),
    ]
    assert "".join(e.text for e in events if type(e) is ToolCallDelta) == arguments


def test_empty_argument_fragments_say_nothing_and_no_arguments_are_an_empty_object() -> None:
    data = (
        _calls(_piece(0, "", id="call_a", name="get_time"))
        + _calls(_piece(0, ""))
        + _calls(_piece(0))  # no arguments field at all
        + _calls(_piece(1, "", id="call_b", name="lookup"))
        + _calls(_piece(1, ""))
        + _calls(_piece(1, '{"q":"x"}'))
        + _calls(_piece(1, ""))
        + _chunk(finish="tool_calls")
        + DONE
    )
    assert _parse(data) == [
        ToolCallStart(0, "call_a", "get_time"),
        ToolCallStart(1, "call_b", "lookup"),
        ToolCallDelta("call_b", '{"q":"x"}'),
        ToolCallEnd("call_a", "get_time", {}),
        ToolCallEnd("call_b", "lookup", {"q": "x"}),
        Finish("tool_calls"),
    ]


def test_invalid_argument_json_ends_with_an_error_and_the_stream_goes_on() -> None:
    data = (
        _calls(_piece(0, '{"city": Oslo}', id="call_a", name="get_weather"))
        + _calls(_piece(1, "[1, 2]", id="call_b", name="get_time"))
        + _calls(_piece(2, '{"tz":"UTC"}', id="call_c", name="get_time"))
        + _chunk(finish="tool_calls")
        + _usage(20, 30)
        + DONE
    )
    events = _parse(data)
    ends = [e for e in events if type(e) is ToolCallEnd]
    assert [(e.call_id, e.arguments) for e in ends] == [
        ("call_a", None),
        ("call_b", None),
        ("call_c", {"tz": "UTC"}),
    ]
    assert ends[0].error is not None
    assert ends[0].error.startswith("the arguments are not valid JSON")
    assert ends[1].error == "the arguments are not a JSON object"
    assert ends[2].error is None
    assert events[-2:] == [ends[2], Finish("tool_calls")]
    assert Usage(20, 30) in events


def test_a_call_cut_by_the_token_limit_ends_with_an_error_and_finish_length() -> None:
    data = (
        _calls(_piece(0, "", id="call_a", name="get_weather"))
        + _calls(_piece(0, '{"city":"Os'))
        + _chunk(finish="length")
        + _usage(10, 5)
        + DONE
    )
    events = _parse(data)
    assert events[:3] == [
        ToolCallStart(0, "call_a", "get_weather"),
        ToolCallDelta("call_a", '{"city":"Os'),
        Usage(10, 5),
    ]
    end = events[3]
    assert type(end) is ToolCallEnd
    assert (end.call_id, end.name, end.arguments) == ("call_a", "get_weather", None)
    assert end.error is not None
    assert "not valid JSON" in end.error
    assert events[4:] == [Finish("length")]


def test_an_id_arriving_with_the_second_piece_is_the_calls_id() -> None:
    data = (
        _calls(_piece(0, "", name="get_weather"))  # name first, no id, no arguments yet
        + _calls(_piece(0, '{"city":"Oslo"}', id="call_late"))
        + _chunk(finish="tool_calls")
        + DONE
    )
    assert _parse(data) == [
        ToolCallStart(0, "call_late", "get_weather"),
        ToolCallDelta("call_late", '{"city":"Oslo"}'),
        ToolCallEnd("call_late", "get_weather", {"city": "Oslo"}),
        Finish("tool_calls"),
    ]


def test_a_call_without_an_id_gets_one_and_an_id_after_its_arguments_changes_nothing() -> None:
    data = (
        _calls(_piece(0, '{"city":', name="get_weather"))
        + _calls(_piece(0, '"Oslo"}', id="call_too_late"))
        + _calls(_piece(1, "{}", name="get_time"))  # never an id
        + _chunk(finish="tool_calls")
        + DONE
    )
    assert _parse(data) == [
        ToolCallStart(0, "made-up-0", "get_weather"),
        ToolCallDelta("made-up-0", '{"city":'),
        ToolCallDelta("made-up-0", '"Oslo"}'),
        ToolCallStart(1, "made-up-1", "get_time"),
        ToolCallDelta("made-up-1", "{}"),
        ToolCallEnd("made-up-0", "get_weather", {"city": "Oslo"}),
        ToolCallEnd("made-up-1", "get_time", {}),
        Finish("tool_calls"),
    ]


def test_calls_without_an_index_are_correlated_by_id() -> None:
    # Gemini's OpenAI-compatible endpoint sends no index.
    data = (
        _calls(_piece(None, "", id="call_a", name="f"))
        + _calls(_piece(None, "", id="call_b", name="g"))
        + _calls(_piece(None, '{"x":1}', id="call_a"))
        + _calls(_piece(None, '{"y":2}', id="call_b"))
        + _chunk(finish="stop")
        + DONE
    )
    assert _parse(data) == [
        ToolCallStart(0, "call_a", "f"),
        ToolCallStart(1, "call_b", "g"),
        ToolCallDelta("call_a", '{"x":1}'),
        ToolCallDelta("call_b", '{"y":2}'),
        ToolCallEnd("call_a", "f", {"x": 1}),
        ToolCallEnd("call_b", "g", {"y": 2}),
        Finish("stop"),  # the runner, not the parser, turns a stop with calls into tool_calls
    ]


def test_pieces_without_index_or_id_continue_the_latest_call() -> None:
    data = (
        _calls(_piece(None, '{"x":', id="call_a", name="f"))
        + _calls(_piece(None, "1}"))
        + _chunk(finish="tool_calls")
        + DONE
    )
    assert _parse(data) == [
        ToolCallStart(0, "call_a", "f"),
        ToolCallDelta("call_a", '{"x":'),
        ToolCallDelta("call_a", "1}"),
        ToolCallEnd("call_a", "f", {"x": 1}),
        Finish("tool_calls"),
    ]


def test_a_new_id_under_a_used_index_is_a_new_call_and_a_repeated_id_is_not() -> None:
    # Ollama's compatible endpoint reuses index 0; some servers repeat id and name on every piece.
    data = (
        _calls(_piece(0, '{"x":', id="call_a", name="f"))
        + _calls(_piece(0, "1}", id="call_a", name="f"))
        + _calls(_piece(0, '{"y":2}', id="call_b", name="g"))
        + _chunk(finish="tool_calls")
        + DONE
    )
    assert _parse(data) == [
        ToolCallStart(0, "call_a", "f"),
        ToolCallDelta("call_a", '{"x":'),
        ToolCallDelta("call_a", "1}"),
        ToolCallEnd("call_a", "f", {"x": 1}),
        ToolCallStart(1, "call_b", "g"),
        ToolCallDelta("call_b", '{"y":2}'),
        ToolCallEnd("call_b", "g", {"y": 2}),
        Finish("tool_calls"),
    ]


def test_a_whole_call_in_one_piece_after_reasoning_with_object_arguments() -> None:
    # xAI sends id, name and all the arguments at once; some servers send them as an object.
    data = (
        _chunk({"role": "assistant", "content": None, "reasoning_content": ""})
        + _chunk({"content": None, "reasoning_content": "Weather, "})
        + _chunk({"content": None, "reasoning_content": "so call it."})
        + _calls(_piece(0, '{"location":"San Francisco"}', id="call_79382389", name="weather"))
        + _calls(_piece(1, {"units": "c", "days": [1, 2]}, id="call_2", name="forecast"))
        + _chunk(finish="tool_calls")
        + _usage(
            306,
            240,
            prompt_tokens_details={"cached_tokens": 256},
            completion_tokens_details={"reasoning_tokens": 227},
        )
        + DONE
    )
    assert _parse(data) == [
        ReasoningDelta("Weather, "),
        ReasoningDelta("so call it."),
        ToolCallStart(0, "call_79382389", "weather"),
        ToolCallDelta("call_79382389", '{"location":"San Francisco"}'),
        ToolCallStart(1, "call_2", "forecast"),
        ToolCallDelta("call_2", '{"units":"c","days":[1,2]}'),
        Usage(306, 240, reasoning_tokens=227, cached_tokens=256),
        ToolCallEnd("call_79382389", "weather", {"location": "San Francisco"}),
        ToolCallEnd("call_2", "forecast", {"units": "c", "days": [1, 2]}),
        Finish("tool_calls"),
    ]


def test_reasoning_comes_before_content_of_the_same_delta() -> None:
    data = (
        _chunk({"reasoning": "think", "content": "say"})
        + _chunk({"reasoning_content": "both", "reasoning": "both", "content": None})
        + _chunk(finish="stop")
        + DONE
    )
    assert _parse(data) == [ReasoningDelta("think"), TextDelta("say"), ReasoningDelta("both"), Finish("stop")]


def test_calls_end_at_done_not_at_a_first_finish_chunk() -> None:
    # OpenRouter repeats the finish chunk (the second with usage); Azure's late filter annotation
    # can still replace the finish after it.
    data = (
        _calls(_piece(0, '{"x":', id="call_a", name="f"))
        + _chunk(finish="tool_calls")
        + _calls(_piece(0, "1}"))
        + _chunk(finish="tool_calls", usage={"prompt_tokens": 5, "completion_tokens": 7})
        + DONE
    )
    assert _parse(data) == [
        ToolCallStart(0, "call_a", "f"),
        ToolCallDelta("call_a", '{"x":'),
        ToolCallDelta("call_a", "1}"),
        Usage(5, 7),
        ToolCallEnd("call_a", "f", {"x": 1}),
        Finish("tool_calls"),
    ]


AZURE_PROMPT_FILTER = (
    b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,'
    b'"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":false,'
    b'"detected":false}}}]}\n\n'
)
AZURE_LATE_FILTER = (
    b'data: {"id":"","object":"","created":0,"model":"","choices":[{"index":0,"finish_reason":"content_filter",'
    b'"content_filter_results":{"protected_material_code":{"detected":true,"filtered":true}},'
    b'"content_filter_offsets":{"check_offset":12,"start_offset":12,"end_offset":90}}],"usage":null}\n\n'
)


def _azure_calls(*pieces: dict[str, Any]) -> bytes:
    filters = {"hate": {"filtered": False, "severity": "safe"}}
    choice = {
        "content_filter_results": filters,
        "delta": {"tool_calls": list(pieces)},
        "finish_reason": None,
        "index": 0,
    }
    return _data(
        {"choices": [choice], "created": 1767225700, "id": "chatcmpl-Az2", "model": "gpt-4o", "usage": None}
    )


def test_azure_filter_chunks_around_tool_calls() -> None:
    data = (
        AZURE_PROMPT_FILTER
        + _azure_calls(_piece(0, "", id="call_z", name="lookup"))
        + _azure_calls(_piece(0, '{"q":"a"}'))
        + _chunk(finish="tool_calls")
        + AZURE_LATE_FILTER
        + _usage(
            11,
            9,
            completion_tokens_details={"reasoning_tokens": 0},
            prompt_tokens_details={"cached_tokens": 0},
        )
        + DONE
    )
    # The calls still end (every start has its end); the content_filter finish tells the client
    # not to run them.
    assert _parse(data, "azure_openai") == [
        ToolCallStart(0, "call_z", "lookup"),
        ToolCallDelta("call_z", '{"q":"a"}'),
        Usage(11, 9, reasoning_tokens=0, cached_tokens=0),
        ToolCallEnd("call_z", "lookup", {"q": "a"}),
        Finish("content_filter"),
    ]


def test_legacy_function_call_finish_is_tool_calls_and_deepseek_cache_hits_count() -> None:
    data = (
        _calls(_piece(0, "{}", id="call_a", name="f"))
        + _chunk(
            finish="function_call",
            usage={"prompt_tokens": 40, "completion_tokens": 3, "prompt_cache_hit_tokens": 32},
        )
        + DONE
    )
    assert _parse(data) == [
        ToolCallStart(0, "call_a", "f"),
        ToolCallDelta("call_a", "{}"),
        Usage(40, 3, cached_tokens=32),
        ToolCallEnd("call_a", "f", {}),
        Finish("tool_calls"),
    ]


def test_a_stream_cut_inside_a_call_fails_without_ending_it() -> None:
    data = _calls(_piece(0, '{"x":', id="call_a", name="f")) + _calls(_piece(0, "1}"))
    events = _parse(data)
    assert events[:3] == [
        ToolCallStart(0, "call_a", "f"),
        ToolCallDelta("call_a", '{"x":'),
        ToolCallDelta("call_a", "1}"),
    ]
    assert events[3][:4] == (
        "failure",
        "UpstreamProtocolError",
        "upstream_protocol",
        "openai stream ended before [DONE]",
    )
    assert len(events) == 4


def test_a_tool_call_of_an_unexpected_shape_is_one_failure() -> None:
    data = _calls(_piece(0, 42, id="call_a", name="f")) + DONE  # arguments neither text nor an object
    assert _parse(data) == [
        ("failure", "UpstreamProtocolError", "upstream_protocol", "openai sent malformed JSON", None, None)
    ]


# ---- non-streaming completion ----------------------------------------------------------------

SETTINGS = ProviderSettings(
    api_key="sk-test-0123456789abcdef", base_url="https://api.example/v1", default_model="m"
)


def _completion_body(message: dict[str, Any], finish: str, usage: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-C1",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body).encode()


def test_completion_with_reasoning_tool_calls_and_token_details() -> None:
    body = _completion_body(
        {
            "content": None,
            "reasoning_content": "Two lookups.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                },
                {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}},
                {"type": "function", "function": {"name": "bad", "arguments": '{"x":'}},
            ],
        },
        "tool_calls",
        {
            "prompt_tokens": 120,
            "completion_tokens": 80,
            "total_tokens": 200,
            "prompt_tokens_details": {"cached_tokens": 64},
            "completion_tokens_details": {"reasoning_tokens": 50},
        },
    )
    for dialect in (OpenAIDialect(SETTINGS), AzureOpenAIDialect(SETTINGS)):
        result = dialect.completion(body)
        assert not isinstance(result, Failure)
        assert (result.text, result.finish_reason) == ("", "tool_calls")
        assert result.usage == Usage(120, 80, reasoning_tokens=50, cached_tokens=64)
        made_up, bad_end = result.parts[6], result.parts[8]
        assert isinstance(made_up, ToolCallStart)
        assert MADE_UP_ID.match(made_up.call_id)
        assert isinstance(bad_end, ToolCallEnd)
        assert bad_end.error is not None
        assert bad_end.error.startswith("the arguments are not valid JSON")
        assert result.parts == [
            ReasoningDelta("Two lookups."),
            ToolCallStart(0, "call_a", "get_weather"),
            ToolCallDelta("call_a", '{"city":"Oslo"}'),
            ToolCallEnd("call_a", "get_weather", {"city": "Oslo"}),
            ToolCallStart(1, "call_b", "get_time"),
            ToolCallEnd("call_b", "get_time", {}),
            ToolCallStart(2, made_up.call_id, "bad"),
            ToolCallDelta(made_up.call_id, '{"x":'),
            ToolCallEnd(made_up.call_id, "bad", None, bad_end.error),
        ]


def test_completion_text_with_vllm_reasoning_field_and_no_usage() -> None:
    body = _completion_body({"content": "Hi!", "reasoning": "Greet back."}, "stop")
    result = OpenAIDialect(SETTINGS).completion(body)
    assert result == Completion("Hi!", "stop", None, [ReasoningDelta("Greet back.")])


@pytest.mark.parametrize(
    "body", [b"{", b'{"choices":[]}', b'{"choices":[{"message":{"tool_calls":[{"function":7}]}}]}']
)
def test_completion_that_cannot_be_read_is_a_failure(body: bytes) -> None:
    result = OpenAIDialect(SETTINGS).completion(body)
    assert isinstance(result, Failure)
    assert result.error.code == "upstream_protocol"


REFUSAL = (
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant",'
    b'"content":null,"refusal":""},"finish_reason":null}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"refusal":"I\'m sorry, "},'
    b'"finish_reason":null}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"refusal":"I can\'t help."},'
    b'"finish_reason":null}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    + DONE
)


def test_a_refusal_is_the_answer_text_and_ends_as_content_filter() -> None:
    assert _parse(REFUSAL) == [TextDelta("I'm sorry, "), TextDelta("I can't help."), Finish("content_filter")]


def test_a_refused_completion_is_its_refusal_text() -> None:
    body = (
        b'{"choices":[{"message":{"role":"assistant","content":null,"refusal":"I can\'t help."},'
        b'"finish_reason":"stop"}]}'
    )
    assert parse_completion("openai", body) == Completion("I can't help.", "content_filter", None, [])
