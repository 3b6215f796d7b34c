"""OpenAI Chat Completions: data-only SSE, ``data: [DONE]`` at the end, usage in a last chunk
with empty ``choices`` (asked for with ``stream_options.include_usage``). Tool calls stream as
``delta.tool_calls`` pieces keyed by ``index``; compatible servers add reasoning text as
``delta.reasoning_content`` or ``delta.reasoning``."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
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
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    UpstreamProtocolError,
    Usage,
)
from providers.dialect import HttpRequest, KeyedDialect
from providers.errors import describe_status, error_for_status, reported_status, retry_after
from providers.framing import SSEDecoder, SSEEvent
from providers.stream_parser import FramedStreamParser
from providers.tool_calls import ToolCallTracker

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"


class _Function(msgspec.Struct):
    name: str | None = None
    # A JSON string from OpenAI; some compatible servers send the object itself.
    arguments: str | dict[str, Any] | None = None


class _ToolCallPiece(msgspec.Struct):
    index: int | None = None  # Gemini's compatible endpoint sends none
    id: str | None = None
    function: _Function | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    refusal: str | None = None  # a safety refusal, instead of content
    reasoning_content: str | None = None  # DeepSeek, xAI, older vLLM
    reasoning: str | None = None  # current vLLM, OpenRouter, Groq
    tool_calls: list[_ToolCallPiece] | None = None


class _Choice(msgspec.Struct):
    index: int = 0
    delta: _Delta | None = None  # Azure's filter annotations have none
    finish_reason: str | None = None


class _PromptDetails(msgspec.Struct):
    cached_tokens: int | None = None


class _CompletionDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None
    prompt_cache_hit_tokens: int | None = None  # DeepSeek's own name for cached prompt tokens


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
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[_ToolCallPiece] | None = None


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
        payload["tools"] = [function_tool(tool) for tool in request.tools]
        if request.tool_choice is not None:
            payload["tool_choice"] = _tool_choice(request.tool_choice)
    if request.response_format is not None and (fmt := _response_format(request.response_format)):
        payload["response_format"] = fmt
    if request.reasoning is not None and (effort := reasoning_effort(request.reasoning)):
        payload["reasoning_effort"] = effort


def function_tool(tool: Tool) -> dict[str, Any]:
    """A tool in the Chat Completions shape (Ollama takes the same)."""
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


# ---- stream ----------------------------------------------------------------------------------


def mid_stream_error(provider: str, error: _Error) -> ProviderError:
    status = reported_status(error.code)
    if status is None:  # OpenAI's own shape: a type and a string code
        kind = f"{error.type or ''} {error.code or ''}"
        status = 429 if "rate_limit" in kind else 400 if "invalid_request" in kind else 500
    return error_for_status(provider, status, f"{provider} reported an error mid-stream: {error.message}")


def refused_finish(reason: str) -> str:
    """A refusal ends as ``content_filter``, as Anthropic's ``refusal`` does; ``length`` stays."""
    return reason if reason == "length" else "content_filter"


def _finish(reason: str) -> str:
    return "tool_calls" if reason == "function_call" else reason  # the legacy name of the same


def _usage(usage: _Usage) -> Usage:
    prompt, completion = usage.prompt_tokens_details, usage.completion_tokens_details
    cached = prompt.cached_tokens if prompt is not None else None
    return Usage(
        usage.prompt_tokens,
        usage.completion_tokens,
        reasoning_tokens=None if completion is None else completion.reasoning_tokens,
        cached_tokens=usage.prompt_cache_hit_tokens if cached is None else cached,
    )


def _arguments(function: _Function | None) -> str:
    arguments = None if function is None else function.arguments
    if arguments is None:
        return ""
    return arguments if type(arguments) is str else _json.encode(arguments).decode()


class _Waiting:
    """A call seen but not started: its name or (with no argument yet) its id is still to come."""

    __slots__ = ("call_id", "fragments", "name")

    def __init__(self) -> None:
        self.call_id: str | None = None
        self.name: str | None = None
        self.fragments: list[str] = []


class ToolCallPieces:
    """``tool_calls`` pieces into the tracker's events. A piece names its call by the provider's
    ``index`` (any number, interleaved with others), or only by ``id`` on servers that send no
    index; one with neither continues the latest call. ``id`` and name come once, usually on
    the first piece; a call starts once it has a name and either its id or a first argument
    fragment (a later id is then ignored: the call keeps the id the tracker made). A new id
    under an index already in use starts a new call."""

    def __init__(self) -> None:
        self.tracker = ToolCallTracker()
        self._waiting: dict[Hashable, _Waiting] = {}
        self._ids: dict[Hashable, str | None] = {}  # the provider's id of each started call
        self._keys_by_id: dict[str, Hashable] = {}
        self._latest: Hashable = None

    def piece(self, piece: _ToolCallPiece, out: list[StreamEvent]) -> None:
        key = self._key(piece)
        self._latest = key
        if piece.id:
            self._keys_by_id[piece.id] = key
        fragment = _arguments(piece.function)
        if self.tracker.is_open(key):
            if not piece.id or self._ids[key] in (None, piece.id):
                self.tracker.delta(key, fragment, out)
                return
            self.tracker.end(key, out)  # a new id under an index in use: a new call
        waiting = self._waiting.setdefault(key, _Waiting())
        waiting.call_id = piece.id or waiting.call_id
        waiting.name = (piece.function and piece.function.name) or waiting.name
        if fragment:
            waiting.fragments.append(fragment)
        if waiting.name and (waiting.call_id or waiting.fragments):
            self._start(key, out)

    def end_all(self, out: list[StreamEvent]) -> None:
        """The stream ended: start what still waits (a call without a name keeps an empty one),
        then end every call."""
        for key in list(self._waiting):
            self._start(key, out)
        self.tracker.end_all(out)

    def _key(self, piece: _ToolCallPiece) -> Hashable:
        if piece.index is not None:
            return piece.index
        if piece.id:
            return self._keys_by_id.get(piece.id, ("id", piece.id))
        return self._latest

    def _start(self, key: Hashable, out: list[StreamEvent]) -> None:
        waiting = self._waiting.pop(key)
        self._ids[key] = waiting.call_id
        self.tracker.start(key, waiting.call_id, waiting.name or "", out)
        self.tracker.delta(key, "".join(waiting.fragments), out)


class ChatStreamParser(FramedStreamParser[SSEEvent]):
    """The Chat Completions chunk stream (OpenAI, Azure OpenAI and compatible servers). Tool
    calls end at ``[DONE]``, not at the finish chunk: Azure's filter annotations and
    OpenRouter's second finish chunk come after it, and a buffer that parses may still grow."""

    end_signal = "[DONE]"

    def __init__(self, provider: str) -> None:
        super().__init__(provider, SSEDecoder())
        self._finish: str | None = None
        self._refused = False
        self._calls = ToolCallPieces()

    def item(self, sse: SSEEvent, out: list[StreamEvent]) -> None:
        if sse.data.startswith(b"[DONE]"):
            self.ended = True
            self._calls.end_all(out)
            if self._finish is not None:
                out.append(Finish(refused_finish(self._finish) if self._refused else self._finish))
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
            if choice.delta is not None:
                self._delta(choice.delta, out)
            if choice.finish_reason:
                self._finish = _finish(choice.finish_reason)
        if chunk.usage is not None:
            out.append(_usage(chunk.usage))

    def _delta(self, delta: _Delta, out: list[StreamEvent]) -> None:
        # Reasoning first: it precedes the content it led to when a server sends both at once.
        if reasoning := delta.reasoning_content or delta.reasoning:
            out.append(ReasoningDelta(reasoning))
        if delta.content:
            out.append(TextDelta(delta.content))
        if delta.refusal:  # the model's words, so the answer's text; the finish says it refused
            self._refused = True
            out.append(TextDelta(delta.refusal))
        for piece in delta.tool_calls or ():
            self._calls.piece(piece, out)


def parse_completion(provider: str, body: bytes) -> Completion | Failure:
    try:
        doc = _completion.decode(body)
    except msgspec.DecodeError:
        return Failure(UpstreamProtocolError(f"{provider} sent a malformed completion"))
    if not doc.choices:
        return Failure(UpstreamProtocolError(f"{provider} sent a completion without choices"))
    choice = doc.choices[0]
    message = choice.message
    parts: list[StreamEvent] = []
    if reasoning := message.reasoning_content or message.reasoning:
        parts.append(ReasoningDelta(reasoning))
    tracker = ToolCallTracker()
    for i, call in enumerate(message.tool_calls or ()):
        name = (call.function and call.function.name) or ""
        tracker.whole(i, call.id, name, _arguments(call.function), parts)
    usage = None if doc.usage is None else _usage(doc.usage)
    finish = _finish(choice.finish_reason or "stop")
    if message.refusal:
        return Completion(message.refusal, refused_finish(finish), usage, parts)
    return Completion(message.content or "", finish, usage, parts)


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
