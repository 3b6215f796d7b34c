"""The OpenAI-compatible API's wire format: the ``POST /v1/chat/completions`` body, the
``chat.completion`` and ``chat.completion.chunk`` objects, ``/v1/models`` lists and OpenAI's error
shape. Pure, like the rest of ``protocol/``: a request becomes the gateway's ``StreamRequest``
(tools, formats, reasoning, images and tool turns included, checked by the same
``request_problem`` with OpenAI's field names), and the streaming encoder is one more encoder over
the same events every other transport reads, v1.1 parts included.

What the official SDKs parse (openai-python ``_streaming.py``, openai-node ``core/streaming``):
``data: <json>`` events with no ``event:`` line, ending with ``data: [DONE]``; a ``data:`` object
with an ``error`` member mid-stream makes them raise ``APIError``; an HTTP error status with
``{"error": {message, type, code, param}}`` maps to an exception class by status.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from protocol.codec import UNREADABLE, describe, request_problem
from protocol.errors import HTTP_STATUS, ErrorCode
from protocol.messages import (
    MAX_PROVIDER_STATE,
    MAX_TOOL_CALLS_IN,
    MAX_TOOLS,
    CallId,
    ChatMessage,
    Chunk,
    Done,
    Error,
    ImagePart,
    JsonFormat,
    JsonObject,
    JsonSchemaFormat,
    Options,
    Reasoning,
    ReasoningChunk,
    ResponseFormat,
    ServerMessage,
    StartAck,
    StreamRequest,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolChoice,
    ToolChoiceName,
    ToolName,
)
from protocol.structured import parse_arguments

# ---- the request -----------------------------------------------------------------------------


class ImageUrl(msgspec.Struct, frozen=True):
    url: str
    detail: Literal["auto", "low", "high"] | None = None  # accepted; providers use their default


class ContentPart(msgspec.Struct, frozen=True):
    """One part of an array ``content``: ``text``, or ``image_url`` (in user messages)."""

    type: str
    text: str | None = None
    image_url: ImageUrl | None = None


class FunctionCall(msgspec.Struct, frozen=True):
    name: ToolName
    arguments: str  # JSON text, as the model wrote it


class InputToolCall(msgspec.Struct, frozen=True):
    id: CallId
    function: FunctionCall
    type: Literal["function"] = "function"


class InputMessage(msgspec.Struct, frozen=True):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | Annotated[list[ContentPart], Meta(max_length=1000)] | None = None
    tool_calls: Annotated[list[InputToolCall], Meta(max_length=MAX_TOOL_CALLS_IN)] | None = None
    tool_call_id: CallId | None = None
    # tokenwire's extension: the opaque state of the turn's answer, passed back unchanged.
    provider_state: Annotated[str, Meta(max_length=MAX_PROVIDER_STATE)] | None = None


class FunctionDefinition(msgspec.Struct, frozen=True):
    name: ToolName
    description: Annotated[str, Meta(max_length=8192)] | None = None
    parameters: JsonObject | None = None
    strict: bool | None = None  # accepted, not enforced (docs/openai-compat.md)


class InputTool(msgspec.Struct, frozen=True):
    type: Literal["function"]
    function: FunctionDefinition


class FunctionName(msgspec.Struct, frozen=True):
    name: ToolName


class NamedToolChoice(msgspec.Struct, frozen=True):
    type: Literal["function"]
    function: FunctionName


class TextResponseFormat(msgspec.Struct, tag="text", tag_field="type", frozen=True):
    pass


class JsonObjectResponseFormat(msgspec.Struct, tag="json_object", tag_field="type", frozen=True):
    pass


class JsonSchemaSpec(msgspec.Struct, frozen=True):
    name: ToolName
    schema: JsonObject
    description: str | None = None  # accepted; not passed on
    strict: bool | None = None


class JsonSchemaResponseFormat(msgspec.Struct, tag="json_schema", tag_field="type", frozen=True):
    json_schema: JsonSchemaSpec


InputResponseFormat = TextResponseFormat | JsonObjectResponseFormat | JsonSchemaResponseFormat
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
# The gateway's three efforts: `minimal` is its `low`, `xhigh` its `high`; `none` is refused.
EFFORTS: dict[str, Literal["low", "medium", "high"]] = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
}


class StreamOptions(msgspec.Struct, frozen=True):
    include_usage: bool | None = None


class ChatCompletionRequest(msgspec.Struct, frozen=True, kw_only=True):
    """The body of ``POST /v1/chat/completions``. Unknown fields (``seed``, ``user``, ...) are
    ignored; the option ranges are the gateway's own."""

    model: Annotated[str, Meta(min_length=1, max_length=257)]  # "provider/model", 128 + 1 + 128
    messages: Annotated[list[InputMessage], Meta(min_length=1, max_length=1000)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None
    max_completion_tokens: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    stop: Annotated[str, Meta(max_length=256)] | Annotated[list[str], Meta(max_length=16)] | None = None
    n: int | None = None
    tools: Annotated[list[InputTool], Meta(max_length=MAX_TOOLS)] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None  # accepted, not enforced (docs/openai-compat.md)
    response_format: InputResponseFormat | None = None
    reasoning_effort: ReasoningEffort | None = None
    reasoning: Reasoning | None = None  # tokenwire's extension: the gateway's own `reasoning`
    # The deprecated function calling, refused: `tools` replaces it.
    functions: object = None
    function_call: object = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)

    def options(self) -> Options | None:
        """The generation options set; ``max_completion_tokens`` wins over ``max_tokens``."""
        max_tokens = self.max_completion_tokens or self.max_tokens
        fields = (self.temperature, max_tokens, self.top_p, self.stop)
        if all(value is None for value in fields):
            return None
        return Options(temperature=self.temperature, max_tokens=max_tokens, top_p=self.top_p, stop=self.stop)


class Problem(msgspec.Struct, frozen=True):
    """A request refused with 400 ``invalid_request_error``; ``param`` names the field."""

    message: str
    param: str | None = None


_request_decoder = msgspec.json.Decoder(ChatCompletionRequest)
_PATH = re.compile(r" - at `\$\.?(.*)`$")
_MISSING = re.compile(r"missing required field `([^`]*)`")


def decode_chat_request(data: bytes) -> ChatCompletionRequest | Problem:
    """Decode and check a request body; never raises."""
    try:
        request = _request_decoder.decode(data)
    except (msgspec.ValidationError, *UNREADABLE) as exc:
        return Problem(*decode_problem(exc))
    return (
        _fields_problem(request)
        or _content_problem(request.messages)
        or tool_turn_problem(chat_messages(request))
        or request
    )


def decode_problem(exc: Exception) -> tuple[str, str | None]:
    """The message and the field at fault (as ``a.b[0].c``) of a body that did not decode."""
    if not isinstance(exc, msgspec.ValidationError):
        return f"We could not parse the JSON body of your request: {describe(exc)}", None
    text = str(exc)
    at = _PATH.search(text)
    missing = _MISSING.search(text)
    param = at[1] if at else None
    if missing:
        param = f"{param}.{missing[1]}" if param else missing[1]
    return text, param or None


def _fields_problem(request: ChatCompletionRequest) -> Problem | None:
    if request.n is not None and request.n != 1:
        return Problem("only `n: 1` is supported: the gateway returns one choice", "n")
    for legacy in ("functions", "function_call"):
        if getattr(request, legacy) is not None:
            return Problem(f"`{legacy}` (deprecated function calling) is not supported: use `tools`", legacy)
    if request.reasoning_effort == "none":
        why = "`reasoning_effort: none` is not supported: leave it out for the model's default"
        return Problem(why, "reasoning_effort")
    if request.reasoning_effort is not None and request.reasoning and request.reasoning.effort:
        return Problem("give the effort once: `reasoning_effort` or `reasoning.effort`", "reasoning_effort")
    return None


def _content_problem(messages: list[InputMessage]) -> Problem | None:
    for i, message in enumerate(messages):
        if isinstance(message.content, list):
            for j, part in enumerate(message.content):
                if (why := _part_problem(part)) is not None:
                    return Problem(why, f"messages[{i}].content[{j}]")
        elif message.content is None and message.role != "assistant":
            return Problem(f"a `{message.role}` message needs `content`", f"messages[{i}].content")
    return None


def _part_problem(part: ContentPart) -> str | None:
    if part.type not in ("text", "image_url"):
        return f"content part type `{part.type}` is not supported (only `text` and `image_url`)"
    if getattr(part, part.type) is None:
        return f"a part of type `{part.type}` needs the field `{part.type}`"
    return None


def tool_turn_problem(messages: list[ChatMessage]) -> Problem | None:
    """OpenAI's rule for tool turns: the ``tool`` messages right after an assistant message with
    ``tool_calls`` answer each of its calls, and nothing else."""
    asked_at: int | None = None  # the assistant message whose calls the tool messages answer
    unanswered: dict[str, None] = {}  # its calls still owed a result, in order
    for i, message in enumerate(messages):
        if message.role != "tool":
            if unanswered:
                break
            calls = message.tool_calls if message.role == "assistant" else None
            asked_at = i if calls else None
            unanswered = dict.fromkeys(call.call_id for call in calls or ())
            continue
        call_id = message.tool_call_id
        if asked_at is None:
            why = "a `tool` message must answer a call of the assistant message with `tool_calls` before it"
            return Problem(why, f"messages[{i}].role")
        if call_id is None:
            return Problem("a `tool` message needs `tool_call_id`", f"messages[{i}].tool_call_id")
        if call_id not in unanswered:
            why = f"`tool_call_id` `{call_id}` names no unanswered call of messages[{asked_at}]"
            return Problem(why, f"messages[{i}].tool_call_id")
        del unanswered[call_id]
    if unanswered:
        ids = ", ".join(unanswered)
        why = f"each tool call needs a `tool` message right after its assistant message; none for: {ids}"
        return Problem(why, f"messages[{asked_at}].tool_calls")
    return None


def stream_request(
    chat: ChatCompletionRequest, *, id: str, provider: str | None, model: str | None, agent: str | None
) -> StreamRequest | Problem:
    """The gateway's request for a checked chat completion request, or why the gateway refuses it
    (``request_problem``, its path named as the OpenAI field)."""
    tools = [_tool(tool.function) for tool in chat.tools or ()]
    request = StreamRequest(
        id=id,
        provider=provider,
        model=model,
        agent=agent,
        messages=chat_messages(chat),
        options=chat.options(),
        tools=tools or None,  # an empty list asks for nothing
        tool_choice=_tool_choice(chat.tool_choice),
        response_format=_response_format(chat.response_format),
        reasoning=_reasoning(chat),
    )
    problem = request_problem(request)
    return request if problem is None else gateway_problem(problem)


def gateway_problem(problem: str) -> Problem:
    """A ``request_problem`` as OpenAI's: its ``$.path`` suffix becomes the field, named as OpenAI's."""
    at = _PATH.search(problem)
    if at is None:
        return Problem(problem)
    return Problem(problem[: at.start()], openai_param(at[1]))


# Where a field of the gateway's request comes from in OpenAI's.
_OPENAI_PATHS = (
    (re.compile(r"\Atools\[(\d+)\]\.(name|parameters)\Z"), r"tools[\1].function.\2"),
    (re.compile(r"\Atool_choice\.name\Z"), "tool_choice.function.name"),
    (re.compile(r"\Aresponse_format\.schema\Z"), "response_format.json_schema.schema"),
    (re.compile(r"\A(messages\[\d+\]\.content\[\d+\])\.url\Z"), r"\1.image_url.url"),
)


def openai_param(path: str) -> str:
    for pattern, replacement in _OPENAI_PATHS:
        path = pattern.sub(replacement, path)
    return path


def chat_messages(request: ChatCompletionRequest) -> list[ChatMessage]:
    """The request's messages as the gateway's, one for one: ``developer`` is ``system``; array
    content is its text parts joined by newlines unless it has images (then the parts, in order);
    an assistant message without content or calls is empty text."""
    return [_message(message) for message in request.messages]


def _message(message: InputMessage) -> ChatMessage:
    content = _content(message.content)
    calls = [_call(call) for call in message.tool_calls] if message.tool_calls else None
    if content is None and calls is None:
        content = ""
    role = "system" if message.role == "developer" else message.role
    return ChatMessage(
        role=role,
        content=content,
        tool_calls=calls,
        provider_state=message.provider_state,
        tool_call_id=message.tool_call_id,
    )


def _content(content: str | list[ContentPart] | None) -> str | list[TextPart | ImagePart] | None:
    if not isinstance(content, list):
        return content
    if all(part.image_url is None for part in content):
        return "\n".join(part.text or "" for part in content)
    return [
        ImagePart(part.image_url.url) if part.image_url is not None else TextPart(part.text or "")
        for part in content
    ]


def _call(call: InputToolCall) -> ToolCall:
    """A call passed back; arguments that are not a JSON object make it a failed call, as the
    gateway's own ``done`` reports one (``arguments`` null, with ``arguments_error``)."""
    arguments, error = parse_arguments(call.function.arguments)
    return ToolCall(call_id=call.id, name=call.function.name, arguments=arguments, arguments_error=error)


def _tool(function: FunctionDefinition) -> Tool:
    return Tool(name=function.name, description=function.description, parameters=function.parameters)


def _tool_choice(choice: Literal["auto", "none", "required"] | NamedToolChoice | None) -> ToolChoice | None:
    if isinstance(choice, NamedToolChoice):
        return ToolChoiceName(choice.function.name)
    return choice


def _response_format(response_format: InputResponseFormat | None) -> ResponseFormat | None:
    if isinstance(response_format, JsonObjectResponseFormat):
        return JsonFormat()
    if isinstance(response_format, JsonSchemaResponseFormat):
        spec = response_format.json_schema
        return JsonSchemaFormat(name=spec.name, schema=spec.schema, strict=spec.strict)
    return None  # text, the default


def _reasoning(chat: ChatCompletionRequest) -> Reasoning | None:
    effort = chat.reasoning_effort
    if effort is None:
        return chat.reasoning
    budget = chat.reasoning.budget_tokens if chat.reasoning else None
    return Reasoning(effort=EFFORTS[effort], budget_tokens=budget)


# ---- responses -------------------------------------------------------------------------------

FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "function_call"]
_FINISH_REASONS: frozenset[str] = frozenset(
    {"stop", "length", "content_filter", "tool_calls", "function_call"}
)


def finish_reason(gateway_reason: str) -> str:
    """OpenAI's ``finish_reason`` for a gateway one: its own values pass, the rest (``cancelled``,
    a provider's unmapped reason) are ``stop``."""
    return gateway_reason if gateway_reason in _FINISH_REASONS else "stop"


class PromptTokensDetails(msgspec.Struct, frozen=True):
    cached_tokens: int


class CompletionTokensDetails(msgspec.Struct, frozen=True):
    reasoning_tokens: int


class CompletionUsage(msgspec.Struct, frozen=True, kw_only=True):
    """The details are there when the provider reported them (as ``done.usage``'s)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | UnsetType = UNSET
    completion_tokens_details: CompletionTokensDetails | UnsetType = UNSET


def _usage(done: Done) -> CompletionUsage:
    u = done.usage
    return CompletionUsage(
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        total_tokens=u.total_tokens,
        prompt_tokens_details=UNSET if u.cached_tokens is None else PromptTokensDetails(u.cached_tokens),
        completion_tokens_details=(
            UNSET if u.reasoning_tokens is None else CompletionTokensDetails(u.reasoning_tokens)
        ),
    )


class FunctionDelta(msgspec.Struct, frozen=True):
    name: str | UnsetType = UNSET
    arguments: str = ""


class ToolCallFragment(msgspec.Struct, frozen=True, kw_only=True):
    """A ``delta.tool_calls`` entry: the first of a call has its id, type and name."""

    index: int
    id: str | UnsetType = UNSET
    type: Literal["function"] | UnsetType = UNSET
    function: FunctionDelta


class Delta(msgspec.Struct, frozen=True, kw_only=True):
    role: Literal["assistant"] | UnsetType = UNSET
    content: str | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET
    tool_calls: list[ToolCallFragment] | UnsetType = UNSET
    provider_state: str | UnsetType = UNSET  # tokenwire's extension


class ChunkChoice(msgspec.Struct, frozen=True, kw_only=True):
    index: int = 0
    delta: Delta
    logprobs: None = None
    finish_reason: str | None = None


# Fields in the order OpenAI sends them.
class ChatCompletionChunk(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: None = None
    choices: list[ChunkChoice]
    usage: CompletionUsage | UnsetType | None = UNSET  # present (null until the last) with include_usage


class Function(msgspec.Struct, frozen=True):
    name: str
    arguments: str


class MessageToolCall(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: Literal["function"] = "function"
    function: Function


class AssistantMessage(msgspec.Struct, frozen=True, kw_only=True):
    """``reasoning_content`` is there when the request asked for reasoning, ``tool_calls`` when
    the model made calls, ``provider_state`` when the provider needs it back next turn."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    reasoning_content: str | UnsetType = UNSET
    refusal: None = None
    tool_calls: list[MessageToolCall] | UnsetType = UNSET
    provider_state: str | UnsetType = UNSET


class Choice(msgspec.Struct, frozen=True, kw_only=True):
    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: str


class ChatCompletion(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: None = None
    choices: list[Choice]
    usage: CompletionUsage


_encoder = msgspec.json.Encoder()
DONE_LINE = b"data: [DONE]\n\n"
NO_ARGUMENTS = "{}"  # the arguments of a call that streamed no text (the gateway parses it as {})


def _data(value: msgspec.Struct) -> bytes:
    return b"data: " + _encoder.encode(value) + b"\n\n"


def completion_json(
    done: Done, events: Iterable[object], completion_id: str, created: int, model: str
) -> bytes:
    """A finished stream as one ``chat.completion`` object; ``events`` are the stream's log, whose
    tool-call fragments make each call's ``arguments``: the model's text, as OpenAI returns it."""
    calls = _calls(events) if done.tool_calls else []  # the log is read only when there are calls
    content = done.content if done.content or not calls else None
    message = AssistantMessage(
        content=content,
        reasoning_content=UNSET if done.reasoning is None else done.reasoning,
        tool_calls=calls or UNSET,
        provider_state=done.provider_state or UNSET,
    )
    choice = Choice(message=message, finish_reason=finish_reason(done.finish_reason))
    completion = ChatCompletion(
        id=completion_id, created=created, model=model, choices=[choice], usage=_usage(done)
    )
    return _encoder.encode(completion)


def _calls(events: Iterable[object]) -> list[MessageToolCall]:
    names: dict[str, str] = {}  # by call id, in the order the calls started
    arguments: dict[str, list[str]] = {}
    for event in events:
        if type(event) is ToolCallStart:
            names[event.call_id] = event.name
            arguments[event.call_id] = []
        elif type(event) is ToolCallDelta:
            arguments[event.call_id].append(event.arguments_delta)
    return [
        MessageToolCall(id=call_id, function=Function(name, "".join(arguments[call_id]) or NO_ARGUMENTS))
        for call_id, name in names.items()
    ]


class ChunkEncoder:
    """Protocol events -> ``chat.completion.chunk`` SSE data lines: the ack becomes the ``role``
    chunk, each chunk a content delta, reasoning a ``reasoning_content`` delta, a tool call its
    ``tool_calls`` fragments (OpenAI's: index, id, type and name first, then argument pieces);
    ``done`` the ``finish_reason`` chunk (then the usage chunk, with ``include_usage``) and
    ``[DONE]``; an ``error`` becomes OpenAI's mid-stream error line, which ends the stream (no
    ``[DONE]``, as OpenAI does)."""

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        self.id, self.created, self.model = completion_id, created, model
        self.usage: CompletionUsage | UnsetType | None = None if include_usage else UNSET
        self.indexes: dict[str, int] = {}  # each call's OpenAI index, by call id
        self.silent: set[str] = set()  # calls no argument text has been sent for yet

    def __call__(self, message: ServerMessage) -> bytes:
        if type(message) is Chunk:
            return self._chunk(Delta(content=message.content))
        if type(message) is ToolCallDelta or type(message) is ToolCallStart or type(message) is ToolCallEnd:
            return self._tool_call(message)
        if type(message) is ReasoningChunk:
            return self._chunk(Delta(reasoning_content=message.content))
        if type(message) is StartAck:
            return self._chunk(Delta(role="assistant", content=""))
        if type(message) is Done:
            return self._end(message)
        if type(message) is Error:
            return _data(ErrorBody(error_for(message.code, message.message)))
        return b""  # notices (retry, failover) are not part of OpenAI's stream

    def _tool_call(self, message: ToolCallStart | ToolCallDelta | ToolCallEnd) -> bytes:
        if type(message) is ToolCallStart:
            self.indexes[message.call_id] = message.index
            self.silent.add(message.call_id)
            function = FunctionDelta(name=message.name)
            fragment = ToolCallFragment(
                index=message.index, id=message.call_id, type="function", function=function
            )
            return self._chunk(Delta(tool_calls=[fragment]))
        if type(message) is ToolCallDelta:
            if not message.arguments_delta:
                return b""
            self.silent.discard(message.call_id)
            return self._arguments(message.call_id, message.arguments_delta)
        if message.call_id in self.silent:  # its end: a call without argument text has `{}`
            self.silent.discard(message.call_id)
            return self._arguments(message.call_id, NO_ARGUMENTS)
        return b""

    def _arguments(self, call_id: str, text: str) -> bytes:
        fragment = ToolCallFragment(index=self.indexes[call_id], function=FunctionDelta(arguments=text))
        return self._chunk(Delta(tool_calls=[fragment]))

    def _end(self, done: Done) -> bytes:
        end = b""
        if done.provider_state is not None:
            end += self._chunk(Delta(provider_state=done.provider_state))
        end += self._chunk(Delta(), finish_reason(done.finish_reason))
        if self.usage is None:
            end += self._envelope([], _usage(done))
        return end + DONE_LINE

    def _chunk(self, delta: Delta, finish: str | None = None) -> bytes:
        return self._envelope([ChunkChoice(delta=delta, finish_reason=finish)], self.usage)

    def _envelope(self, choices: list[ChunkChoice], usage: CompletionUsage | UnsetType | None) -> bytes:
        chunk = ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=choices, usage=usage
        )
        return _data(chunk)


# ---- models ----------------------------------------------------------------------------------


class Model(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(msgspec.Struct, frozen=True, kw_only=True):
    object: Literal["list"] = "list"
    data: list[Model]


def model_json(model: Model | ModelList) -> bytes:
    return _encoder.encode(model)


# ---- errors ----------------------------------------------------------------------------------


class ErrorObject(msgspec.Struct, frozen=True):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorObject


MODEL_NOT_FOUND = "model_not_found"

_CLIENT_ERRORS = frozenset({ErrorCode.BAD_MESSAGE, ErrorCode.UPSTREAM_BAD_REQUEST, ErrorCode.UNKNOWN_STREAM})
RATE_LIMITS = frozenset({ErrorCode.UPSTREAM_RATE_LIMITED, ErrorCode.RATE_LIMITED, ErrorCode.TOO_MANY_STREAMS})
# Where OpenAI has a well-known code for the same thing, it is used; otherwise the gateway's own.
_OPENAI_CODES: dict[ErrorCode, str | None] = {
    ErrorCode.BAD_MESSAGE: None,
    ErrorCode.UNAUTHORIZED: "invalid_api_key",
    ErrorCode.UNKNOWN_PROVIDER: MODEL_NOT_FOUND,
    ErrorCode.UNKNOWN_AGENT: MODEL_NOT_FOUND,
    ErrorCode.UPSTREAM_RATE_LIMITED: "rate_limit_exceeded",
    ErrorCode.RATE_LIMITED: "rate_limit_exceeded",
}


def error_type(code: ErrorCode) -> str:
    if code in RATE_LIMITS:
        return "rate_limit_error"
    if HTTP_STATUS[code] < 500:
        return "invalid_request_error"
    return "server_error"


def error_for(code: ErrorCode, message: str, param: str | None = None) -> ErrorObject:
    """OpenAI's error object for a gateway error code."""
    code_text = _OPENAI_CODES.get(code, code.value)
    return ErrorObject(message=message, type=error_type(code), code=code_text, param=param)


def error_json(error: ErrorObject) -> bytes:
    return _encoder.encode(ErrorBody(error))


def refusal_error(status: int, message: str) -> ErrorObject:
    """The error object of an access refusal (401 token, 403 origin)."""
    code = "invalid_api_key" if status == 401 else "origin_not_allowed" if status == 403 else None
    return ErrorObject(message=message, type="invalid_request_error", code=code)
