"""Anthropic Messages: named SSE events (``event:`` + ``data:``), ``message_stop`` at the end,
usage split between ``message_start`` and the cumulative ``message_delta`` counts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from providers.base import (
    Completion,
    Failure,
    Finish,
    GenerationRequest,
    ProviderError,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    UpstreamProtocolError,
    Usage,
)
from providers.dialect import HttpRequest, KeyedDialect
from providers.errors import describe_status, error_for_status, retry_after
from providers.framing import SSEDecoder, SSEEvent
from providers.stream_parser import FramedStreamParser

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MODEL = "claude-sonnet-4-5"
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # the API requires max_tokens

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# error.type -> the HTTP status the API answers it with, so a mid-stream error maps like one before it
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
# Other named events are skipped undecoded: a future event's shape must not break the parser.
_KNOWN = frozenset(
    {"message_start", "content_block_start", "content_block_delta", "content_block_stop"}
    | {"message_delta", "message_stop", "error"}
)


class _Usage(msgspec.Struct):
    # Any of these may be absent or null; absent in a message_delta means "unchanged".
    input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    output_tokens: int | None = None


class _Message(msgspec.Struct):
    usage: _Usage | None = None


class _Delta(msgspec.Struct):
    type: str | None = None  # text_delta, thinking_delta, …; absent on message_delta
    text: str | None = None
    thinking: str | None = None
    stop_reason: str | None = None


class _Error(msgspec.Struct):
    type: str = "api_error"
    message: str = "error"


class _Event(msgspec.Struct):
    type: str | None = None
    message: _Message | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: _Error | None = None


class _Block(msgspec.Struct):
    type: str
    text: str | None = None


class _CompletionBody(msgspec.Struct):
    content: list[_Block]
    stop_reason: str | None = None
    usage: _Usage | None = None


_event = msgspec.json.Decoder(_Event)
_completion = msgspec.json.Decoder(_CompletionBody)


def finish_reason(stop_reason: str | None) -> str:
    if stop_reason is None:
        return "stop"
    return _FINISH.get(stop_reason, stop_reason.lower())


def _input_tokens(usage: _Usage) -> int:
    # Cached prompt tokens are still prompt tokens: the total is the sum of the three fields.
    parts = (usage.input_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens)
    return sum(part or 0 for part in parts)


def _merge(base: _Usage, update: _Usage) -> _Usage:
    """message_delta counts are cumulative: a field it carries replaces the earlier value."""
    fields = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    merged = {f: getattr(update, f) if getattr(update, f) is not None else getattr(base, f) for f in fields}
    return _Usage(**merged)


def mid_stream_error(provider: str, error: _Error | None) -> ProviderError:
    error = error or _Error()
    status = _ERROR_STATUS.get(error.type, 500)
    return error_for_status(provider, status, f"{provider} reported an error mid-stream: {error.message}")


class AnthropicStreamParser(FramedStreamParser[SSEEvent]):
    end_signal = "message_stop"

    def __init__(self, provider: str = "anthropic") -> None:
        super().__init__(provider, SSEDecoder())
        self._usage: _Usage | None = None
        self._stop_reason: str | None = None

    def item(self, sse: SSEEvent, out: list[StreamEvent]) -> None:
        if sse.event is not None and sse.event not in _KNOWN:
            return  # ping and event types added after this was written
        event = self.decode(_event, sse.data, out)
        if event is not None:
            self._event(event.type or sse.event, event, out)

    def _event(self, kind: str | None, event: _Event, out: list[StreamEvent]) -> None:
        if kind == "content_block_delta" and event.delta is not None:
            self._block_delta(event.delta, out)
        elif kind == "message_start" and event.message is not None:
            self._usage = event.message.usage
        elif kind == "message_delta":
            if event.delta is not None and event.delta.stop_reason:
                self._stop_reason = event.delta.stop_reason
            if event.usage is not None:
                self._usage = event.usage if self._usage is None else _merge(self._usage, event.usage)
        elif kind == "message_stop":
            self.ended = True
            if self._usage is not None:
                out.append(Usage(_input_tokens(self._usage), self._usage.output_tokens or 0))
            out.append(Finish(finish_reason(self._stop_reason)))
        elif kind == "error":
            out.append(self.report(mid_stream_error(self.provider, event.error)))

    @staticmethod
    def _block_delta(delta: _Delta, out: list[StreamEvent]) -> None:
        # One event carries every block type's deltas: dispatch on delta.type, never assume text.
        if delta.type == "text_delta" and delta.text:
            out.append(TextDelta(delta.text))
        elif delta.type == "thinking_delta" and delta.thinking:
            out.append(ReasoningDelta(delta.thinking))


def parse_completion(provider: str, body: bytes) -> Completion | Failure:
    try:
        doc = _completion.decode(body)
    except msgspec.DecodeError:
        return Failure(UpstreamProtocolError(f"{provider} sent a malformed completion"))
    text = "".join(block.text or "" for block in doc.content if block.type == "text")
    usage = None if doc.usage is None else Usage(_input_tokens(doc.usage), doc.usage.output_tokens or 0)
    return Completion(text, finish_reason(doc.stop_reason), usage)


def messages_payload(request: GenerationRequest, *, stream: bool) -> dict[str, Any]:
    options = request.options
    payload: dict[str, Any] = {
        "model": request.model,
        "max_tokens": options.max_tokens or DEFAULT_MAX_TOKENS,
        # Messages takes no system role: system prompts go in the top-level `system` field.
        "messages": [{"role": m.role, "content": m.text} for m in request.messages if m.role != "system"],
    }
    if stream:
        payload["stream"] = True
    system = [m.text for m in request.messages if m.role == "system"]
    if system:
        payload["system"] = "\n\n".join(system)
    if options.temperature is not None:
        payload["temperature"] = options.temperature
    if options.top_p is not None:
        payload["top_p"] = options.top_p
    if options.stop is not None:
        payload["stop_sequences"] = [options.stop] if isinstance(options.stop, str) else options.stop
    return payload


class AnthropicDialect(KeyedDialect):
    name = "anthropic"

    def request(self, request: GenerationRequest, *, stream: bool) -> HttpRequest:
        url = self.settings.base_url.rstrip("/") + "/v1/messages"
        headers = {"x-api-key": self.settings.api_key or "", "anthropic-version": ANTHROPIC_VERSION}
        return HttpRequest.json(url, headers, messages_payload(request, stream=stream))

    def parser(self) -> AnthropicStreamParser:
        return AnthropicStreamParser(self.name)

    def completion(self, body: bytes) -> Completion | Failure:
        return parse_completion(self.name, body)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        # body_message reads {"type":"error","error":{"type":…,"message":…}}; 529 is >= 500: retryable
        message = describe_status(self.name, status, body)
        return error_for_status(self.name, status, message, retry_after(headers))
