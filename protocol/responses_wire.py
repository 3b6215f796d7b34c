"""The OpenAI Responses API's wire format (``POST /v1/responses``): the request body, the
``response`` object and its streamed events. Pure, like the rest of ``protocol/``: a request becomes
the gateway's ``StreamRequest`` (checked by the same ``request_problem``), and ``EventsEncoder`` is
one more encoder over the same events every other transport reads.

What the official SDKs parse (openai-python ``lib/streaming/responses``): SSE events
``event: <type>`` + ``data: <json>``, each with an increasing ``sequence_number``; the stream
helper builds its final response from ``response.completed``'s ``output``, so that carries every
item. Errors before the stream are OpenAI's error shape (``protocol.openai_wire``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from protocol.codec import UNREADABLE, request_problem
from protocol.errors import ErrorCode
from protocol.messages import (
    MAX_PROVIDER_STATE,
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
from protocol.openai_wire import (
    EFFORTS,
    NO_ARGUMENTS,
    RATE_LIMITS,
    Problem,
    ReasoningEffort,
    decode_problem,
    gateway_problem,
    tool_turn_problem,
)
from protocol.structured import parse_arguments

# ---- the request -----------------------------------------------------------------------------


class InputPart(msgspec.Struct, frozen=True):
    """A part of a message's array content: ``input_text``/``output_text`` or ``input_image``."""

    type: str
    text: str | None = None
    image_url: str | None = None
    detail: str | None = None  # accepted; providers use their default


class InputItem(msgspec.Struct, frozen=True):
    """One ``input`` item: a message (``type`` ``message`` or absent), a ``function_call``, a
    ``function_call_output`` or a ``reasoning`` item. Checked by type in ``_item_problem``."""

    type: str = "message"
    role: Literal["user", "assistant", "system", "developer"] | None = None
    content: str | Annotated[list[InputPart], Meta(max_length=1000)] | None = None
    call_id: CallId | None = None
    name: ToolName | None = None
    arguments: str | None = None
    output: str | Annotated[list[InputPart], Meta(max_length=1000)] | None = None
    encrypted_content: Annotated[str, Meta(max_length=MAX_PROVIDER_STATE)] | None = None


class FunctionTool(msgspec.Struct, frozen=True):
    """A tool: only ``function`` tools are served; ``name`` is checked for them."""

    type: str
    name: ToolName | None = None
    description: Annotated[str, Meta(max_length=8192)] | None = None
    parameters: JsonObject | None = None
    strict: bool | None = None  # accepted, not enforced


class NamedFunction(msgspec.Struct, frozen=True):
    type: str
    name: ToolName | None = None


class TextFormatSpec(msgspec.Struct, frozen=True):
    type: Literal["text", "json_object", "json_schema"]
    name: ToolName | None = None
    schema: JsonObject | None = None
    description: str | None = None  # accepted; not passed on
    strict: bool | None = None


class TextConfig(msgspec.Struct, frozen=True):
    format: TextFormatSpec | None = None
    verbosity: str | None = None  # accepted; not passed on


class ReasoningConfig(msgspec.Struct, frozen=True):
    effort: ReasoningEffort | None = None
    summary: str | None = None  # accepted: the reasoning streamed is the provider's own text
    generate_summary: str | None = None


class ResponsesRequest(msgspec.Struct, frozen=True, kw_only=True):
    """The body of ``POST /v1/responses``. Unknown fields are ignored; ``store``, ``metadata``,
    ``user`` are accepted (nothing is stored)."""

    model: Annotated[str, Meta(min_length=1, max_length=257)]
    input: Annotated[str, Meta(max_length=1_000_000)] | Annotated[list[InputItem], Meta(max_length=1000)]
    instructions: str | None = None
    stream: bool | None = None
    max_output_tokens: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    tools: Annotated[list[FunctionTool], Meta(max_length=MAX_TOOLS)] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedFunction | None = None
    parallel_tool_calls: bool | None = None  # accepted, not enforced
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    previous_response_id: str | None = None
    conversation: object = None
    background: bool | None = None

    def options(self) -> Options | None:
        fields = (self.temperature, self.max_output_tokens, self.top_p)
        if all(value is None for value in fields):
            return None
        return Options(temperature=self.temperature, max_tokens=self.max_output_tokens, top_p=self.top_p)


_request_decoder = msgspec.json.Decoder(ResponsesRequest)


def decode_responses_request(data: bytes) -> ResponsesRequest | Problem:
    """Decode and check a request body; never raises."""
    try:
        request = _request_decoder.decode(data)
    except (msgspec.ValidationError, *UNREADABLE) as exc:
        return Problem(*decode_problem(exc))
    return _fields_problem(request) or _items_problem(request.input) or request


_UNSERVED = "is not supported: tokenwire stores no responses; send the whole conversation in `input`"


def _fields_problem(request: ResponsesRequest) -> Problem | None:
    if request.previous_response_id is not None:
        return Problem(f"`previous_response_id` {_UNSERVED}", "previous_response_id")
    if request.conversation is not None:
        return Problem(f"`conversation` {_UNSERVED}", "conversation")
    if request.background:
        return Problem("`background: true` is not supported: stream the response instead", "background")
    for i, tool in enumerate(request.tools or ()):
        if tool.type != "function":
            why = f"the built-in tool `{tool.type}` is not supported: only `function` tools are served"
            return Problem(why, f"tools[{i}].type")
        if tool.name is None:
            return Problem("a `function` tool needs `name`", f"tools[{i}].name")
    choice = request.tool_choice
    if isinstance(choice, NamedFunction) and (choice.type != "function" or choice.name is None):
        return Problem("`tool_choice` names a tool as {type: function, name}", "tool_choice")
    text_format = request.text.format if request.text else None
    if text_format is not None and text_format.type == "json_schema" and text_format.schema is None:
        return Problem("a `json_schema` format needs `schema`", "text.format.schema")
    effort = request.reasoning.effort if request.reasoning else None
    if effort == "none":
        return Problem("`reasoning.effort: none` is not supported: leave it out", "reasoning.effort")
    return None


def _items_problem(items: str | list[InputItem]) -> Problem | None:
    for i, item in enumerate(items if isinstance(items, list) else ()):
        if (why := _item_problem(item)) is not None:
            return Problem(why[0], f"input[{i}].{why[1]}" if why[1] else f"input[{i}]")
    return None


def _item_problem(item: InputItem) -> tuple[str, str] | None:
    """Why an item cannot be taken, and the field at fault."""
    if item.type == "message":
        if item.role is None:
            return "a message item needs `role`", "role"
        if item.content is None:
            return "a message item needs `content`", "content"
        for j, part in enumerate(item.content if isinstance(item.content, list) else ()):
            if part.type not in ("input_text", "output_text", "input_image"):
                return f"content part type `{part.type}` is not supported", f"content[{j}].type"
            if part.type == "input_image" and part.image_url is None:
                return "an `input_image` needs `image_url` (file_id is not supported)", f"content[{j}]"
        return None
    if item.type == "function_call":
        for field in ("call_id", "name", "arguments"):
            if getattr(item, field) is None:
                return f"a `function_call` item needs `{field}`", field
        return None
    if item.type == "function_call_output":
        for field in ("call_id", "output"):
            if getattr(item, field) is None:
                return f"a `function_call_output` item needs `{field}`", field
        for j, part in enumerate(item.output if isinstance(item.output, list) else ()):
            if part.type not in ("input_text", "output_text"):  # a tool message is text only
                return (
                    f"a tool output part of type `{part.type}` is not supported (text only)",
                    f"output[{j}].type",
                )
        return None
    if item.type == "reasoning":
        return None
    if item.type == "item_reference":  # what clients send for stored items when `store` is on
        return f"`item_reference` {_UNSERVED} (the AI SDK: providerOptions.openai.store = false)", "type"
    return f"input item type `{item.type}` is not supported", "type"


def stream_request(
    request: ResponsesRequest, *, id: str, provider: str | None, model: str | None, agent: str | None
) -> StreamRequest | Problem:
    """The gateway's request for a checked Responses request, or why the gateway refuses it."""
    tools = [
        Tool(name=tool.name, description=tool.description, parameters=tool.parameters)
        for tool in request.tools or ()
        if tool.name is not None
    ]
    gateway = StreamRequest(
        id=id,
        provider=provider,
        model=model,
        agent=agent,
        messages=chat_messages(request),
        options=request.options(),
        tools=tools or None,
        tool_choice=_tool_choice(request.tool_choice),
        response_format=_response_format(request.text),
        reasoning=_reasoning(request.reasoning),
    )
    problem = request_problem(gateway)
    openai = gateway_problem(problem) if problem else tool_turn_problem(gateway.messages or [])
    if openai is None:
        return gateway
    return Problem(openai.message, openai.param and _responses_param(openai.param))


def _responses_param(param: str) -> str:
    """OpenAI's Chat Completions field as the Responses one (messages are not one for one with
    items, so they are all ``input``)."""
    if param.startswith("messages"):
        return "input"
    return param.replace(".function.", ".").replace("response_format.json_schema", "text.format")


def chat_messages(request: ResponsesRequest) -> list[ChatMessage]:
    """``instructions`` as the first system message, then the items: a message one for one
    (``developer`` is ``system``), ``function_call`` items joined to the assistant turn before them
    (or a new one), ``function_call_output`` a ``tool`` message, a ``reasoning`` item's
    ``encrypted_content`` the ``provider_state`` of the assistant turn it ends (as this API
    sends it: last of the turn's items), or else of the next one."""
    messages: list[ChatMessage] = []
    if request.instructions:
        messages.append(ChatMessage(role="system", content=request.instructions))
    if isinstance(request.input, str):
        messages.append(ChatMessage(role="user", content=request.input))
        return messages
    state: str | None = None  # a reasoning item's state, for the assistant turn that follows
    for item in request.input:
        if item.type == "reasoning":
            last = messages[-1] if messages else None
            if item.encrypted_content and last is not None and last.role == "assistant":
                messages[-1] = msgspec.structs.replace(last, provider_state=item.encrypted_content)
            else:
                state = item.encrypted_content or state
        elif item.type == "function_call":
            messages.append(_with_call(messages, item, state))
            state = None
        elif item.type == "function_call_output":
            messages.append(ChatMessage(role="tool", content=_text(item.output), tool_call_id=item.call_id))
        else:
            role = "system" if item.role == "developer" else item.role or "user"
            message = ChatMessage(role=role, content=_content(item.content))
            if role == "assistant" and state is not None:
                message = msgspec.structs.replace(message, provider_state=state)
                state = None
            messages.append(message)
    return messages


def _with_call(messages: list[ChatMessage], item: InputItem, state: str | None) -> ChatMessage:
    """The assistant turn with this call added: the last message when it is an assistant turn
    (removed from ``messages``, to be appended again), otherwise a new one."""
    arguments, error = parse_arguments(item.arguments or "")
    call = ToolCall(
        call_id=item.call_id or "", name=item.name or "", arguments=arguments, arguments_error=error
    )
    last = messages[-1] if messages else None
    if last is not None and last.role == "assistant":
        messages.pop()
        return msgspec.structs.replace(
            last, tool_calls=[*(last.tool_calls or ()), call], provider_state=last.provider_state or state
        )
    return ChatMessage(role="assistant", content=None, tool_calls=[call], provider_state=state)


def _text(content: str | list[InputPart] | None) -> str:
    if isinstance(content, list):
        return "\n".join(part.text or "" for part in content)
    return content or ""


def _content(content: str | list[InputPart] | None) -> str | list[TextPart | ImagePart]:
    if not isinstance(content, list):
        return content or ""
    if all(part.image_url is None for part in content):
        return _text(content)
    return [
        ImagePart(part.image_url) if part.image_url is not None else TextPart(part.text or "")
        for part in content
    ]


def _tool_choice(choice: Literal["auto", "none", "required"] | NamedFunction | None) -> ToolChoice | None:
    if isinstance(choice, NamedFunction):
        return ToolChoiceName(choice.name or "")
    return choice


def _response_format(text: TextConfig | None) -> ResponseFormat | None:
    spec = text.format if text else None
    if spec is None or spec.type == "text":
        return None
    if spec.type == "json_object":
        return JsonFormat()
    assert spec.schema is not None  # _fields_problem
    return JsonSchemaFormat(name=spec.name or "response", schema=spec.schema, strict=spec.strict)


def _reasoning(config: ReasoningConfig | None) -> Reasoning | None:
    if config is None or config.effort is None:
        return None
    return Reasoning(effort=EFFORTS[config.effort])


# ---- the response object ---------------------------------------------------------------------


class OutputText(msgspec.Struct, tag="output_text", tag_field="type", frozen=True, kw_only=True):
    text: str
    annotations: list[object] = []
    logprobs: list[object] = []


class ReasoningText(msgspec.Struct, tag="reasoning_text", tag_field="type", frozen=True, kw_only=True):
    text: str


ItemStatus = Literal["in_progress", "completed", "incomplete"]


class MessageItem(msgspec.Struct, tag="message", tag_field="type", frozen=True, kw_only=True):
    id: str
    status: ItemStatus
    role: Literal["assistant"] = "assistant"
    content: list[OutputText]


class FunctionCallItem(msgspec.Struct, tag="function_call", tag_field="type", frozen=True, kw_only=True):
    id: str
    status: ItemStatus
    call_id: str
    name: str
    arguments: str


class ReasoningItem(msgspec.Struct, tag="reasoning", tag_field="type", frozen=True, kw_only=True):
    """The provider's reasoning text as ``content``; ``encrypted_content`` carries tokenwire's
    ``provider_state`` (pass the item back in ``input`` to replay it)."""

    id: str
    status: ItemStatus
    summary: list[object] = []
    content: list[ReasoningText] | UnsetType = UNSET
    encrypted_content: str | UnsetType = UNSET


OutputItem = MessageItem | FunctionCallItem | ReasoningItem


class InputTokensDetails(msgspec.Struct, frozen=True):
    cached_tokens: int


class OutputTokensDetails(msgspec.Struct, frozen=True):
    reasoning_tokens: int


class ResponseUsage(msgspec.Struct, frozen=True, kw_only=True):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class IncompleteDetails(msgspec.Struct, frozen=True):
    reason: Literal["max_output_tokens", "content_filter"]


class ResponseError(msgspec.Struct, frozen=True):
    code: str
    message: str


Status = Literal["in_progress", "completed", "incomplete", "failed", "cancelled"]


class ResponseObject(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: Status
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    output: list[OutputItem]
    parallel_tool_calls: bool = True
    previous_response_id: None = None
    reasoning: dict[str, Any] | None = None
    store: bool = False
    temperature: float | None = None
    text: dict[str, Any] | None = None
    tool_choice: Any = "auto"
    tools: list[dict[str, Any]] = []
    top_p: float | None = None
    truncation: Literal["disabled"] = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None
    metadata: dict[str, str] = {}


def usage(done: Done) -> ResponseUsage:
    u = done.usage
    return ResponseUsage(
        input_tokens=u.prompt_tokens,
        input_tokens_details=InputTokensDetails(u.cached_tokens or 0),
        output_tokens=u.completion_tokens,
        output_tokens_details=OutputTokensDetails(u.reasoning_tokens or 0),
        total_tokens=u.total_tokens,
    )


_encoder = msgspec.json.Encoder()
_RATE_LIMITS = frozenset(
    {ErrorCode.UPSTREAM_RATE_LIMITED, ErrorCode.RATE_LIMITED, ErrorCode.TOO_MANY_STREAMS}
)


def response_error(error: Error) -> ResponseError:
    """A stream's error as a failed response's ``error``; the message names the gateway's code."""
    code = "rate_limit_exceeded" if error.code in RATE_LIMITS else "server_error"
    return ResponseError(code, f"{error.message} ({error.code.value})")


class ResponseShell(msgspec.Struct, frozen=True, kw_only=True):
    """What every response object of one request repeats: the request's settings."""

    id: str
    created_at: int
    model: str
    instructions: str | None
    max_output_tokens: int | None
    temperature: float | None
    top_p: float | None
    tool_choice: Any
    tools: list[dict[str, Any]]
    text: dict[str, Any] | None
    reasoning: dict[str, Any] | None
    parallel_tool_calls: bool
    user: str | None
    metadata: dict[str, str]

    def response(
        self,
        status: Status,
        output: list[OutputItem],
        *,
        usage: ResponseUsage | None = None,
        error: ResponseError | None = None,
        incomplete: IncompleteDetails | None = None,
    ) -> ResponseObject:
        fields = {name: getattr(self, name) for name in self.__struct_fields__}
        return ResponseObject(
            **fields, status=status, output=output, usage=usage, error=error, incomplete_details=incomplete
        )


def shell(request: ResponsesRequest, *, id: str, created_at: int) -> ResponseShell:
    as_json: Any = msgspec.to_builtins
    return ResponseShell(
        id=id,
        created_at=created_at,
        model=request.model,
        instructions=request.instructions,
        max_output_tokens=request.max_output_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        tool_choice=as_json(request.tool_choice or "auto"),
        tools=[as_json(tool) for tool in request.tools or ()],
        text=as_json(request.text) if request.text else {"format": {"type": "text"}},
        reasoning=as_json(request.reasoning) if request.reasoning else None,
        parallel_tool_calls=request.parallel_tool_calls is not False,
        user=request.user,
        metadata=request.metadata or {},
    )


def _ending(done: Done) -> tuple[Status, IncompleteDetails | None]:
    if done.finish_reason == "length":
        return "incomplete", IncompleteDetails("max_output_tokens")
    if done.finish_reason == "content_filter":
        return "incomplete", IncompleteDetails("content_filter")
    if done.finish_reason == "cancelled":  # stopped on the gateway's side: no reason of OpenAI's fits
        return "incomplete", None
    return "completed", None


def response_json(shell: ResponseShell, entries: Iterable[ServerMessage | str]) -> bytes:
    """A finished stream's log as one response object (what ``stream: false`` answers): the
    encoder run over the log (a str entry is a chunk's text), its final response kept."""
    encoder = EventsEncoder(shell)
    for entry in entries:
        encoder.text(entry) if isinstance(entry, str) else encoder(entry)
    assert encoder.final is not None, "the log ends with done or error"
    return _encoder.encode(encoder.final)


# ---- the streamed events ---------------------------------------------------------------------


class _Open:
    """An output item being streamed: its index, id and the text (or arguments) so far."""

    def __init__(
        self, kind: Literal["message", "reasoning", "function_call"], index: int, item_id: str
    ) -> None:
        self.kind, self.index, self.id = kind, index, item_id
        self.parts: list[str] = []
        self.call_id = self.name = ""


class EventsEncoder:
    """Protocol events -> Responses SSE events. The ack opens the response (``created``,
    ``in_progress``); text opens a message item, reasoning a reasoning item, each tool call a
    function_call item; ``done`` closes them and completes the response (``incomplete`` for
    length or content filter), an ``error`` fails it. ``final`` is the last response object."""

    def __init__(self, shell: ResponseShell) -> None:
        self.shell = shell
        self.sequence = 0
        self.items: list[OutputItem | _Open] = []  # by output index; closed ones are OutputItems
        self.current: _Open | None = None  # the open message or reasoning item
        self.calls: dict[str, _Open] = {}  # the open calls, by call id
        self.final: ResponseObject | None = None

    def __call__(self, message: ServerMessage) -> bytes:
        if type(message) is Chunk:
            return self.text(message.content)
        if type(message) is ReasoningChunk:
            return self._text("reasoning", message.content)
        if type(message) is ToolCallStart:
            return self._close_text() + self._start_call(message)
        if type(message) is ToolCallDelta:
            return self._call_delta(message)
        if type(message) is ToolCallEnd:
            return self._end_call(message.call_id)
        if type(message) is Done:
            return self._done(message)
        if type(message) is Error:
            return self._failed(message)
        if type(message) is StartAck:
            created = self.shell.response("in_progress", [])
            return self._event("response.created", response=created) + self._event(
                "response.in_progress", response=created
            )
        return b""  # notices are not part of the Responses stream

    # ---- text and reasoning ----

    def text(self, delta: str) -> bytes:
        return self._text("message", delta)

    def _text(self, kind: Literal["message", "reasoning"], delta: str) -> bytes:
        out = b""
        if self.current is None or self.current.kind != kind:
            out += self._close_text() + self._open_text(kind)
        item = self.current
        assert item is not None
        item.parts.append(delta)
        where = {"item_id": item.id, "output_index": item.index, "content_index": 0}
        if kind == "message":
            return out + self._event("response.output_text.delta", **where, delta=delta, logprobs=[])
        return out + self._event("response.reasoning_text.delta", **where, delta=delta)

    def _open_text(self, kind: Literal["message", "reasoning"]) -> bytes:
        item = self.current = self._open(kind, "msg" if kind == "message" else "rs")
        if kind == "message":
            added: OutputItem = MessageItem(id=item.id, status="in_progress", content=[])
            part: OutputText | ReasoningText = OutputText(text="")
        else:
            added = ReasoningItem(id=item.id, status="in_progress", content=[])
            part = ReasoningText(text="")
        return self._event("response.output_item.added", output_index=item.index, item=added) + self._event(
            "response.content_part.added",
            item_id=item.id,
            output_index=item.index,
            content_index=0,
            part=part,
        )

    def _close_text(self, status: ItemStatus = "completed") -> bytes:
        item, self.current = self.current, None
        if item is None:
            return b""
        text = "".join(item.parts)
        where = {"item_id": item.id, "output_index": item.index, "content_index": 0}
        closed: OutputItem
        part: OutputText | ReasoningText
        if item.kind == "message":
            part = OutputText(text=text)
            out = self._event("response.output_text.done", **where, text=text, logprobs=[])
            closed = MessageItem(id=item.id, status=status, content=[part])
        else:
            part = ReasoningText(text=text)
            out = self._event("response.reasoning_text.done", **where, text=text)
            closed = ReasoningItem(id=item.id, status=status, content=[part])
        out += self._event("response.content_part.done", **where, part=part)
        return out + self._close(item, closed)

    # ---- tool calls ----

    def _start_call(self, start: ToolCallStart) -> bytes:
        item = self.calls[start.call_id] = self._open("function_call", "fc")
        item.call_id, item.name = start.call_id, start.name
        added = FunctionCallItem(
            id=item.id, status="in_progress", call_id=start.call_id, name=start.name, arguments=""
        )
        return self._event("response.output_item.added", output_index=item.index, item=added)

    def _call_delta(self, delta: ToolCallDelta) -> bytes:
        item = self.calls.get(delta.call_id)
        if item is None or not delta.arguments_delta:
            return b""
        item.parts.append(delta.arguments_delta)
        return self._event(
            "response.function_call_arguments.delta",
            item_id=item.id,
            output_index=item.index,
            delta=delta.arguments_delta,
        )

    def _end_call(self, call_id: str, status: ItemStatus = "completed") -> bytes:
        item = self.calls.pop(call_id, None)
        if item is None:
            return b""
        arguments = "".join(item.parts) or NO_ARGUMENTS
        out = self._event(
            "response.function_call_arguments.done",
            item_id=item.id,
            output_index=item.index,
            name=item.name,
            arguments=arguments,
        )
        closed = FunctionCallItem(
            id=item.id, status=status, call_id=item.call_id, name=item.name, arguments=arguments
        )
        return out + self._close(item, closed)

    # ---- the end ----

    def _done(self, done: Done) -> bytes:
        status, incomplete = _ending(done)
        item_status: ItemStatus = "completed" if status == "completed" else "incomplete"
        out = self._close_all(item_status)
        if done.provider_state is not None:  # carried by a reasoning item, for the next turn
            item = self._open("reasoning", "rs")
            state = ReasoningItem(id=item.id, status="completed", encrypted_content=done.provider_state)
            out += self._event("response.output_item.added", output_index=item.index, item=state)
            out += self._close(item, state)
        final = self.final = self.shell.response(
            status, self._output(), usage=usage(done), incomplete=incomplete
        )
        return out + self._event(f"response.{status}", response=final)

    def _failed(self, error: Error) -> bytes:
        out = self._close_all("incomplete")
        final = self.final = self.shell.response("failed", self._output(), error=response_error(error))
        return out + self._event("response.failed", response=final)

    def _close_all(self, status: ItemStatus) -> bytes:
        out = self._close_text(status)
        for call_id in list(self.calls):
            out += self._end_call(call_id, status)
        return out

    def _output(self) -> list[OutputItem]:
        return [item for item in self.items if not isinstance(item, _Open)]

    # ---- items and events ----

    def _open(self, kind: Literal["message", "reasoning", "function_call"], prefix: str) -> _Open:
        index = len(self.items)
        item = _Open(kind, index, f"{prefix}_{self.shell.id.removeprefix('resp_')}_{index}")
        self.items.append(item)
        return item

    def _close(self, item: _Open, closed: OutputItem) -> bytes:
        self.items[item.index] = closed
        return self._event("response.output_item.done", output_index=item.index, item=closed)

    def _event(self, kind: str, **fields: object) -> bytes:
        data = _encoder.encode({"type": kind, "sequence_number": self.sequence, **fields})
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"
