"""Anthropic Messages: named SSE events (``event:`` + ``data:``), ``message_stop`` at the end,
usage split between ``message_start`` and the cumulative ``message_delta`` counts.

Content arrives in indexed blocks: ``text``, ``thinking`` (its signature last), whole
``redacted_thinking``, and ``tool_use`` whose input streams as JSON fragments. The signed thinking
blocks are the turn's provider state: the next request must send them back unchanged, before the
``tool_use`` blocks they led to (docs/providers-typed-parts.md, "Anthropic")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from protocol.anthropic_state import (
    RedactedThinkingBlock,
    StateBlock,
    ThinkingBlock,
    encode_state,
    replay_blocks,
)
from protocol.messages import ChatMessage, ImagePart, JsonFormat, JsonSchemaFormat, Reasoning, ToolChoiceName
from protocol.structured import split_data_url
from providers.base import (
    Completion,
    Failure,
    Finish,
    GenerationRequest,
    ProviderError,
    ProviderState,
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
from providers.tool_calls import ToolCallTracker

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MODEL = "claude-sonnet-4-5"
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # the API requires max_tokens; with thinking, on top of the budget
MIN_THINKING_BUDGET = 1024  # the API's smallest budget_tokens
THINKING_BUDGETS = {"low": MIN_THINKING_BUDGET, "medium": 4096, "high": 16384}  # effort without budget
# Messages has no JSON mode without a schema (output_config.format takes only a json_schema).
JSON_INSTRUCTION = "Answer with a single JSON value only: no prose and no code fences."
_NO_PARAMETERS = {"type": "object", "properties": {}}

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
_json = msgspec.json.Encoder()


# ---- wire shapes ------------------------------------------------------------------------------


class _OutputDetails(msgspec.Struct):
    thinking_tokens: int | None = None


class _Usage(msgspec.Struct):
    # Any of these may be absent or null; absent in a message_delta means "unchanged".
    input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    output_tokens: int | None = None
    output_tokens_details: _OutputDetails | None = None


class _Message(msgspec.Struct):
    usage: _Usage | None = None


class _Block(msgspec.Struct):
    """A content block: whole in a completion, its start in a stream."""

    type: str
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None  # redacted_thinking
    id: str | None = None  # tool_use
    name: str | None = None
    input: Any = None


class _Delta(msgspec.Struct):
    type: str | None = None  # text_delta, thinking_delta, …; absent on message_delta
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    partial_json: str | None = None
    stop_reason: str | None = None


class _Error(msgspec.Struct):
    type: str = "api_error"
    message: str = "error"


class _Event(msgspec.Struct):
    type: str | None = None
    index: int = 0
    message: _Message | None = None
    content_block: _Block | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: _Error | None = None


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


def _usage(usage: _Usage) -> Usage:
    # Cached prompt tokens are still prompt tokens: the total is the sum of the three fields, and
    # cached_tokens (the cache reads) is part of it. Thinking tokens are inside output_tokens.
    parts = (usage.input_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens)
    details = usage.output_tokens_details
    return Usage(
        sum(part or 0 for part in parts),
        usage.output_tokens or 0,
        reasoning_tokens=None if details is None else details.thinking_tokens,
        cached_tokens=usage.cache_read_input_tokens,
    )


def _merge(base: _Usage, update: _Usage) -> _Usage:
    """message_delta counts are cumulative: a field it carries replaces the earlier value."""
    merged = {
        f: getattr(update, f) if getattr(update, f) is not None else getattr(base, f)
        for f in _Usage.__struct_fields__
    }
    return _Usage(**merged)


def mid_stream_error(provider: str, error: _Error | None) -> ProviderError:
    error = error or _Error()
    status = _ERROR_STATUS.get(error.type, 500)
    return error_for_status(provider, status, f"{provider} reported an error mid-stream: {error.message}")


# ---- content blocks -> events -----------------------------------------------------------------


class _Thinking:
    """A thinking block being streamed: its text so far and its signature (which comes last)."""

    __slots__ = ("parts", "signature")

    def __init__(self, text: str, signature: str) -> None:
        self.parts = [text] if text else []
        self.signature = signature


class _Blocks:
    """A turn's content blocks, keyed by their index, as events: text, reasoning, client tool
    calls (through the tracker), and the signed thinking blocks kept for the provider state.

    Server tools (``server_tool_use``, ``web_search_tool_result``, …) run on Anthropic's side:
    they are not the client's calls, so their blocks and input fragments say nothing, as do
    citations, ``compaction`` and block types added later."""

    def __init__(self) -> None:
        self._calls = ToolCallTracker()
        self._thinking: dict[int, _Thinking] = {}  # open thinking blocks
        self._kept: dict[int, StateBlock] = {}  # blocks to send back, by index

    def start(self, index: int, block: _Block, out: list[StreamEvent]) -> None:
        if block.type == "text" and block.text:
            out.append(TextDelta(block.text))
        elif block.type == "tool_use":
            self._calls.start(index, block.id, block.name or "", out)
            # The input is a placeholder {} in a stream; a whole block (or a call pre-filled by
            # code execution) carries the arguments here.
            if isinstance(block.input, dict) and block.input:
                self._calls.delta(index, _json.encode(block.input).decode(), out)
        elif block.type == "thinking":
            self._thinking[index] = _Thinking(block.thinking or "", block.signature or "")
            if block.thinking:
                out.append(ReasoningDelta(block.thinking))
        elif block.type == "redacted_thinking" and block.data:
            self._kept[index] = RedactedThinkingBlock(block.data)

    def delta(self, index: int, delta: _Delta, out: list[StreamEvent]) -> None:
        # One event carries every block type's deltas: dispatch on delta.type, never assume text.
        kind = delta.type
        if kind == "text_delta" and delta.text:
            out.append(TextDelta(delta.text))
        elif kind == "input_json_delta":
            self._calls.delta(index, delta.partial_json or "", out)  # a server tool's: no open call
        elif kind == "thinking_delta" and delta.thinking:
            out.append(ReasoningDelta(delta.thinking))
            if (thinking := self._thinking.get(index)) is not None:
                thinking.parts.append(delta.thinking)
        elif kind == "signature_delta" and (thinking := self._thinking.get(index)) is not None:
            thinking.signature = delta.signature or thinking.signature

    def stop(self, index: int, out: list[StreamEvent]) -> None:
        self._calls.end(index, out)
        thinking = self._thinking.pop(index, None)
        # An unsigned block (cut off before its signature) cannot be sent back: the API refuses it.
        if thinking is not None and thinking.signature:
            self._kept[index] = ThinkingBlock("".join(thinking.parts), thinking.signature)

    def close(self, out: list[StreamEvent]) -> None:
        """End the blocks still open: max_tokens stops a stream without their content_block_stop."""
        self._calls.end_all(out)
        for index in list(self._thinking):
            self.stop(index, out)

    def state(self, out: list[StreamEvent]) -> None:
        if self._kept:
            out.append(ProviderState(encode_state([self._kept[i] for i in sorted(self._kept)])))


# ---- stream and completion --------------------------------------------------------------------


class AnthropicStreamParser(FramedStreamParser[SSEEvent]):
    end_signal = "message_stop"

    def __init__(self, provider: str = "anthropic") -> None:
        super().__init__(provider, SSEDecoder())
        self._usage: _Usage | None = None
        self._stop_reason: str | None = None
        self._blocks = _Blocks()

    def item(self, sse: SSEEvent, out: list[StreamEvent]) -> None:
        if sse.event is not None and sse.event not in _KNOWN:
            return  # ping and event types added after this was written
        event = self.decode(_event, sse.data, out)
        if event is not None:
            self._event(event.type or sse.event, event, out)

    def _event(self, kind: str | None, event: _Event, out: list[StreamEvent]) -> None:
        if kind == "content_block_delta" and event.delta is not None:
            self._blocks.delta(event.index, event.delta, out)
        elif kind == "content_block_start" and event.content_block is not None:
            self._blocks.start(event.index, event.content_block, out)
        elif kind == "content_block_stop":
            self._blocks.stop(event.index, out)
        elif kind == "message_start" and event.message is not None:
            self._usage = event.message.usage
        elif kind == "message_delta":
            self._blocks.close(out)
            if event.delta is not None and event.delta.stop_reason:
                self._stop_reason = event.delta.stop_reason
            if event.usage is not None:
                self._usage = event.usage if self._usage is None else _merge(self._usage, event.usage)
        elif kind == "message_stop":
            self.ended = True
            self._blocks.close(out)
            self._blocks.state(out)
            if self._usage is not None:
                out.append(_usage(self._usage))
            out.append(Finish(finish_reason(self._stop_reason)))
        elif kind == "error":
            out.append(self.report(mid_stream_error(self.provider, event.error)))


def parse_completion(provider: str, body: bytes) -> Completion | Failure:
    try:
        doc = _completion.decode(body)
    except msgspec.DecodeError:
        return Failure(UpstreamProtocolError(f"{provider} sent a malformed completion"))
    blocks, events = _Blocks(), list[StreamEvent]()
    for index, block in enumerate(doc.content):
        blocks.start(index, block, events)
        blocks.stop(index, events)
    blocks.state(events)
    text = "".join(event.text for event in events if type(event) is TextDelta)
    parts = [event for event in events if type(event) is not TextDelta]
    usage = None if doc.usage is None else _usage(doc.usage)
    return Completion(text, finish_reason(doc.stop_reason), usage, parts)


# ---- request ----------------------------------------------------------------------------------


def thinking_budget(reasoning: Reasoning) -> int:
    """budget_tokens when given, else the effort's budget (medium when neither is)."""
    if reasoning.budget_tokens is not None:
        return reasoning.budget_tokens
    return THINKING_BUDGETS[reasoning.effort or "medium"]


def messages_payload(request: GenerationRequest, *, stream: bool) -> dict[str, Any]:
    options = request.options
    payload: dict[str, Any] = {
        "model": request.model,
        "max_tokens": _max_tokens(request),
        # Messages takes no system role: system prompts go in the top-level `system` field.
        "messages": _messages(request.messages),
    }
    if stream:
        payload["stream"] = True
    system = [m.text for m in request.messages if m.role == "system"]
    if isinstance(request.response_format, JsonFormat):
        system.append(JSON_INSTRUCTION)
    if system:
        payload["system"] = "\n\n".join(system)
    if options.temperature is not None:
        payload["temperature"] = options.temperature
    if options.top_p is not None:
        payload["top_p"] = options.top_p
    if options.stop is not None:
        payload["stop_sequences"] = [options.stop] if isinstance(options.stop, str) else options.stop
    payload.update(_parts_fields(request))
    return payload


def _max_tokens(request: GenerationRequest) -> int:
    if request.options.max_tokens is not None:
        return request.options.max_tokens
    if request.reasoning is None:
        return DEFAULT_MAX_TOKENS
    return thinking_budget(request.reasoning) + DEFAULT_MAX_TOKENS  # max_tokens counts the thinking


def _parts_fields(request: GenerationRequest) -> dict[str, Any]:
    """tools, tool_choice, thinking and output_config, for what the request asked."""
    fields: dict[str, Any] = {}
    if request.tools:
        fields["tools"] = [
            {"name": tool.name, "input_schema": tool.parameters or _NO_PARAMETERS}
            | ({} if tool.description is None else {"description": tool.description})
            for tool in request.tools
        ]
        if request.tool_choice is not None:
            fields["tool_choice"] = _tool_choice(request.tool_choice)
    if request.reasoning is not None:
        fields["thinking"] = {"type": "enabled", "budget_tokens": thinking_budget(request.reasoning)}
    if isinstance(request.response_format, JsonSchemaFormat):
        fields["output_config"] = {
            "format": {"type": "json_schema", "schema": request.response_format.schema}
        }
    return fields


def _tool_choice(choice: str | ToolChoiceName) -> dict[str, str]:
    if isinstance(choice, ToolChoiceName):
        return {"type": "tool", "name": choice.name}
    return {"type": "any" if choice == "required" else choice}


def _messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    results: list[dict[str, Any]] | None = None  # the user turn that collects consecutive tool results
    for message in messages:
        if message.role == "tool":
            if results is None:
                results = []
                turns.append({"role": "user", "content": results})
            results.append(_tool_result(message))
            continue
        results = None
        if message.role == "user":
            turns.append({"role": "user", "content": _user_content(message)})
        elif message.role == "assistant":
            turns.append({"role": "assistant", "content": _assistant_content(message)})
    return turns


def _user_content(message: ChatMessage) -> str | list[dict[str, Any]]:
    content = message.content
    if not isinstance(content, list) or not message.images:
        return message.text
    blocks: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, ImagePart):
            blocks.append({"type": "image", "source": _image_source(part.url)})
        elif part.text:  # the API refuses empty text blocks
            blocks.append({"type": "text", "text": part.text})
    return blocks


def _image_source(url: str) -> dict[str, str]:
    inline = split_data_url(url)
    if inline is None:
        return {"type": "url", "url": url}  # https: Anthropic fetches it, never the gateway
    media_type, data = inline
    return {"type": "base64", "media_type": media_type, "data": data}


def _assistant_content(message: ChatMessage) -> str | list[Any]:
    """Plain text, or the blocks of a turn that thought or called tools: its thinking blocks
    first, unchanged, as the API requires, then its text and its tool_use blocks."""
    replayed = replay_blocks(message.provider_state)
    if not replayed and not message.tool_calls:
        return message.text
    blocks: list[Any] = list(replayed)
    if message.text:
        blocks.append({"type": "text", "text": message.text})
    for call in message.tool_calls or ():
        arguments = {} if call.arguments is None else call.arguments  # invalid JSON was sent as null
        blocks.append({"type": "tool_use", "id": call.call_id, "name": call.name, "input": arguments})
    return blocks


def _tool_result(message: ChatMessage) -> dict[str, str]:
    result = {"type": "tool_result", "tool_use_id": message.tool_call_id or ""}
    if message.text:  # content is optional; an empty one is left out
        result["content"] = message.text
    return result


def unsupported(request: GenerationRequest) -> str | None:
    """What the Messages API is documented to refuse, said before the stream starts."""
    for message in request.messages:
        for call in message.tool_calls or ():
            if call.arguments is not None and not isinstance(call.arguments, dict):
                return f"tool call `{call.call_id}`: anthropic takes only a JSON object as `arguments`"
    return None if request.reasoning is None else _thinking_problem(request, request.reasoning)


def _thinking_problem(request: GenerationRequest, reasoning: Reasoning) -> str | None:
    budget = thinking_budget(reasoning)
    options = request.options
    if budget < MIN_THINKING_BUDGET:
        return f"`reasoning.budget_tokens` ({budget}) is below anthropic's smallest, {MIN_THINKING_BUDGET}"
    if options.max_tokens is not None and options.max_tokens <= budget:
        return (
            f"`options.max_tokens` ({options.max_tokens}) must exceed the thinking budget "
            f"({budget} tokens): anthropic counts the thinking in max_tokens"
        )
    if request.tool_choice == "required" or isinstance(request.tool_choice, ToolChoiceName):
        return "anthropic cannot force a tool (`tool_choice`) while thinking (`reasoning`)"
    if options.temperature is not None and options.temperature != 1:
        return "anthropic takes no `options.temperature` but 1 while thinking (`reasoning`)"
    if options.top_p is not None and options.top_p < 0.95:
        return "anthropic takes `options.top_p` only from 0.95 to 1 while thinking (`reasoning`)"
    return None


class AnthropicDialect(KeyedDialect):
    name = "anthropic"

    def unsupported(self, request: GenerationRequest) -> str | None:
        return unsupported(request)

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
