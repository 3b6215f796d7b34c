"""OpenAI and Azure OpenAI: request building (every typed field), errors, and text byte
transcripts in every split. Typed parts in streams: test_openai_parts.py."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from protocol.messages import (
    ChatMessage,
    ImagePart,
    JsonFormat,
    JsonSchemaFormat,
    Options,
    Reasoning,
    ResponseFormat,
    TextFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolChoiceName,
)
from providers.base import Finish, GenerationRequest, TextDelta, Usage
from providers.dialect import ProviderSettings
from providers.dialects.azure_openai import AzureOpenAIDialect
from providers.dialects.openai import ChatStreamParser, OpenAIDialect
from tests.support.transcripts import events_in_every_split

KEY = "sk-test-0123456789abcdef"
REQUEST = GenerationRequest(
    model="gpt-4o-mini",
    messages=[ChatMessage("system", "Be brief."), ChatMessage("user", "Say hi")],
    options=Options(temperature=0.2, max_tokens=50, stop=["\n\n"]),
)


def _chunk(content: str | None = None, finish: str | None = None, extra: str = "") -> bytes:
    delta = "{}" if content is None else '{"content":' + _json_str(content) + "}"
    finish_json = "null" if finish is None else f'"{finish}"'
    return (
        b'data: {"id":"chatcmpl-7Qx","object":"chat.completion.chunk","created":1767225600,'
        b'"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_9a8b7c",'
        b'"choices":[{"index":0,"delta":'
        + delta.encode()
        + b',"logprobs":null,"finish_reason":'
        + finish_json.encode()
        + b"}]"
        + extra.encode()
        + b',"usage":null,"obfuscation":"Kq"}\n\n'
    )


def _json_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


ROLE = (
    b'data: {"id":"chatcmpl-7Qx","object":"chat.completion.chunk","created":1767225600,'
    b'"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"role":"assistant","content":"",'
    b'"refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
)
USAGE = (
    b'data: {"id":"chatcmpl-7Qx","object":"chat.completion.chunk","created":1767225600,'
    b'"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,'
    b'"total_tokens":11,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
    b'"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}},"obfuscation":"u"}\n\n'
)
DONE = b"data: [DONE]\n\n"


def _parse(data: bytes, provider: str = "openai") -> list[object]:
    return events_in_every_split(lambda: ChatStreamParser(provider), data)


def test_plain_text_with_usage() -> None:
    data = ROLE + _chunk("Hi") + _chunk(" there") + _chunk(finish="stop") + USAGE + DONE
    assert _parse(data) == [
        TextDelta("Hi"),
        TextDelta(" there"),
        Usage(9, 2, reasoning_tokens=0, cached_tokens=0),
        Finish("stop"),
    ]


def test_length_limit() -> None:
    data = ROLE + _chunk("Hi") + _chunk(finish="length") + USAGE + DONE
    assert _parse(data)[-1] == Finish("length")


def test_multi_byte_characters_and_line_separators_survive_any_split() -> None:
    text = "日本語 ✓ emoji 🎉 and a U+2028:\u2028 end"
    data = ROLE + _chunk(text) + _chunk(finish="stop") + DONE
    assert _parse(data) == [TextDelta(text), Finish("stop")]


def test_comments_crlf_and_no_space_after_colon() -> None:
    body = (ROLE + b": keep-alive\n\n" + _chunk("A") + _chunk(finish="stop") + DONE).replace(b"\n", b"\r\n")
    body = body.replace(b"data: ", b"data:")
    assert _parse(body) == [TextDelta("A"), Finish("stop")]


def test_content_null_empty_or_missing_is_no_text() -> None:
    none_content = (
        b'data: {"choices":[{"index":0,"delta":{"content":null,"refusal":""},"finish_reason":null}]}\n\n'
    )
    assert _parse(none_content + _chunk("x") + _chunk(finish="stop") + DONE) == [
        TextDelta("x"),
        Finish("stop"),
    ]


def test_mid_stream_error_object() -> None:
    error = (
        b'data: {"error": {"message": "The server had an error while processing your request. Sorry about that!",'
        b' "type": "server_error", "param": null, "code": null}}\n\n'
    )
    events = _parse(ROLE + _chunk("Hi") + error + DONE)
    assert events[0] == TextDelta("Hi")
    failure = events[1]
    assert isinstance(failure, tuple)
    assert failure[:3] == ("failure", "UpstreamUnavailable", "upstream_unavailable")
    assert failure[4] == 500
    assert "server had an error" in failure[3]
    assert len(events) == 2


@pytest.mark.parametrize(
    ("code", "cls", "status"),
    [
        ("401", "UpstreamAuthError", 401),
        ("403", "UpstreamAuthError", 403),
        ("429", "UpstreamRateLimited", 429),
        ("413", "UpstreamBadRequest", 413),
        ("503", "UpstreamUnavailable", 503),
        ('"400"', "UpstreamBadRequest", 400),  # LiteLLM's proxy writes it as a string
        ("200", "UpstreamUnavailable", 500),  # not an error status: as an unknown error
        ('"context_length_exceeded"', "UpstreamUnavailable", 500),
    ],
)
def test_numeric_error_codes_map_like_statuses(code: str, cls: str, status: int) -> None:
    error = b'data: {"error":{"code":' + code.encode() + b',"message":"no"}}\n\n'
    failure = _parse(ROLE + error)[0]
    assert isinstance(failure, tuple)
    assert (failure[1], failure[4]) == (cls, status)


def test_truncated_stream_is_a_protocol_failure() -> None:
    events = _parse(ROLE + _chunk("Hi"))
    assert events[0] == TextDelta("Hi")
    assert events[1][:3] == ("failure", "UpstreamProtocolError", "upstream_protocol")  # type: ignore[index]
    assert "[DONE]" in events[1][3]  # type: ignore[index]


def test_garbage_is_a_protocol_failure() -> None:
    events = _parse(ROLE + b"data: {not json\n\n" + DONE)
    assert events == [
        ("failure", "UpstreamProtocolError", "upstream_protocol", "openai sent malformed JSON", None, None)
    ]


def test_over_long_line_is_a_protocol_failure() -> None:
    parser = ChatStreamParser("openai")
    events = parser.feed(b"data: " + b"x" * (9 * 1024 * 1024))
    assert len(events) == 1
    assert "over-long" in events[0].error.message  # type: ignore[union-attr]


AZURE_PROMPT_FILTER = (
    b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,'
    b'"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":false,'
    b'"detected":false},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,'
    b'"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]}\n\n'
)
AZURE_TEXT = (
    b'data: {"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},'
    b'"delta":{"content":"Hello"},"finish_reason":null,"index":0,"logprobs":null}],"created":1767225700,'
    b'"id":"chatcmpl-Az1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","usage":null}\n\n'
)
AZURE_LATE_FILTER = (
    b'data: {"id":"","object":"","created":0,"model":"","choices":[{"index":0,"finish_reason":"content_filter",'
    b'"content_filter_results":{"protected_material_text":{"detected":true,"filtered":true}},'
    b'"content_filter_offsets":{"check_offset":65,"start_offset":65,"end_offset":1056}}],"usage":null}\n\n'
)


def test_azure_filter_chunks_and_late_content_filter() -> None:
    data = AZURE_PROMPT_FILTER + AZURE_TEXT + AZURE_LATE_FILTER + DONE
    assert _parse(data, "azure_openai") == [TextDelta("Hello"), Finish("content_filter")]


SETTINGS = ProviderSettings(api_key=KEY, base_url="https://api.example/v1/", default_model="gpt-4o-mini")


def test_openai_request() -> None:
    http = OpenAIDialect(SETTINGS).request(REQUEST, stream=True)
    assert http.url == "https://api.example/v1/chat/completions"
    assert http.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(http.body) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "max_completion_tokens": 50,
        "stop": ["\n\n"],
    }
    assert "stream" not in json.loads(OpenAIDialect(SETTINGS).request(REQUEST, stream=False).body)


def test_azure_request_uses_deployment_path_and_api_key_header() -> None:
    settings = ProviderSettings(
        api_key=KEY, base_url="https://res.openai.azure.com", default_model="d", api_version="2025-01-01"
    )
    request = GenerationRequest(model="my deploy/1", messages=[ChatMessage("user", "x")])
    http = AzureOpenAIDialect(settings).request(request, stream=True)
    assert http.url == (
        "https://res.openai.azure.com/openai/deployments/my%20deploy%2F1/chat/completions?api-version=2025-01-01"
    )
    assert http.headers["api-key"] == KEY
    assert "authorization" not in http.headers
    assert "model" not in json.loads(http.body)


WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "array", "items": {"type": "integer"}}},
    "required": ["city"],
    "additionalProperties": False,
}
ANSWER = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}
IMAGE_DATA = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
EVERY_FIELD = GenerationRequest(
    model="gpt-4o",
    messages=[
        ChatMessage("system", "Use the tools."),
        ChatMessage(
            "user",
            [
                TextPart("What is this, "),
                ImagePart("https://example.com/cat.jpg"),
                TextPart("and this?"),
                ImagePart(IMAGE_DATA),
            ],
        ),
        ChatMessage(
            "assistant",
            "Let me check.",
            tool_calls=[
                ToolCall(call_id="call_a", name="get_weather", arguments={"city": "Oslo", "days": [1, 2]}),
                ToolCall(call_id="call_b", name="get_time", arguments=None, arguments_error="not valid JSON"),
            ],
            provider_state='{"provider":"anthropic","thinking":[]}',  # not OpenAI's: never sent
        ),
        ChatMessage("tool", "4 °C", tool_call_id="call_a"),
        ChatMessage("tool", [TextPart("13:05 "), TextPart("CET")], tool_call_id="call_b"),
        ChatMessage(
            "assistant", None, tool_calls=[ToolCall(call_id="call_c", name="get_time", arguments={})]
        ),
        ChatMessage("tool", "13:06", tool_call_id="call_c"),
        ChatMessage("user", [TextPart("Thanks. "), TextPart("Summarise.")]),
    ],
    tools=[
        Tool(name="get_weather", description="Current weather for a city", parameters=WEATHER),
        Tool(name="get_time"),
    ],
    tool_choice="required",
    response_format=JsonSchemaFormat(name="answer", schema=ANSWER, strict=True),
    reasoning=Reasoning(effort="high"),
    options=Options(max_tokens=500),
)
EVERY_FIELD_BODY = {
    "messages": [
        {"role": "system", "content": "Use the tools."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this, "},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {"type": "text", "text": "and this?"},
                {"type": "image_url", "image_url": {"url": IMAGE_DATA}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo","days":[1,2]}'},
                },
                {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "4 °C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "13:05 CET"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_c", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_c", "content": "13:06"},
        {"role": "user", "content": "Thanks. Summarise."},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": WEATHER,
            },
        },
        {
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
        },
    ],
    "tool_choice": "required",
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": ANSWER, "strict": True},
    },
    "reasoning_effort": "high",
}


def _body(request: GenerationRequest, dialect: OpenAIDialect | AzureOpenAIDialect | None = None) -> Any:
    return json.loads((dialect or OpenAIDialect(SETTINGS)).request(request, stream=True).body)


def test_openai_request_with_every_typed_field() -> None:
    assert OpenAIDialect(SETTINGS).unsupported(EVERY_FIELD) is None
    assert _body(EVERY_FIELD) == {
        "model": "gpt-4o",
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 500,
        **EVERY_FIELD_BODY,
    }


def test_azure_request_is_the_same_body_without_the_model() -> None:
    dialect = AzureOpenAIDialect(SETTINGS)
    assert dialect.unsupported(EVERY_FIELD) is None
    # A reasoning deployment refuses max_tokens; without reasoning, dated api-versions want it.
    assert _body(EVERY_FIELD, dialect) == {
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 500,
        **EVERY_FIELD_BODY,
    }
    plain = msgspec.structs.replace(EVERY_FIELD, reasoning=None)
    assert _body(plain, dialect)["max_tokens"] == 500
    assert "max_completion_tokens" not in _body(plain, dialect)


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        (ToolChoiceName("get_time"), {"type": "function", "function": {"name": "get_time"}}),
        (None, None),  # OpenAI's default with tools: auto
    ],
)
def test_tool_choice(choice: ToolChoice | None, sent: object) -> None:
    body = _body(msgspec.structs.replace(REQUEST, tools=[Tool(name="get_time")], tool_choice=choice))
    assert body.get("tool_choice") == sent
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
        }
    ]


@pytest.mark.parametrize("tools", [None, []])
def test_no_tools_sends_neither_tools_nor_tool_choice(tools: list[Tool] | None) -> None:
    # "none" is the only choice the codec takes without tools; OpenAI refuses it without tools.
    body = _body(msgspec.structs.replace(REQUEST, tools=tools, tool_choice="none"))
    assert "tools" not in body
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("fmt", "sent"),
    [
        (TextFormat(), None),  # the default: nothing sent
        (JsonFormat(), {"type": "json_object"}),
        (
            JsonSchemaFormat(schema=ANSWER),
            {"type": "json_schema", "json_schema": {"name": "response", "schema": ANSWER}},
        ),
        (
            JsonSchemaFormat(name="a", schema=ANSWER, strict=False),
            {"type": "json_schema", "json_schema": {"name": "a", "schema": ANSWER, "strict": False}},
        ),
    ],
)
def test_response_format(fmt: ResponseFormat, sent: object) -> None:
    assert _body(msgspec.structs.replace(REQUEST, response_format=fmt)).get("response_format") == sent


@pytest.mark.parametrize(
    ("reasoning", "effort"),
    [
        (Reasoning(), None),  # the model's default
        (Reasoning(effort="low"), "low"),
        (Reasoning(effort="medium"), "medium"),
        (Reasoning(effort="low", budget_tokens=30000), "low"),  # an effort wins over a budget
        (Reasoning(budget_tokens=1), "low"),
        (Reasoning(budget_tokens=1024), "low"),
        (Reasoning(budget_tokens=4095), "low"),
        (Reasoning(budget_tokens=4096), "medium"),
        (Reasoning(budget_tokens=8192), "medium"),
        (Reasoning(budget_tokens=16383), "medium"),
        (Reasoning(budget_tokens=16384), "high"),
        (Reasoning(budget_tokens=24576), "high"),
    ],
)
def test_reasoning_effort(reasoning: Reasoning, effort: str | None) -> None:
    for dialect in (OpenAIDialect(SETTINGS), AzureOpenAIDialect(SETTINGS)):
        assert (
            _body(msgspec.structs.replace(REQUEST, reasoning=reasoning), dialect).get("reasoning_effort")
            == effort
        )


def test_text_only_parts_are_sent_as_a_string() -> None:
    request = GenerationRequest(model="m", messages=[ChatMessage("user", [TextPart("a"), TextPart("b")])])
    assert _body(request)["messages"] == [{"role": "user", "content": "ab"}]


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls", "retry_after"),
    [
        (
            401,
            b'{"error":{"message":"Incorrect API key provided: sk-test-****cdef.","type":"invalid_request_error",'
            b'"param":null,"code":"invalid_api_key"}}',
            {},
            "UpstreamAuthError",
            None,
        ),
        (
            429,
            b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}',
            {"retry-after-ms": "1500", "retry-after": "2"},
            "UpstreamRateLimited",
            1.5,
        ),
        (
            404,
            b'{"error":{"message":"The model `gpt-9` does not exist","code":"model_not_found"}}',
            {},
            "UpstreamBadRequest",
            None,
        ),
        (503, b"<html>Service Unavailable</html>", {"retry-after": "7"}, "UpstreamUnavailable", 7.0),
        (307, b"", {"location": "https://api.openai.com/v1/chat/completions"}, "UpstreamProtocolError", None),
    ],
)
def test_openai_error_statuses(
    status: int, body: bytes, headers: dict[str, str], cls: str, retry_after: float | None
) -> None:
    error = OpenAIDialect(SETTINGS).error(status, headers, body)
    assert type(error).__name__ == cls
    assert error.status == status
    assert error.retry_after == retry_after
    assert error.retryable is (status in (429, 503))
    assert "<html>" not in error.message


def test_azure_content_filter_error_body() -> None:
    body = (
        b'{"error": {"message": "The response was filtered due to the prompt triggering Azure OpenAI\'s content '
        b'management policy.", "type": null, "param": "prompt", "code": "content_filter", "status": 400,'
        b' "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {"jailbreak":'
        b' {"filtered": true, "detected": true}}}}}'
    )
    error = AzureOpenAIDialect(SETTINGS).error(400, {}, body)
    assert error.code == "upstream_bad_request"
    assert "content filter" in error.message
    rate = AzureOpenAIDialect(SETTINGS).error(
        429,
        {"retry-after": "6"},
        b'{"error": {"code": "429", "message": "Requests ... Please retry after 6 seconds."}}',
    )
    assert rate.code == "upstream_rate_limited"
    assert rate.retry_after == 6.0


def test_non_streaming_completion() -> None:
    body = (
        b'{"id":"chatcmpl-7Qx","object":"chat.completion","choices":[{"index":0,"finish_reason":"stop",'
        b'"message":{"role":"assistant","content":"Hi!","refusal":null}}],"usage":{"prompt_tokens":9,'
        b'"completion_tokens":2,"total_tokens":11}}'
    )
    result = OpenAIDialect(SETTINGS).completion(body)
    assert result.text == "Hi!"  # type: ignore[union-attr]
    assert result.usage == Usage(9, 2)  # type: ignore[union-attr]
