"""Gemini: request building, error mapping, and byte transcripts (CRLF SSE) in every split."""

from __future__ import annotations

import json
from typing import Any

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
    Usage,
)
from providers.dialect import ProviderSettings
from providers.dialects.gemini import DEFAULT_BASE_URL, GeminiDialect, GeminiStreamParser, finish_reason
from tests.support.transcripts import events_in_every_split

KEY = "AIzaSyTest0123456789abcdefghijklmnopq"
SETTINGS = ProviderSettings(api_key=KEY, base_url=DEFAULT_BASE_URL + "/", default_model="gemini-2.5-flash")
DIALECT = GeminiDialect(SETTINGS)
USAGE_1 = (
    '"usageMetadata": {"promptTokenCount": 4,"candidatesTokenCount": 1,"totalTokenCount": 41,'
    '"promptTokensDetails": [{"modality": "TEXT","tokenCount": 4}],"thoughtsTokenCount": 36}'
)
USAGE_3 = USAGE_1.replace('"candidatesTokenCount": 1', '"candidatesTokenCount": 3').replace("41", "43")
TAIL = ',"modelVersion": "gemini-2.5-flash","responseId": "aBcD1234efGh"}\r\n\r\n'


def _chunk(text: str | None, finish: str | None = None, usage: str = USAGE_1, thought: bool = False) -> bytes:
    """One modern-model event, field for field as in the reference (§5.3)."""
    part = "" if text is None else '{"text": ' + json.dumps(text, ensure_ascii=False)
    part += ',"thought": true}' if thought and text is not None else "}" if text is not None else ""
    content = '"content": {"parts": [' + part + '],"role": "model"},'
    finish_json = f'"finishReason": "{finish}",' if finish else ""
    candidate = "{" + content + finish_json + '"index": 0}'
    return ('data: {"candidates": [' + candidate + "]," + usage + TAIL).encode()


HELLO = _chunk("Hello")
THERE = _chunk(" there!", "STOP", USAGE_3)
THOUGHT = (
    b'data: {"candidates": [{"content": {"parts": [{"text": "**Planning the greeting**\\nA short hello fits.",'
    b'"thought": true}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 4,'
    b'"totalTokenCount": 40,"thoughtsTokenCount": 36},"modelVersion": "gemini-2.5-flash",'
    b'"responseId": "aBcD1234efGh"}\r\n\r\n'
)
PROMPT_BLOCKED = (
    b'data: {"promptFeedback": {"blockReason": "SAFETY","safetyRatings": [{"category": '
    b'"HARM_CATEGORY_HATE_SPEECH","probability": "HIGH"},{"category": "HARM_CATEGORY_HARASSMENT",'
    b'"probability": "NEGLIGIBLE"}]},"usageMetadata": {"promptTokenCount": 12,"totalTokenCount": 12},'
    b'"modelVersion": "gemini-2.5-flash","responseId": "q1W2e3"}\r\n\r\n'
)
OUTPUT_BLOCKED = (
    b'data: {"candidates": [{"finishReason": "SAFETY","index": 0,"safetyRatings": [{"category": '
    b'"HARM_CATEGORY_HATE_SPEECH","probability": "HIGH","blocked": true}]}],"usageMetadata": '
    b'{"promptTokenCount": 12,"candidatesTokenCount": 40,"totalTokenCount": 52},'
    b'"modelVersion": "gemini-2.5-flash","responseId": "r4T5y6"}\r\n\r\n'
)
MID_STREAM_ERROR = b'data: {"error": {"code": 500,"message": "An internal error has occurred.","status": "INTERNAL"}}\r\n\r\n'


def _old_chunk(text: str) -> bytes:
    """gemini-pro era (the generative-ai-js mocks): STOP and safetyRatings on every chunk."""
    return (
        b'data: {"candidates": [{"content": {"parts": [{"text": '
        + json.dumps(text).encode()
        + b'}],"role": "model"},"finishReason": "STOP","index": 0,"safetyRatings": [{"category": '
        b'"HARM_CATEGORY_SEXUALLY_EXPLICIT","probability": "NEGLIGIBLE"},{"category": '
        b'"HARM_CATEGORY_HATE_SPEECH","probability": "NEGLIGIBLE"}]}],"promptFeedback": {"safetyRatings": '
        b'[{"category": "HARM_CATEGORY_DANGEROUS_CONTENT","probability": "NEGLIGIBLE"}]}}\r\n\r\n'
    )


def _parse(data: bytes) -> list[Any]:
    return events_in_every_split(GeminiStreamParser, data)


def test_plain_text_then_usage_and_finish_at_eof() -> None:
    assert _parse(HELLO + THERE) == [
        TextDelta("Hello"),
        TextDelta(" there!"),
        Usage(4, 3 + 36, reasoning_tokens=36),
        Finish("stop"),
    ]


def test_thought_parts_are_reasoning_and_usage_counts_thinking() -> None:
    assert _parse(THOUGHT + HELLO + THERE) == [
        ReasoningDelta("**Planning the greeting**\nA short hello fits."),
        TextDelta("Hello"),
        TextDelta(" there!"),
        Usage(4, 39, reasoning_tokens=36),
        Finish("stop"),
    ]


def test_finish_reason_on_every_chunk_is_not_the_end() -> None:
    data = _old_chunk("Once upon") + _old_chunk(" a time") + _old_chunk(", the end.")
    assert _parse(data) == [
        TextDelta("Once upon"),
        TextDelta(" a time"),
        TextDelta(", the end."),
        Finish("stop"),
    ]


def test_length_limit() -> None:
    data = HELLO + _chunk(" the", "MAX_TOKENS", USAGE_3)
    assert _parse(data)[-2:] == [Usage(4, 39, reasoning_tokens=36), Finish("length")]


def test_output_blocked_by_safety_without_content() -> None:
    assert _parse(HELLO + OUTPUT_BLOCKED) == [TextDelta("Hello"), Usage(12, 40), Finish("content_filter")]


def test_prompt_blocked_is_a_content_filter_finish() -> None:
    assert _parse(PROMPT_BLOCKED) == [Usage(12, 0), Finish("content_filter")]


def _signature(size: int) -> bytes:
    return (
        b'data: {"candidates": [{"content": {"parts": [{"thoughtSignature": "'
        + b"A" * size
        + b'"}],"role": "model"},"index": 0}]}\r\n\r\n'
    )


EMPTY_STOP = b'data: {"candidates": [{"content": {"parts": [{"text": ""}],"role": "model"},"finishReason": "STOP"}]}\r\n\r\n'


def _signature_state(signature: str) -> ProviderState:
    return ProviderState('{"provider":"gemini","text":"' + signature + '"}')


def test_a_signature_only_part_is_no_text_but_provider_state() -> None:
    expected = [
        TextDelta("Hello"),
        Usage(4, 37, reasoning_tokens=36),
        _signature_state("A" * 2000),
        Finish("stop"),
    ]
    assert _parse(HELLO + _signature(2000) + EMPTY_STOP) == expected


def test_thought_signature_line_over_128_kib() -> None:
    data = HELLO + _signature(300_000) + EMPTY_STOP
    parser = GeminiStreamParser()
    events = [e for i in range(0, len(data), 65536) for e in parser.feed(data[i : i + 65536])]
    assert [*events, *parser.close()] == [
        TextDelta("Hello"),
        Usage(4, 37, reasoning_tokens=36),
        _signature_state("A" * 300_000),
        Finish("stop"),
    ]


def test_other_candidates_are_ignored() -> None:
    second = (
        b'data: {"candidates": [{"content": {"parts": [{"text": "B"}],"role": "model"},"index": 1}]}\r\n\r\n'
    )
    assert _parse(HELLO + second + THERE)[:2] == [TextDelta("Hello"), TextDelta(" there!")]


def test_multi_byte_characters_and_line_separators_survive_any_split() -> None:
    text = "日本語のテキスト ✓ emoji 🎉 and a U+2028:\u2028 end"
    assert _parse(_chunk(text) + THERE)[0] == TextDelta(text)


def test_lf_framing_comments_and_no_space_after_colon() -> None:
    body = (b": keep-alive\r\n\r\n" + HELLO + THERE).replace(b"\r\n", b"\n").replace(b"data: ", b"data:")
    assert _parse(body) == [
        TextDelta("Hello"),
        TextDelta(" there!"),
        Usage(4, 39, reasoning_tokens=36),
        Finish("stop"),
    ]


def test_unknown_finish_reasons_are_lowercased() -> None:
    assert _parse(_chunk("x", "NEW_ENUM_VALUE"))[-1] == Finish("new_enum_value")
    assert finish_reason("stop") == "stop"
    assert finish_reason("Max_Tokens") == "length"
    assert finish_reason("RECITATION") == finish_reason("IMAGE_SAFETY") == "content_filter"
    assert finish_reason("MALFORMED_FUNCTION_CALL") == "malformed_function_call"


def test_mid_stream_error_object() -> None:
    events = _parse(HELLO + MID_STREAM_ERROR + THERE)
    assert events == [
        TextDelta("Hello"),
        (
            "failure",
            "UpstreamUnavailable",
            "upstream_unavailable",
            "gemini reported an error mid-stream: An internal error has occurred.",
            500,
            None,
        ),
    ]


def test_mid_stream_rate_limit_keeps_its_status() -> None:
    error = b'data: {"error": {"code": 429,"message": "Resource has been exhausted","status": "RESOURCE_EXHAUSTED"}}\r\n\r\n'
    assert _parse(error)[0][:3] == ("failure", "UpstreamRateLimited", "upstream_rate_limited")


def test_truncated_stream_is_a_protocol_failure() -> None:
    failure = ("failure", "UpstreamProtocolError", "upstream_protocol")
    events = _parse(HELLO + _chunk(" the"))
    assert events[:2] == [TextDelta("Hello"), TextDelta(" the")]
    assert events[2][:4] == (*failure, "gemini stream ended without a finish reason")
    assert len(events) == 3
    assert _parse(b"")[0][:3] == failure
    cut_mid_event = _parse(HELLO + THERE[:40])
    assert cut_mid_event[0] == TextDelta("Hello")
    assert cut_mid_event[1][:3] == failure


def test_garbage_is_a_protocol_failure() -> None:
    events = _parse(HELLO + b"data: {not json\r\n\r\n" + THERE)
    assert events == [
        TextDelta("Hello"),
        ("failure", "UpstreamProtocolError", "upstream_protocol", "gemini sent malformed JSON", None, None),
    ]
    assert _parse(b'data: {"candidates": "oops"}\r\n\r\n')[0][3] == "gemini sent malformed JSON"


def test_over_long_line_is_a_protocol_failure() -> None:
    parser = GeminiStreamParser()
    events = parser.feed(b"data: " + b"x" * (9 * 1024 * 1024))
    assert len(events) == 1
    assert isinstance(events[0], Failure)
    assert "over-long" in events[0].error.message
    assert parser.feed(THERE) == []
    assert parser.close() == []


# ---- request ---------------------------------------------------------------------------------

REQUEST = GenerationRequest(
    model="gemini-2.5-flash",
    messages=[
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Say hi"),
        ChatMessage("assistant", "Hi!"),
        ChatMessage("system", "No emoji."),
        ChatMessage("user", "Again"),
    ],
    options=Options(temperature=0.2, max_tokens=50, top_p=0.9, stop=["\n\n"]),
)


def test_streaming_request() -> None:
    http = DIALECT.request(REQUEST, stream=True)
    assert http.method == "POST"
    assert http.url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert http.headers == {"content-type": "application/json", "x-goog-api-key": KEY}
    assert KEY not in http.url
    assert json.loads(http.body) == {
        "contents": [
            {"role": "user", "parts": [{"text": "Say hi"}]},
            {"role": "model", "parts": [{"text": "Hi!"}]},
            {"role": "user", "parts": [{"text": "Again"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief.\n\nNo emoji."}]},
        "generationConfig": {
            "temperature": 0.2,
            "topP": 0.9,
            "maxOutputTokens": 50,
            "stopSequences": ["\n\n"],
        },
    }


def test_non_streaming_request_and_minimal_body() -> None:
    request = GenerationRequest(
        model="gemini-2.5-pro", messages=[ChatMessage("user", "a"), ChatMessage("user", "b")]
    )
    http = DIALECT.request(request, stream=False)
    assert (
        http.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent"
    )
    assert json.loads(http.body) == {"contents": [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]}


def test_model_is_one_quoted_path_segment() -> None:
    def url(model: str) -> str:
        request = GenerationRequest(
            model=model, messages=[ChatMessage("user", "x")], options=Options(stop="END")
        )
        return DIALECT.request(request, stream=False).url

    assert url("models/gemini-2.0-flash-001").endswith("/v1beta/models/gemini-2.0-flash-001:generateContent")
    assert url("../x?y#z").endswith("/v1beta/models/..%2Fx%3Fy%23z:generateContent")
    single_stop = DIALECT.request(
        GenerationRequest(model="m", messages=[], options=Options(stop="END")), stream=True
    )
    assert json.loads(single_stop.body)["generationConfig"] == {"stopSequences": ["END"]}


def test_configured_needs_a_key() -> None:
    assert DIALECT.configured
    assert DIALECT.name == "gemini"
    assert not GeminiDialect(ProviderSettings(base_url=DEFAULT_BASE_URL, default_model="m")).configured


# ---- errors before the stream ----------------------------------------------------------------

RATE_LIMITED = (
    b'{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": '
    b'"RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": '
    b'[{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}]}, {"@type": '
    b'"type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "31s"}]}}'
)
KEY_INVALID = (
    b'[{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": '
    b'"INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": '
    b'"API_KEY_INVALID", "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]}}]'
)


def _google_error(code: int, status: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "status": status}}, indent=2).encode()


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls", "retry_after", "fragment"),
    [
        (429, RATE_LIMITED, {"retry-after": "5"}, "UpstreamRateLimited", 31.0, "Resource has been exhausted"),
        (
            429,
            RATE_LIMITED.replace(b'"31s"', b'"0.5s"'),
            {},
            "UpstreamRateLimited",
            0.5,
            "Resource has been exhausted",
        ),
        (
            429,
            _google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded"),
            {"retry-after": "7"},
            "UpstreamRateLimited",
            7.0,
            "Quota exceeded",
        ),
        (400, KEY_INVALID, {}, "UpstreamAuthError", None, "API key not valid"),
        (
            400,
            _google_error(400, "INVALID_ARGUMENT", 'Invalid JSON payload received. Unknown name "foo"'),
            {},
            "UpstreamBadRequest",
            None,
            "Invalid JSON payload",
        ),
        (
            400,
            _google_error(400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
            {},
            "UpstreamBadRequest",
            None,
            "User location",
        ),
        (
            403,
            _google_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."),
            {},
            "UpstreamAuthError",
            None,
            "unregistered callers",
        ),
        (
            404,
            _google_error(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta"),
            {},
            "UpstreamBadRequest",
            None,
            "models/gemini-9 is not found",
        ),
        (
            500,
            _google_error(500, "INTERNAL", "An internal error has occurred."),
            {},
            "UpstreamUnavailable",
            None,
            "internal",
        ),
        (
            503,
            _google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
            {},
            "UpstreamUnavailable",
            None,
            "overloaded",
        ),
        (
            504,
            _google_error(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
            {},
            "UpstreamUnavailable",
            None,
            "Deadline expired",
        ),
        (
            502,
            b"<html><body>Bad Gateway</body></html>",
            {"retry-after": "3"},
            "UpstreamUnavailable",
            3.0,
            "no details",
        ),
    ],
)
def test_error_statuses(
    status: int, body: bytes, headers: dict[str, str], cls: str, retry_after: float | None, fragment: str
) -> None:
    error = DIALECT.error(status, headers, body)
    assert type(error).__name__ == cls
    assert error.status == status
    assert error.retry_after == retry_after
    assert error.retryable is (status in (429, 500, 502, 503, 504))
    assert error.message.startswith(f"gemini answered HTTP {status}: ")
    assert fragment in error.message
    assert "<html>" not in error.message


# ---- non-streaming -----------------------------------------------------------------------------

COMPLETION = (
    b'{\n  "candidates": [\n    {\n      "content": {\n        "parts": [\n          {\n            "text": '
    b'"**Thinking**", "thought": true\n          },\n          {\n            "text": "Hi there!"\n          }\n'
    b'        ],\n        "role": "model"\n      },\n      "finishReason": "STOP",\n      "index": 0\n    }\n  ],\n'
    b'  "usageMetadata": {\n    "promptTokenCount": 4,\n    "candidatesTokenCount": 3,\n    "totalTokenCount": 43,\n'
    b'    "thoughtsTokenCount": 36\n  },\n  "modelVersion": "gemini-2.5-flash",\n  "responseId": "aBcD"\n}\n'
)


def test_completion() -> None:
    usage = Usage(4, 39, reasoning_tokens=36)
    thinking: list[StreamEvent] = [ReasoningDelta("**Thinking**")]
    assert DIALECT.completion(COMPLETION) == Completion("Hi there!", "stop", usage, thinking)
    length = COMPLETION.replace(b'"STOP"', b'"MAX_TOKENS"')
    assert DIALECT.completion(length) == Completion("Hi there!", "length", usage, thinking)


def test_completion_blocked_and_broken() -> None:
    blocked = PROMPT_BLOCKED.removeprefix(b"data: ").strip()
    assert DIALECT.completion(blocked) == Completion("", "content_filter", Usage(12, 0))
    output_blocked = OUTPUT_BLOCKED.removeprefix(b"data: ").strip()
    assert DIALECT.completion(output_blocked) == Completion("", "content_filter", Usage(12, 40))
    for body, fragment in [(b"not json", "malformed"), (b'{"candidates": []}', "without candidates")]:
        result = DIALECT.completion(body)
        assert isinstance(result, Failure)
        assert result.error.code == "upstream_protocol"
        assert fragment in result.error.message
