"""Google Gemini (Generative Language API): ``:streamGenerateContent?alt=sse`` is data-only SSE
with CRLF framing and no sentinel. EOF is the end; ``finishReason`` may repeat on every chunk
(older models), and ``usageMetadata`` is cumulative, so both are remembered and emitted at EOF."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import msgspec

from protocol.messages import ChatMessage, Options
from providers.base import (
    Completion,
    Failure,
    Finish,
    GenerationRequest,
    ProviderError,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    UpstreamAuthError,
    UpstreamProtocolError,
    Usage,
)
from providers.dialect import HttpRequest, KeyedDialect
from providers.errors import describe_status, error_for_status, reported_status, retry_after
from providers.framing import SSEDecoder, SSEEvent
from providers.stream_parser import FramedStreamParser

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_MODEL = "gemini-2.5-flash"
PROVIDER = "gemini"

_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"}
_FILTERED |= {"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"}


class _Part(msgspec.Struct):
    text: str | None = None  # absent on functionCall / thoughtSignature-only parts
    thought: bool | None = None


class _Content(msgspec.Struct):
    parts: list[_Part] | None = None


class _Candidate(msgspec.Struct, rename="camel"):
    content: _Content | None = None  # absent when a content filter blocks the output
    finish_reason: str | None = None
    index: int = 0


class _UsageMetadata(msgspec.Struct, rename="camel"):
    prompt_token_count: int = 0
    candidates_token_count: int = 0  # absent until the model produced output
    thoughts_token_count: int = 0


class _PromptFeedback(msgspec.Struct, rename="camel"):
    block_reason: str | None = None


class _Detail(msgspec.Struct, rename="camel"):
    type: str = msgspec.field(default="", name="@type")
    retry_delay: str | None = None  # RetryInfo, a Duration such as "31s"
    reason: str | None = None  # ErrorInfo, e.g. API_KEY_INVALID


class _Error(msgspec.Struct):
    code: int = 500
    message: str = "error"
    details: list[_Detail] | None = None


class _Response(msgspec.Struct, rename="camel"):
    candidates: list[_Candidate] | None = None
    usage_metadata: _UsageMetadata | None = None
    prompt_feedback: _PromptFeedback | None = None
    error: _Error | None = None


class _ErrorBody(msgspec.Struct):
    error: _Error


_response = msgspec.json.Decoder(_Response)
_error_body = msgspec.json.Decoder(_ErrorBody | list[_ErrorBody])  # python-genai unwraps [ {...} ]


def finish_reason(reason: str) -> str:
    upper = reason.upper()
    if upper == "STOP":
        return "stop"
    if upper == "MAX_TOKENS":
        return "length"
    return "content_filter" if upper in _FILTERED else reason.lower()


def _usage(meta: _UsageMetadata) -> Usage:
    # Output is billed with the thinking tokens, which candidatesTokenCount leaves out.
    return Usage(meta.prompt_token_count, meta.candidates_token_count + meta.thoughts_token_count)


def _first_candidate(response: _Response) -> _Candidate | None:
    # candidateCount > 1 is never requested; never mix candidates.
    return next((c for c in response.candidates or () if c.index == 0), None)


def _retry_delay(error: _Error) -> float | None:
    for detail in error.details or ():
        delay = detail.retry_delay
        if detail.type.endswith("google.rpc.RetryInfo") and delay and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


def _mid_stream_error(error: _Error) -> ProviderError:
    status = reported_status(error.code) or 500
    message = f"{PROVIDER} reported an error mid-stream: {error.message}"
    return error_for_status(PROVIDER, status, message, _retry_delay(error))


class GeminiStreamParser(FramedStreamParser[SSEEvent]):
    """GenerateContentResponse chunks, each carrying only the new parts. There is no end
    sentinel: EOF ends the stream, and it is complete only if a finish reason was seen."""

    def __init__(self) -> None:
        # python-genai also accepts error objects as bare JSON lines, without `data:`.
        super().__init__(PROVIDER, SSEDecoder(bare_json=True))
        self._finish: str | None = None  # the last finishReason seen (it is not the end)
        self._blocked = False  # promptFeedback.blockReason: the prompt itself was refused
        self._usage: _UsageMetadata | None = None

    def item(self, sse: SSEEvent, out: list[StreamEvent]) -> None:
        response = self.decode(_response, sse.data, out)
        if response is None:
            return
        if response.error is not None:
            out.append(self.report(_mid_stream_error(response.error)))
            return
        self._response(response, out)

    def at_eof(self) -> list[StreamEvent]:
        if self._finish is None and not self._blocked:
            return [self.fail(f"{PROVIDER} stream ended without a finish reason")]
        self.ended = True
        usage: list[StreamEvent] = [] if self._usage is None else [_usage(self._usage)]
        return [*usage, Finish(finish_reason(self._finish) if self._finish else "content_filter")]

    def _response(self, response: _Response, out: list[StreamEvent]) -> None:
        candidate = _first_candidate(response)
        if candidate is not None:
            parts = candidate.content.parts if candidate.content else None
            for part in parts or ():
                if part.text:
                    out.append(ReasoningDelta(part.text) if part.thought else TextDelta(part.text))
            if candidate.finish_reason:
                self._finish = candidate.finish_reason
        if response.prompt_feedback is not None and response.prompt_feedback.block_reason:
            self._blocked = True
        if response.usage_metadata is not None:
            self._usage = response.usage_metadata


def parse_completion(body: bytes) -> Completion | Failure:
    try:
        response = _response.decode(body)
    except msgspec.DecodeError:
        return Failure(UpstreamProtocolError(f"{PROVIDER} sent a malformed completion", provider=PROVIDER))
    if response.error is not None:
        return Failure(_mid_stream_error(response.error))
    usage = None if response.usage_metadata is None else _usage(response.usage_metadata)
    candidate = _first_candidate(response)
    if candidate is None:
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason:
            return Completion("", "content_filter", usage)
        message = f"{PROVIDER} sent a completion without candidates"
        return Failure(UpstreamProtocolError(message, provider=PROVIDER))
    parts = (candidate.content.parts if candidate.content else None) or []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    return Completion(text, finish_reason(candidate.finish_reason or "STOP"), usage)


def status_error(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    message = describe_status(PROVIDER, status, body)
    try:
        doc = _error_body.decode(body)
    except msgspec.DecodeError:
        doc = []  # not Google's JSON shape (a proxy's page): the status alone decides
    error = doc.error if isinstance(doc, _ErrorBody) else doc[0].error if doc else _Error()
    wait = _retry_delay(error)
    wait = retry_after(headers) if wait is None else wait
    if any(d.reason == "API_KEY_INVALID" for d in error.details or ()):
        # Google answers a bad key with 400 INVALID_ARGUMENT; to the client it is an auth problem.
        return UpstreamAuthError(message, provider=PROVIDER, status=status, retry_after=wait)
    return error_for_status(PROVIDER, status, message, wait)


def contents(messages: list[ChatMessage]) -> tuple[list[dict[str, Any]], str | None]:
    """Gemini ``contents`` and the joined system text. Consecutive turns of one role are merged,
    because some models refuse a conversation whose roles do not alternate."""
    system = [m.text for m in messages if m.role == "system"]
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "model" if message.role == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["parts"].append({"text": message.text})
        else:
            turns.append({"role": role, "parts": [{"text": message.text}]})
    return turns, "\n\n".join(system) if system else None


_CONFIG = {
    "temperature": "temperature",
    "top_p": "topP",
    "max_tokens": "maxOutputTokens",
    "stop": "stopSequences",
}


def generation_config(options: Options) -> dict[str, Any]:
    """Only the options that are set; a single stop string becomes a one-item list."""
    config: dict[str, Any] = {}
    for name, field in _CONFIG.items():
        value = getattr(options, name)
        if value is not None:
            config[field] = [value] if isinstance(value, str) else value
    return config


class GeminiDialect(KeyedDialect):
    name = PROVIDER

    def request(self, request: GenerationRequest, *, stream: bool) -> HttpRequest:
        # One path segment; "models/x" (the SDKs' resource name) is accepted as "x".
        model = quote(request.model.removeprefix("models/"), safe="")
        method = ":streamGenerateContent?alt=sse" if stream else ":generateContent"
        url = f"{self.settings.base_url.rstrip('/')}/v1beta/models/{model}{method}"
        turns, system = contents(request.messages)
        payload: dict[str, Any] = {"contents": turns}
        if system is not None:
            payload["systemInstruction"] = {"parts": [{"text": system}]}
        config = generation_config(request.options)
        if config:
            payload["generationConfig"] = config
        # The key goes in a header, never the URL (URLs end up in logs).
        return HttpRequest.json(url, {"x-goog-api-key": self.settings.api_key or ""}, payload)

    def parser(self) -> GeminiStreamParser:
        return GeminiStreamParser()

    def completion(self, body: bytes) -> Completion | Failure:
        return parse_completion(body)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return status_error(status, headers, body)
