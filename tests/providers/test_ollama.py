"""Ollama /api/chat: OLLAMA_HOST forms, request building, NDJSON transcripts in every split."""

from __future__ import annotations

import json

import pytest

from protocol.messages import ChatMessage, Options
from providers.base import (
    Completion,
    Failure,
    Finish,
    GenerationRequest,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    Usage,
)
from providers.dialect import ProviderSettings
from providers.dialects.ollama import DEFAULT_BASE_URL, OllamaDialect, OllamaStreamParser, base_url
from tests.support.transcripts import events_in_every_split


def _line(content: str, model: str = "llama3.2", thinking: str | None = None) -> bytes:
    message: dict[str, str] = {"role": "assistant", "content": content}
    if thinking is not None:
        message["thinking"] = thinking
    doc = {"model": model, "created_at": "2026-01-01T10:00:00.1234567Z", "message": message, "done": False}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


HEL = (
    b'{"model":"llama3.2","created_at":"2026-01-01T10:00:00.1234567Z",'
    b'"message":{"role":"assistant","content":"Hel"},"done":false}\n'
)
LO = (
    b'{"model":"llama3.2","created_at":"2026-01-01T10:00:00.1456789Z",'
    b'"message":{"role":"assistant","content":"lo!"},"done":false}\n'
)
DONE = (
    b'{"model":"llama3.2","created_at":"2026-01-01T10:00:00.1678901Z",'
    b'"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":412345678,'
    b'"load_duration":12345678,"prompt_eval_count":26,"prompt_eval_duration":98765432,"eval_count":3,'
    b'"eval_duration":65432109}\n'
)


def _done(
    reason: str = "stop", content: str = "", counts: str = ',"prompt_eval_count":26,"eval_count":3'
) -> bytes:
    return (
        b'{"model":"llama3.2","created_at":"2026-01-01T10:00:00.2Z","message":{"role":"assistant","content":'
        + json.dumps(content).encode()
        + b'},"done":true,"done_reason":"'
        + reason.encode()
        + b'","total_duration":401234567'
        + counts.encode()
        + b"}\n"
    )


def _parse(data: bytes) -> list[object]:
    return events_in_every_split(OllamaStreamParser, data)


# ---- stream transcripts ------------------------------------------------------------------------


def test_plain_text_with_usage() -> None:
    assert _parse(HEL + LO + DONE) == [TextDelta("Hel"), TextDelta("lo!"), Usage(26, 3), Finish("stop")]


def test_length_limit() -> None:
    assert _parse(HEL + _done("length"))[-2:] == [Usage(26, 3), Finish("length")]


def test_done_object_may_still_carry_text() -> None:
    assert _parse(HEL + _done(content="lo!")) == [
        TextDelta("Hel"),
        TextDelta("lo!"),
        Usage(26, 3),
        Finish("stop"),
    ]


def test_zero_counts_are_omitted_and_done_reason_may_be_empty_or_missing() -> None:
    # omitempty: a fully cached prompt drops prompt_eval_count; "" is a closed connection's reason.
    cached = _done("", counts=',"eval_count":3')
    assert _parse(HEL + cached)[-2:] == [Usage(0, 3), Finish("stop")]
    bare = b'{"model":"llama3.2","created_at":"2026-01-01T10:00:00Z","message":{"role":"assistant","content":""},"done":true}\n'
    assert _parse(HEL + bare)[-2:] == [Usage(0, 0), Finish("stop")]


def test_load_reason_passes_through() -> None:
    load = b'{"model":"llama3.2","created_at":"2026-01-01T10:00:00Z","message":{"role":"assistant","content":""},"done_reason":"load","done":true}\n'
    assert _parse(load) == [Usage(0, 0), Finish("load")]


THINKING = "17\u00d723: 17\u00d720=340, 17\u00d73=51"  # the multiplication sign, as qwen3 writes it


def test_thinking_is_reasoning_not_text() -> None:
    data = (
        _line("", "qwen3", thinking=THINKING)
        + _line("391", "qwen3")
        + _done(counts=',"prompt_eval_count":12,"eval_count":40')
    )
    assert _parse(data) == [
        ReasoningDelta(THINKING),
        TextDelta("391"),
        Usage(12, 40),
        Finish("stop"),
    ]


def test_multi_byte_characters_and_line_separators_survive_any_split() -> None:
    text = "日本語 ✓ emoji 🎉 and a U+2028:\u2028 and U+0085:\x85 end"
    assert _parse(_line(text) + DONE) == [TextDelta(text), Usage(26, 3), Finish("stop")]


def test_crlf_blank_lines_and_no_final_newline() -> None:
    # Ollama writes LF; a proxy may rewrite to CRLF or add blank lines, and the last LF may be lost.
    data = (b"\n" + HEL + b"\n" + LO + DONE.rstrip(b"\n")).replace(b"\n", b"\r\n").removesuffix(b"\r\n")
    assert _parse(data) == [TextDelta("Hel"), TextDelta("lo!"), Usage(26, 3), Finish("stop")]


def test_lines_after_done_are_ignored() -> None:
    assert _parse(HEL + DONE + LO + b"{garbage\n") == [TextDelta("Hel"), Usage(26, 3), Finish("stop")]


def test_mid_stream_error_line() -> None:
    generate_style = (
        b'{"model":"llama3.2","created_at":"2026-01-01T10:00:00.2Z","response":" Yes","done":false}\n'
    )
    error = b'{"error":"an error was encountered while running the model"}\n'
    events = _parse(HEL + generate_style + error + LO + DONE)
    assert events == [
        TextDelta("Hel"),
        (
            "failure",
            "UpstreamUnavailable",
            "upstream_unavailable",
            "ollama reported an error mid-stream: an error was encountered while running the model",
            500,
            None,
        ),
    ]


def test_error_as_the_first_line_names_a_missing_model() -> None:
    events = _parse(b'{"error":"model \'llama9\' not found"}\n')
    assert events == [
        (
            "failure",
            "UpstreamBadRequest",
            "upstream_bad_request",
            "ollama reported an error mid-stream: model 'llama9' not found",
            404,
            None,
        )
    ]


def test_truncated_stream_is_a_protocol_failure() -> None:
    events = _parse(HEL + LO)
    assert events[:2] == [TextDelta("Hel"), TextDelta("lo!")]
    assert events[2] == (
        "failure",
        "UpstreamProtocolError",
        "upstream_protocol",
        "ollama stream ended before done:true",
        None,
        None,
    )
    assert len(events) == 3


def test_stream_cut_inside_the_done_line_is_truncated() -> None:
    events = _parse(HEL + DONE[:40])
    assert events[0] == TextDelta("Hel")
    assert events[1][:3] == ("failure", "UpstreamProtocolError", "upstream_protocol")  # type: ignore[index]
    assert len(events) == 2


def test_empty_stream_is_truncated() -> None:
    parser = OllamaStreamParser()
    events = parser.close()
    assert len(events) == 1
    assert events[0].error.code == "upstream_protocol"  # type: ignore[union-attr]


@pytest.mark.parametrize("garbage", [b"{not json\n", b"[1,2]\n", b'{"done":"yes"}\n', b"\xff\xfe\n"])
def test_garbage_is_a_protocol_failure(garbage: bytes) -> None:
    events = _parse(HEL + garbage + DONE)
    assert events == [
        TextDelta("Hel"),
        ("failure", "UpstreamProtocolError", "upstream_protocol", "ollama sent malformed JSON", None, None),
    ]


def test_over_long_line_is_a_protocol_failure_after_the_lines_before_it() -> None:
    parser = OllamaStreamParser()
    events = parser.feed(HEL + b'{"message":{"content":"' + b"x" * (9 * 1024 * 1024))
    assert events[0] == TextDelta("Hel")
    assert len(events) == 2
    assert "over-long" in events[1].error.message  # type: ignore[union-attr]
    assert parser.feed(DONE) == []
    assert parser.close() == []


# ---- OLLAMA_HOST -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("", "http://127.0.0.1:11434"),
        (DEFAULT_BASE_URL, "http://127.0.0.1:11434"),
        ("localhost", "http://localhost:11434"),
        ("1.2.3.4:56789", "http://1.2.3.4:56789"),
        (":56789", "http://127.0.0.1:56789"),
        ("example.com/", "http://example.com:11434"),
        ("http://example.com", "http://example.com:80"),
        ("https://ollama.com", "https://ollama.com:443"),
        ("https://example.com:56789/", "https://example.com:56789"),
        ("0.0.0.0:11434", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("http://0.0.0.0:8080", "http://127.0.0.1:8080"),
        ("[::]:11434", "http://[::1]:11434"),
        ("[::1]", "http://[::1]:11434"),
        ("[fd00::2]:56789/", "http://[fd00::2]:56789"),
        ("proxy.local:8080/ollama/", "http://proxy.local:8080/ollama"),
        ("  HTTP://Example.com:1234  ", "http://example.com:1234"),
        ("example.com:notaport", "http://example.com:11434"),
    ],
)
def test_base_url_reads_ollama_host_like_ollama_clients(host: str, url: str) -> None:
    assert base_url(host) == url


# ---- request -----------------------------------------------------------------------------------

REQUEST = GenerationRequest(
    model="llama3.2",
    messages=[
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Say hi"),
        ChatMessage("assistant", "Hi"),
    ],
    options=Options(temperature=0.2, max_tokens=50, top_p=0.9, stop="\n\n"),
)


def _dialect(host: str = "0.0.0.0:11434", key: str | None = None) -> OllamaDialect:
    return OllamaDialect(ProviderSettings(api_key=key, base_url=host, default_model="llama3.2"))


def test_request_streaming() -> None:
    http = _dialect().request(REQUEST, stream=True)
    assert http.method == "POST"
    assert http.url == "http://127.0.0.1:11434/api/chat"
    assert http.headers == {"content-type": "application/json"}
    assert json.loads(http.body) == {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hi"},
            {"role": "assistant", "content": "Hi"},
        ],
        "stream": True,
        "options": {"temperature": 0.2, "top_p": 0.9, "num_predict": 50, "stop": ["\n\n"]},
    }


def test_request_non_streaming_says_so_and_omits_empty_options() -> None:
    request = GenerationRequest(model="qwen3:8b", messages=[ChatMessage("user", "x")])
    body = json.loads(_dialect().request(request, stream=False).body)
    assert body == {"model": "qwen3:8b", "messages": [{"role": "user", "content": "x"}], "stream": False}
    partial = GenerationRequest(
        model="m", messages=[ChatMessage("user", "x")], options=Options(max_tokens=7, stop=["a", "b"])
    )
    assert json.loads(_dialect().request(partial, stream=True).body)["options"] == {
        "num_predict": 7,
        "stop": ["a", "b"],
    }


def test_cloud_key_is_a_bearer_token() -> None:
    dialect = _dialect("https://ollama.com", key="ollama-key-123")
    http = dialect.request(REQUEST, stream=True)
    assert http.url == "https://ollama.com:443/api/chat"
    assert http.headers["authorization"] == "Bearer ollama-key-123"


def test_configured_without_a_key() -> None:
    assert _dialect().configured is True
    assert _dialect().name == "ollama"


# ---- errors before the stream ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls", "retry_after"),
    [
        (404, b'{"error":"model \'llama9\' not found"}', {}, "UpstreamBadRequest", None),
        (400, b'{"error":"invalid options: num_predict"}', {}, "UpstreamBadRequest", None),
        (403, b'{"error":"unauthorized"}', {}, "UpstreamAuthError", None),
        (429, b'{"error":"too many requests"}', {"retry-after": "3"}, "UpstreamRateLimited", 3.0),
        (
            500,
            b'{"error":"llama runner process has terminated: exit status 2"}',
            {},
            "UpstreamUnavailable",
            None,
        ),
        (502, b'{"error":"cloud model unreachable"}', {}, "UpstreamUnavailable", None),
        (502, b"<html><body>Bad Gateway</body></html>", {}, "UpstreamUnavailable", None),
    ],
)
def test_error_statuses(
    status: int, body: bytes, headers: dict[str, str], cls: str, retry_after: float | None
) -> None:
    error = _dialect().error(status, headers, body)
    assert type(error).__name__ == cls
    assert error.status == status
    assert error.retry_after == retry_after
    assert error.retryable is (status in (429, 500, 502))
    assert error.message.startswith(f"ollama answered HTTP {status}: ")
    assert "<html>" not in error.message
    if body.startswith(b"{"):
        assert error.message.endswith(json.loads(body)["error"])


# ---- non-streaming -----------------------------------------------------------------------------


def _completion(body: bytes) -> Completion:
    result = _dialect().completion(body)
    assert isinstance(result, Completion)
    return result


def _failure(body: bytes) -> ProviderError:
    result = _dialect().completion(body)
    assert isinstance(result, Failure)
    return result.error


def test_completion() -> None:
    body = (
        b'{"model":"llama3.2","created_at":"2026-01-01T10:00:00.5Z","message":{"role":"assistant",'
        b'"content":"Hello! \xf0\x9f\x91\x8b"},"done":true,"done_reason":"length","total_duration":5191566416,'
        b'"load_duration":2154458,"prompt_eval_count":26,"prompt_eval_duration":383809000,"eval_count":298,'
        b'"eval_duration":4799921000}'
    )
    assert _completion(body) == Completion("Hello! \U0001f44b", "length", Usage(26, 298))


def test_completion_with_omitted_fields() -> None:
    body = b'{"model":"m","message":{"role":"assistant","content":"ok"},"done":true}'
    assert _completion(body) == Completion("ok", "stop", Usage(0, 0))


def test_completion_error_and_garbage() -> None:
    error = _failure(b'{"error":"an error was encountered while running the model"}')
    assert error.code == "upstream_unavailable"
    assert error.message == "ollama reported an error: an error was encountered while running the model"
    missing = _failure(b'{"error":"model \'llama9\' not found"}')
    assert (missing.code, missing.status) == ("upstream_bad_request", 404)
    assert _failure(b"<html>").code == "upstream_protocol"
