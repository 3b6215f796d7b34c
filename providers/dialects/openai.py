"""OpenAI Chat Completions: data-only SSE, ``data: [DONE]`` at the end, usage in a last chunk
with empty ``choices`` (asked for with ``stream_options.include_usage``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from protocol.messages import (
    ChatMessage,
    ImagePart,
    JsonFormat,
    JsonSchemaFormat,
    Reasoning,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolChoiceName,
)
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
_json = msgspec.json.Encoder()

# ---- request ---------------------------------------------------------------------------------

NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
# reasoning.budget_tokens alone, as an effort: the budgets Gemini's OpenAI-compatible endpoint
# gives each effort (low 1024, medium 8192, high 24576) fall in the matching band.
_EFFORT_BANDS = ((4096, "low"), (16384, "medium"))


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
    _typed_fields(request, payload)
    return payload


def _typed_fields(request: GenerationRequest, payload: dict[str, Any]) -> None:
    # Without tools there is nothing to choose from: OpenAI refuses a tool_choice (even "none",
    # the only one the codec lets through without tools) and an empty tools array.
    if request.tools:
        payload["tools"] = [_tool(tool) for tool in request.tools]
        if request.tool_choice is not None:
            payload["tool_choice"] = _tool_choice(request.tool_choice)
    if request.response_format is not None and (fmt := _response_format(request.response_format)):
        payload["response_format"] = fmt
    if request.reasoning is not None and (effort := reasoning_effort(request.reasoning)):
        payload["reasoning_effort"] = effort


def _tool(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    function["parameters"] = NO_PARAMETERS if tool.parameters is None else tool.parameters
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice) -> object:
    if isinstance(choice, ToolChoiceName):
        return {"type": "function", "function": {"name": choice.name}}
    return choice


def _response_format(fmt: ResponseFormat) -> dict[str, Any] | None:
    """The ``response_format`` field; None for text, the default."""
    if isinstance(fmt, JsonFormat):
        return {"type": "json_object"}
    if isinstance(fmt, JsonSchemaFormat):
        spec: dict[str, Any] = {"name": fmt.name, "schema": fmt.schema}
        if fmt.strict is not None:
            spec["strict"] = fmt.strict
        return {"type": "json_schema", "json_schema": spec}
    return None


def reasoning_effort(reasoning: Reasoning) -> str | None:
    """``reasoning_effort``: the effort asked for, else the band of ``budget_tokens`` (OpenAI
    takes no token budget), else None (the model's default)."""
    if reasoning.effort is not None:
        return reasoning.effort
    budget = reasoning.budget_tokens
    if budget is None:
        return None
    return next((effort for bound, effort in _EFFORT_BANDS if budget < bound), "high")


def _message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    out: dict[str, Any] = {"role": message.role, "content": _content(message)}
    if message.tool_calls:
        out["tool_calls"] = [_call(call) for call in message.tool_calls]
        if not message.text:
            out["content"] = None  # a turn of calls only
    return out  # provider_state: Chat Completions takes nothing back


def _content(message: ChatMessage) -> str | list[dict[str, Any]]:
    """Plain text unless there are images (codec: in user messages only), so that compatible
    servers that take only strings keep working."""
    if type(message.content) is not list or not message.images:
        return message.text
    return [_part(part) for part in message.content]


def _part(part: TextPart | ImagePart) -> dict[str, Any]:
    # https and data: URLs alike: OpenAI takes both as the image's URL, and the gateway fetches neither.
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    return {"type": "image_url", "image_url": {"url": part.url}}


def _call(call: ToolCall) -> dict[str, Any]:
    # Arguments that were invalid JSON (None) go back as "{}": the raw text is not kept, and an
    # empty string is refused by some upstreams.
    arguments = "{}" if call.arguments is None else _json.encode(call.arguments).decode()
    return {"id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": arguments}}


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
