"""Anthropic Messages: request building, error mapping, and byte transcripts in every split."""

from __future__ import annotations

import json

import pytest

from protocol.messages import ChatMessage, Options
from providers.base import (
    Completion,
    Failure,
    Finish,
    GenerationRequest,
    ProviderState,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from providers.dialect import ProviderSettings
from providers.dialects.anthropic import (
    ANTHROPIC_VERSION,
    DEFAULT_BASE_URL,
    DEFAULT_MAX_TOKENS,
    DEFAULT_MODEL,
    AnthropicDialect,
    AnthropicStreamParser,
)
from tests.support.anthropic_bytes import (
    MESSAGE_STOP,
    PING,
    block_start,
    block_stop,
    message_delta,
    message_start,
    text,
)
from tests.support.anthropic_bytes import sse_event as _event
from tests.support.transcripts import events_in_every_split

KEY = "sk-ant-api03-test0123456789abcdef"
SETTINGS = ProviderSettings(api_key=KEY, base_url="https://api.example/", default_model=DEFAULT_MODEL)


def _reply(*deltas: bytes, stop: bytes | None = None) -> bytes:
    """A whole one-text-block reply around ``deltas``."""
    end = message_delta() if stop is None else stop
    return message_start() + block_start() + b"".join(deltas) + block_stop() + end + MESSAGE_STOP


def _parse(data: bytes) -> list[object]:
    return events_in_every_split(AnthropicStreamParser, data)


# ---- streams ---------------------------------------------------------------------------------


def test_plain_text_with_usage() -> None:
    assert _parse(_reply(text("Hi"), text(" there"))) == [
        TextDelta("Hi"),
        TextDelta(" there"),
        Usage(21, 7, cached_tokens=0),
        Finish("stop"),
    ]


def test_input_includes_cache_tokens_and_delta_usage_is_cumulative() -> None:
    later = message_delta(
        usage='{"input_tokens":30,"cache_creation_input_tokens":null,"output_tokens":12,'
        '"server_tool_use":{"web_search_requests":1}}'
    )
    data = (
        message_start(input_tokens=21, cache_write=100, cache_read=2000)
        + block_start()
        + text("x")
        + block_stop()
        + message_delta(usage='{"output_tokens":5}')
        + later
        + MESSAGE_STOP
    )
    # input_tokens from the delta; the cache fields (null or absent there) from message_start
    assert _parse(data) == [TextDelta("x"), Usage(30 + 100 + 2000, 12, cached_tokens=2000), Finish("stop")]


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "pause_turn"),
    ],
)
def test_stop_reasons(stop_reason: str, finish: str) -> None:
    assert _parse(_reply(text("Hi"), stop=message_delta(stop_reason)))[-1] == Finish(finish)


def test_refusal_with_stop_details_is_a_content_filter() -> None:
    details = ',"stop_details":{"type":"refusal","category":"cyber","explanation":"Declined."}'
    refusal = message_delta("refusal", '{"output_tokens":3}', extra=details)
    assert _parse(_reply(text("I can"), stop=refusal)) == [
        TextDelta("I can"),
        Usage(21, 3, cached_tokens=0),
        Finish("content_filter"),
    ]


def test_pings_comments_crlf_and_no_space_after_colon() -> None:
    data = PING + message_start() + PING + block_start() + b": keep-alive\n\n" + text("A") + PING
    data += block_stop() + message_delta() + MESSAGE_STOP
    data = data.replace(b"\n", b"\r\n").replace(b"data: ", b"data:").replace(b"event: ", b"event:")
    assert _parse(data) == [TextDelta("A"), Usage(21, 7, cached_tokens=0), Finish("stop")]


def test_multi_byte_characters_and_line_separators_survive_any_split() -> None:
    value = "日本語 ✓ emoji 🎉 and a U+2028:\u2028 end"
    assert _parse(_reply(text(value)))[0] == TextDelta(value)


def test_thinking_signature_citations_and_a_tool_call_in_one_turn() -> None:
    signature = (
        '{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCg=="}}'
    )
    tool_json = (
        '{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta",'
        '"partial_json":"{\\"city\\": \\"Oslo\\"}"}}'
    )
    citation = (
        '{"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":'
        '{"type":"char_location","cited_text":"x","document_index":0,"start_char_index":0,"end_char_index":1}}}'
    )
    thinking = (
        '{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"17*23=391"}}'
    )
    data = (
        message_start()
        + block_start(0, '{"type":"thinking","thinking":"","signature":""}')
        + _event("content_block_delta", thinking)
        + _event("content_block_delta", signature)
        + block_stop(0)
        + block_start(1)
        + text("17 \u00d7 23 = 391", 1)
        + _event("content_block_delta", citation)
        + text("", 1)
        + block_stop(1)
        + block_start(2, '{"type":"tool_use","id":"toolu_01Zq","name":"calc","input":{}}')
        + _event("content_block_delta", tool_json)
        + block_stop(2)
        + message_delta("tool_use", '{"output_tokens":58}')
        + MESSAGE_STOP
    )
    state = '{"provider":"anthropic","blocks":[{"type":"thinking","thinking":"17*23=391","signature":"EqQBCg=="}]}'
    assert _parse(data) == [
        ReasoningDelta("17*23=391"),
        TextDelta("17 \u00d7 23 = 391"),
        ToolCallStart(0, "toolu_01Zq", "calc"),
        ToolCallDelta("toolu_01Zq", '{"city": "Oslo"}'),
        ToolCallEnd("toolu_01Zq", "calc", {"city": "Oslo"}),
        ProviderState(state),
        Usage(21, 58, cached_tokens=0),
        Finish("tool_calls"),
    ]


def test_unknown_events_are_ignored_and_type_comes_from_the_event_name() -> None:
    future = _event("content_block_flux", '{"type":"content_block_flux","delta":"not an object"}')
    untyped = _event("content_block_delta", '{"index":0,"delta":{"type":"text_delta","text":"B"}}')
    unnamed = b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"C"}}\n\n'
    assert _parse(_reply(text("A"), future, untyped, unnamed)) == [
        TextDelta("A"),
        TextDelta("B"),
        TextDelta("C"),
        Usage(21, 7, cached_tokens=0),
        Finish("stop"),
    ]


@pytest.mark.parametrize(
    ("error_type", "status", "cls", "code"),
    [
        ("overloaded_error", 529, "UpstreamUnavailable", "upstream_unavailable"),
        ("rate_limit_error", 429, "UpstreamRateLimited", "upstream_rate_limited"),
        ("api_error", 500, "UpstreamUnavailable", "upstream_unavailable"),
        ("invalid_request_error", 400, "UpstreamBadRequest", "upstream_bad_request"),
        ("billing_error", 402, "UpstreamAuthError", "upstream_auth"),
        ("timeout_error", 504, "UpstreamUnavailable", "upstream_unavailable"),
        ("some_new_error", 500, "UpstreamUnavailable", "upstream_unavailable"),
    ],
)
def test_mid_stream_error_event(error_type: str, status: int, cls: str, code: str) -> None:
    error = _event(
        "error", f'{{"type": "error", "error": {{"type": "{error_type}", "message": "Overloaded"}}}}'
    )
    data = message_start() + block_start() + text("Hi") + error + text("never") + MESSAGE_STOP
    assert _parse(data) == [
        TextDelta("Hi"),
        ("failure", cls, code, "anthropic reported an error mid-stream: Overloaded", status, None),
    ]


def test_truncated_stream_is_a_protocol_failure() -> None:
    full = _reply(text("Hi"))
    cut = full[: full.index(b"event: message_stop")]
    events = _parse(cut)
    assert events == [
        TextDelta("Hi"),
        (
            "failure",
            "UpstreamProtocolError",
            "upstream_protocol",
            "anthropic stream ended before message_stop",
            None,
            None,
        ),
    ]


def test_garbage_is_a_protocol_failure() -> None:
    data = message_start() + _event("content_block_delta", "{not json") + MESSAGE_STOP
    assert _parse(data) == [
        ("failure", "UpstreamProtocolError", "upstream_protocol", "anthropic sent malformed JSON", None, None)
    ]
    wrong_type = _event(
        "content_block_delta", '{"type":"content_block_delta","delta":{"type":"text_delta","text":5}}'
    )
    assert _parse(message_start() + wrong_type)[0][3] == "anthropic sent malformed JSON"  # type: ignore[index]


def test_over_long_line_is_a_protocol_failure() -> None:
    parser = AnthropicStreamParser()
    events = parser.feed(b"data: " + b"x" * (9 * 1024 * 1024))
    assert len(events) == 1
    assert isinstance(events[0], Failure)
    assert "over-long" in events[0].error.message
    assert parser.feed(MESSAGE_STOP) == []
    assert parser.close() == []


def test_nothing_after_message_stop() -> None:
    parser = AnthropicStreamParser()
    assert parser.feed(_reply(text("Hi")) + text("late"))[-1] == Finish("stop")
    assert parser.feed(text("later")) == []
    assert parser.close() == []


# ---- request ---------------------------------------------------------------------------------


def test_request_url_headers_and_body() -> None:
    request = GenerationRequest(
        model="claude-haiku-4-5",
        messages=[
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "Say hi"),
            ChatMessage("system", "Use English."),
            ChatMessage("assistant", "Hi"),
            ChatMessage("user", "Again"),
            ChatMessage("user", "Please"),
        ],
        options=Options(temperature=0.2, max_tokens=50, top_p=0.9, stop="\n\n"),
    )
    http = AnthropicDialect(SETTINGS).request(request, stream=True)
    assert http.method == "POST"
    assert http.url == "https://api.example/v1/messages"
    assert http.headers == {
        "content-type": "application/json",
        "x-api-key": KEY,
        "anthropic-version": ANTHROPIC_VERSION,
    }
    assert "authorization" not in http.headers
    assert json.loads(http.body) == {
        "model": "claude-haiku-4-5",
        "max_tokens": 50,
        "stream": True,
        "system": "Be brief.\n\nUse English.",
        "messages": [
            {"role": "user", "content": "Say hi"},
            {"role": "assistant", "content": "Hi"},
            {"role": "user", "content": "Again"},
            {"role": "user", "content": "Please"},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["\n\n"],
    }


def test_request_defaults_and_non_streaming() -> None:
    request = GenerationRequest(
        model=DEFAULT_MODEL, messages=[ChatMessage("user", "x")], options=Options(stop=["END", "STOP"])
    )
    dialect = AnthropicDialect(
        ProviderSettings(api_key=KEY, base_url=DEFAULT_BASE_URL, default_model=DEFAULT_MODEL)
    )
    http = dialect.request(request, stream=False)
    assert http.url == "https://api.anthropic.com/v1/messages"
    assert json.loads(http.body) == {
        "model": DEFAULT_MODEL,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "x"}],
        "stop_sequences": ["END", "STOP"],
    }


def test_configured_follows_the_key() -> None:
    assert AnthropicDialect(SETTINGS).configured
    unset = ProviderSettings(base_url=DEFAULT_BASE_URL, default_model=DEFAULT_MODEL)
    assert not AnthropicDialect(unset).configured
    assert AnthropicDialect(unset).name == "anthropic"


# ---- errors before the stream ----------------------------------------------------------------


def _error_body(error_type: str, message: str) -> bytes:
    return json.dumps(
        {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_011Abc"}
    ).encode()


@pytest.mark.parametrize(
    ("status", "error_type", "message", "headers", "cls", "retryable", "retry_after"),
    [
        (400, "invalid_request_error", "max_tokens: Field required", {}, "UpstreamBadRequest", False, None),
        (401, "authentication_error", "invalid x-api-key", {}, "UpstreamAuthError", False, None),
        (403, "permission_error", "Your API key does not have permission", {}, "UpstreamAuthError", False, None),
        (404, "not_found_error", "model: claude-9", {}, "UpstreamBadRequest", False, None),
        (413, "request_too_large", "Request exceeds the maximum allowed number of bytes.", {}, "UpstreamBadRequest",
         False, None),
        (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit",
         {"retry-after": "12", "anthropic-ratelimit-requests-reset": "2026-01-01T00:00:12Z"},
         "UpstreamRateLimited", True, 12.0),
        (500, "api_error", "Internal server error", {}, "UpstreamUnavailable", True, None),
        (529, "overloaded_error", "Overloaded", {"request-id": "req_011Abc"}, "UpstreamUnavailable", True, None),
    ],
)  # fmt: skip
def test_error_statuses(
    status: int,
    error_type: str,
    message: str,
    headers: dict[str, str],
    cls: str,
    retryable: bool,
    retry_after: float | None,
) -> None:
    error = AnthropicDialect(SETTINGS).error(status, headers, _error_body(error_type, message))
    assert type(error).__name__ == cls
    assert error.status == status
    assert error.retryable is retryable
    assert error.retry_after == retry_after
    assert error.message == f"anthropic answered HTTP {status}: {message}"


def test_error_without_a_json_body() -> None:
    error = AnthropicDialect(SETTINGS).error(
        413, {}, b"<html><body>413 Request Entity Too Large</body></html>"
    )
    assert error.code == "upstream_bad_request"
    assert "<html>" not in error.message


# ---- non-streaming ---------------------------------------------------------------------------


def test_completion_joins_text_blocks_and_keeps_the_other_parts() -> None:
    body = (
        b'{"id":"msg_01Hx","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",'
        b'"content":[{"type":"thinking","thinking":"hmm","signature":"Eq=="},{"type":"text","text":"Hello, "},'
        b'{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}},{"type":"text","text":"w\xc3\xb6rld",'
        b'"citations":null}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":10,'
        b'"cache_creation_input_tokens":5,"cache_read_input_tokens":null,"output_tokens":20,"service_tier":"standard"}}'
    )
    state = '{"provider":"anthropic","blocks":[{"type":"thinking","thinking":"hmm","signature":"Eq=="}]}'
    parts: list[StreamEvent] = [
        ReasoningDelta("hmm"),
        ToolCallStart(0, "toolu_1", "f"),
        ToolCallDelta("toolu_1", '{"a":1}'),
        ToolCallEnd("toolu_1", "f", {"a": 1}),
        ProviderState(state),
    ]
    assert AnthropicDialect(SETTINGS).completion(body) == Completion(
        "Hello, wörld", "length", Usage(15, 20), parts
    )


def test_completion_garbage_is_a_failure() -> None:
    for body in (b"{not json", b'{"type":"message"}'):
        result = AnthropicDialect(SETTINGS).completion(body)
        assert isinstance(result, Failure)
        assert result.error.code == "upstream_protocol"
