"""OpenAI Chat Completions: data-only SSE, ``data: [DONE]`` at the end, usage in a last chunk
with empty ``choices`` (asked for with ``stream_options.include_usage``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from protocol.messages import ChatMessage
from providers.base import (
    Completion,
    Failure,
    Finish,
    GenerationRequest,
    ProviderError,
    StreamEvent,
    TextDelta,
    UpstreamProtocolError,
    Usage,
)
from providers.dialect import HttpRequest, KeyedDialect
from providers.errors import describe_status, error_for_status, reported_status, retry_after
from providers.framing import SSEDecoder, SSEEvent
from providers.stream_parser import FramedStreamParser

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    index: int = 0
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Error(msgspec.Struct):
    message: str = "error"
    type: str | None = None
    code: str | int | None = None


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = []
    usage: _Usage | None = None
    error: _Error | None = None


class _Message(msgspec.Struct):
    content: str | None = None


class _CompletionChoice(msgspec.Struct):
    message: _Message
    finish_reason: str | None = None


class _CompletionBody(msgspec.Struct):
    choices: list[_CompletionChoice]
    usage: _Usage | None = None


_chunk = msgspec.json.Decoder(_Chunk)
_completion = msgspec.json.Decoder(_CompletionBody)


def chat_payload(
    request: GenerationRequest, *, stream: bool, model: str | None, max_tokens_field: str
) -> dict[str, Any]:
    """The Chat Completions body (shared with Azure, which names the model in the URL)."""
    payload: dict[str, Any] = {"messages": [_message(m) for m in request.messages]}
    if model is not None:
        payload["model"] = model
    if stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    options = request.options
    for name, field in (("temperature", "temperature"), ("max_tokens", max_tokens_field), ("top_p", "top_p")):
        value = getattr(options, name)
        if value is not None:
            payload[field] = value
    if options.stop is not None:
        payload["stop"] = options.stop
    return payload


def _message(message: ChatMessage) -> dict[str, str]:
    return {"role": message.role, "content": message.text}


def mid_stream_error(provider: str, error: _Error) -> ProviderError:
    status = reported_status(error.code)
    if status is None:  # OpenAI's own shape: a type and a string code
        kind = f"{error.type or ''} {error.code or ''}"
        status = 429 if "rate_limit" in kind else 400 if "invalid_request" in kind else 500
    return error_for_status(provider, status, f"{provider} reported an error mid-stream: {error.message}")


class ChatStreamParser(FramedStreamParser[SSEEvent]):
    """The Chat Completions chunk stream (OpenAI and Azure OpenAI)."""

    end_signal = "[DONE]"

    def __init__(self, provider: str) -> None:
        super().__init__(provider, SSEDecoder())
        self._finish: str | None = None

    def item(self, sse: SSEEvent, out: list[StreamEvent]) -> None:
        if sse.data.startswith(b"[DONE]"):
            self.ended = True
            if self._finish is not None:
                out.append(Finish(self._finish))
            return
        chunk = self.decode(_chunk, sse.data, out)
        if chunk is None:
            return
        if chunk.error is not None:
            out.append(self.report(mid_stream_error(self.provider, chunk.error)))
            return
        self._chunk(chunk, out)

    def _chunk(self, chunk: _Chunk, out: list[StreamEvent]) -> None:
        for choice in chunk.choices:
            if choice.index != 0:
                continue  # n > 1 is not requested; never mix candidates
            if choice.delta is not None and choice.delta.content:
                out.append(TextDelta(choice.delta.content))
            if choice.finish_reason:
                self._finish = choice.finish_reason
        if chunk.usage is not None:
            out.append(Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens))


def parse_completion(provider: str, body: bytes) -> Completion | Failure:
    try:
        doc = _completion.decode(body)
    except msgspec.DecodeError:
        return Failure(UpstreamProtocolError(f"{provider} sent a malformed completion"))
    if not doc.choices:
        return Failure(UpstreamProtocolError(f"{provider} sent a completion without choices"))
    choice = doc.choices[0]
    usage = None if doc.usage is None else Usage(doc.usage.prompt_tokens, doc.usage.completion_tokens)
    return Completion(choice.message.content or "", choice.finish_reason or "stop", usage)


def status_error(provider: str, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    return error_for_status(provider, status, describe_status(provider, status, body), retry_after(headers))


class OpenAIDialect(KeyedDialect):
    name = "openai"

    def request(self, request: GenerationRequest, *, stream: bool) -> HttpRequest:
        url = self.settings.base_url.rstrip("/") + "/chat/completions"
        headers = {"authorization": f"Bearer {self.settings.api_key}"}
        # max_tokens is deprecated and refused by reasoning models; max_completion_tokens works for all.
        payload = chat_payload(
            request, stream=stream, model=request.model, max_tokens_field="max_completion_tokens"
        )
        return HttpRequest.json(url, headers, payload)

    def parser(self) -> ChatStreamParser:
        return ChatStreamParser(self.name)

    def completion(self, body: bytes) -> Completion | Failure:
        return parse_completion(self.name, body)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return status_error(self.name, status, headers, body)
