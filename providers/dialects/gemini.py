"""Google Gemini (Generative Language API): ``:streamGenerateContent?alt=sse`` is data-only SSE
with CRLF framing and no sentinel. EOF is the end; ``finishReason`` may repeat on every chunk
(older models), and ``usageMetadata`` is cumulative, so both are remembered and emitted at EOF.

Function calls arrive whole, usually without an id. Thought signatures ride on the parts they
sign and must go back on the same parts next turn: the turn's ``provider_state`` records which
(docs/providers-typed-parts.md, "Gemini")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

import msgspec

from protocol.messages import (
    ChatMessage,
    JsonFormat,
    JsonSchemaFormat,
    TextPart,
    Tool,
    ToolChoice,
    ToolChoiceName,
)
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
    UpstreamAuthError,
    UpstreamProtocolError,
    Usage,
)
from providers.dialect import HttpRequest, KeyedDialect
from providers.dialects import bytes_only
from providers.dialects.bytes_only import call_names
from providers.errors import describe_status, error_for_status, reported_status, retry_after
from providers.framing import SSEDecoder, SSEEvent
from providers.stream_parser import FramedStreamParser
from providers.tool_calls import ToolCallTracker, new_call_id, parse_arguments

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_MODEL = "gemini-2.5-flash"
PROVIDER = "gemini"

_FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"}
_FILTERED |= {"IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"}


class _FunctionCall(msgspec.Struct):
    name: str | None = None  # absent only on Vertex's streamed-argument pieces, never asked for
    args: Any = None  # an object; absent for a call without arguments
    id: str | None = None  # the Gemini API has not been seen to send one


class _Part(msgspec.Struct, rename="camel"):
    text: str | None = None  # absent on functionCall / thoughtSignature-only parts
    thought: bool | None = None
    function_call: _FunctionCall | None = None
    thought_signature: str | None = None


class _Content(msgspec.Struct):
    parts: list[_Part] | None = None


class _Candidate(msgspec.Struct, rename="camel"):
    content: _Content | None = None  # absent when a content filter blocks the output
    finish_reason: str | None = None
    index: int = 0


class _UsageMetadata(msgspec.Struct, rename="camel"):
    prompt_token_count: int = 0
    candidates_token_count: int = 0  # absent until the model produced output
    thoughts_token_count: int | None = None  # not part of candidatesTokenCount
    cached_content_token_count: int | None = None  # part of promptTokenCount


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
    thoughts = meta.thoughts_token_count
    return Usage(
        meta.prompt_token_count,
        meta.candidates_token_count + (thoughts or 0),
        reasoning_tokens=thoughts,
        cached_tokens=meta.cached_content_token_count,
    )


# ---- provider state --------------------------------------------------------------------------


class _SignedThought(msgspec.Struct, frozen=True):
    text: str
    signature: str


class _State(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a turn must send back on its parts: ``{"provider": "gemini", ...}``. The required
    tag makes another provider's state fail to decode, so it is ignored like garbage."""

    provider: Literal["gemini"]
    text: str | None = None  # the signature on the answer text (or on an empty trailing part)
    calls: dict[str, str] = msgspec.field(default_factory=dict)  # call_id -> its part's signature
    thoughts: list[_SignedThought] = msgspec.field(default_factory=list)  # signed thought parts
    ids: list[str] = msgspec.field(default_factory=list)  # call ids Gemini itself gave


_state_decoder = msgspec.json.Decoder(_State)
_NO_STATE = _State(provider="gemini")  # compared with, never changed
_json = msgspec.json.Encoder()


def read_state(data: str | None) -> _State:
    """A turn's state from an assistant message; empty when absent, foreign or garbage."""
    if data:
        try:
            return _state_decoder.decode(data)
        except (msgspec.DecodeError, UnicodeEncodeError):  # lone surrogates cannot be encoded
            pass
    return _NO_STATE


class _Turn:
    """A model turn's parts as they arrive: their events, numbered calls, and the signatures
    and call ids that its provider state keeps."""

    def __init__(self) -> None:
        self.calls = ToolCallTracker()
        self.state = _State(provider="gemini")

    def part(self, part: _Part, out: list[StreamEvent]) -> None:
        call = part.function_call
        if call is not None:
            self._call(call, part.thought_signature, out)
            return
        text, signature = part.text or "", part.thought_signature
        if text:
            out.append(ReasoningDelta(text) if part.thought else TextDelta(text))
        if signature and part.thought:
            self.state.thoughts.append(_SignedThought(text, signature))
        elif signature:
            self.state.text = signature

    def _call(self, call: _FunctionCall, signature: str | None, out: list[StreamEvent]) -> None:
        if not call.name:
            return
        call_id = call.id or new_call_id()
        arguments = _json.encode({} if call.args is None else call.args).decode()
        self.calls.whole(self.calls.count, call_id, call.name, arguments, out)
        if call.id:
            self.state.ids.append(call_id)
        if signature:
            self.state.calls[call_id] = signature

    def finish(self, reason: str) -> str:
        """A stop after calls is ``tool_calls``: Gemini has no finish reason of its own for them."""
        finish = finish_reason(reason)
        return "tool_calls" if finish == "stop" and self.calls.count else finish

    def provider_state(self) -> list[StreamEvent]:
        """The turn's ProviderState, when a part carried a signature or a call an id."""
        return [] if self.state == _NO_STATE else [ProviderState(_json.encode(self.state).decode())]


def _parts(candidate: _Candidate) -> list[_Part]:
    return (candidate.content.parts if candidate.content else None) or []


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
        self._turn = _Turn()

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
        if self._finish is None:  # the prompt was blocked
            return [*usage, Finish("content_filter")]
        return [*usage, *self._turn.provider_state(), Finish(self._turn.finish(self._finish))]

    def _response(self, response: _Response, out: list[StreamEvent]) -> None:
        candidate = _first_candidate(response)
        if candidate is not None:
            for part in _parts(candidate):
                self._turn.part(part, out)
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
    turn, events = _Turn(), list[StreamEvent]()
    for part in _parts(candidate):
        turn.part(part, events)
    events.extend(turn.provider_state())
    text = "".join(e.text for e in events if type(e) is TextDelta)
    parts = [e for e in events if type(e) is not TextDelta]
    return Completion(text, turn.finish(candidate.finish_reason or "STOP"), usage, parts)


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
    because some models refuse a conversation whose roles do not alternate: tool results, which
    go in user turns, become one turn."""
    system = [m.text for m in messages if m.role == "system"]
    names = call_names(messages)
    given_ids: set[str] = set()  # the call ids Gemini gave, to be returned with the results
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "assistant":
            state = read_state(message.provider_state)
            given_ids.update(state.ids)
            role, parts = "model", _model_parts(message, state)
        elif message.role == "tool":
            role, parts = "user", [_function_response(message, names, given_ids)]
        else:
            role, parts = "user", _user_parts(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["parts"].extend(parts)
        else:
            turns.append({"role": role, "parts": parts})
    return turns, "\n\n".join(system) if system else None


def _user_parts(message: ChatMessage) -> list[dict[str, Any]]:
    """Text and images in their order; an image as inline bytes (``unsupported`` refused URLs)."""
    content = message.content
    if not isinstance(content, list):
        return [{"text": message.text}]
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            parts.append({"text": part.text})
        elif (inline := split_data_url(part.url)) is not None:
            parts.append({"inlineData": {"mimeType": inline[0], "data": inline[1]}})
    return parts or [{"text": ""}]


def _signed(part: dict[str, Any], signature: str | None) -> dict[str, Any]:
    return part if signature is None else {**part, "thoughtSignature": signature}


def _model_parts(message: ChatMessage, state: _State) -> list[dict[str, Any]]:
    """The model turn as Gemini sent it, as far as it matters: the signed thought parts, the
    text, then the calls, each signature on the part it came on."""
    parts = [{"text": t.text, "thought": True, "thoughtSignature": t.signature} for t in state.thoughts]
    if message.text or state.text:
        parts.append(_signed({"text": message.text}, state.text))
    for call in message.tool_calls or ():
        function_call: dict[str, Any] = {"name": call.name}
        if call.call_id in state.ids:
            function_call["id"] = call.call_id
        if isinstance(call.arguments, dict):  # a call with invalid arguments goes back without
            function_call["args"] = call.arguments
        parts.append(_signed({"functionCall": function_call}, state.calls.get(call.call_id)))
    return parts or [{"text": ""}]


def _function_response(message: ChatMessage, names: dict[str, str], given_ids: set[str]) -> dict[str, Any]:
    """The result as an object: the content itself when it is a JSON object, else under
    ``output``, the key Gemini documents for a function's output."""
    content = message.text
    value, error = parse_arguments(content)
    response = value if error is None and content.strip() else {"output": content}
    call_id = message.tool_call_id or ""
    function_response: dict[str, Any] = {"name": names[call_id], "response": response}
    if call_id in given_ids:
        function_response["id"] = call_id
    return {"functionResponse": function_response}


_CONFIG = {
    "temperature": "temperature",
    "top_p": "topP",
    "max_tokens": "maxOutputTokens",
    "stop": "stopSequences",
}
# Google's own mapping of an effort to a thinking budget (its OpenAI-compatible endpoint's).
EFFORT_BUDGETS = {"low": 1024, "medium": 8192, "high": 24576}


def generation_config(request: GenerationRequest) -> dict[str, Any]:
    """Only the options that are set (a single stop string becomes a one-item list), thinking
    and the response format."""
    config: dict[str, Any] = {}
    for name, field in _CONFIG.items():
        value = getattr(request.options, name)
        if value is not None:
            config[field] = [value] if isinstance(value, str) else value
    if (reasoning := request.reasoning) is not None:
        thinking: dict[str, Any] = {"includeThoughts": True}
        budget = reasoning.budget_tokens or (EFFORT_BUDGETS[reasoning.effort] if reasoning.effort else None)
        if budget is not None:
            thinking["thinkingBudget"] = budget
        config["thinkingConfig"] = thinking
    response_format = request.response_format
    if isinstance(response_format, JsonFormat | JsonSchemaFormat):
        config["responseMimeType"] = "application/json"
    if isinstance(response_format, JsonSchemaFormat):
        config["responseJsonSchema"] = response_format.schema
    return config


def _declaration(tool: Tool) -> dict[str, Any]:
    # parametersJsonSchema takes JSON Schema as it is; `parameters` only an OpenAPI subset.
    declaration: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        declaration["description"] = tool.description
    if tool.parameters is not None:
        declaration["parametersJsonSchema"] = tool.parameters
    return declaration


def _calling_config(choice: ToolChoice) -> dict[str, Any]:
    if isinstance(choice, ToolChoiceName):
        return {"mode": "ANY", "allowedFunctionNames": [choice.name]}
    return {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice]}


def tool_fields(request: GenerationRequest) -> dict[str, Any]:
    """``tools`` and ``toolConfig``; nothing without tools."""
    if not request.tools:
        return {}
    fields: dict[str, Any] = {"tools": [{"functionDeclarations": [_declaration(t) for t in request.tools]}]}
    if request.tool_choice is not None:
        fields["toolConfig"] = {"functionCallingConfig": _calling_config(request.tool_choice)}
    return fields


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
        payload.update(tool_fields(request))
        config = generation_config(request)
        if config:
            payload["generationConfig"] = config
        # The key goes in a header, never the URL (URLs end up in logs).
        return HttpRequest.json(url, {"x-goog-api-key": self.settings.api_key or ""}, payload)

    def unsupported(self, request: GenerationRequest) -> str | None:
        return bytes_only.unsupported(request, PROVIDER)

    def parser(self) -> GeminiStreamParser:
        return GeminiStreamParser()

    def completion(self, body: bytes) -> Completion | Failure:
        return parse_completion(body)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return status_error(status, headers, body)
