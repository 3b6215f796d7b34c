"""The Anthropic Messages API's wire format: the ``POST /v1/messages`` body, the message object,
its streamed events and Anthropic's error shape. Pure, like the rest of ``protocol/``: a request
becomes the gateway's ``StreamRequest`` (checked by the same ``request_problem``, its paths named
as Anthropic's fields), and the streaming encoder is one more encoder over the same events.

What the official SDKs parse (anthropic-sdk-python ``_streaming.py`` / ``lib/streaming``):
``event: <type>`` + ``data: <json>`` events, assembled into the message by each event's
``index``; an ``event: error`` mid-stream raises; an HTTP error status with
``{"type": "error", "error": {"type", "message"}}`` maps to an exception class by status.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from protocol.anthropic_state import (
    RedactedThinkingBlock,
    StateBlock,
    ThinkingBlock,
    encode_state,
    replay_blocks,
)
from protocol.codec import UNREADABLE, describe, request_problem
from protocol.errors import HTTP_STATUS, ErrorCode
from protocol.messages import (
    MAX_PROVIDER_STATE,
    MAX_TOOLS,
    CallId,
    ChatMessage,
    Chunk,
    Done,
    Error,
    ImagePart,
    JsonObject,
    Options,
    Reasoning,
    ReasoningChunk,
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
from protocol.sse import sse_frame

# ---- the request -----------------------------------------------------------------------------


class ImageSource(msgspec.Struct, frozen=True):
    type: Literal["base64", "url"]
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class ResultBlock(msgspec.Struct, frozen=True):
    """A block of a ``tool_result``'s content: text (images there are refused)."""

    type: str
    text: str | None = None


class Block(msgspec.Struct, frozen=True):
    """One content block of a message, whichever its type; each type's fields are checked after
    decoding, so a problem names the block."""

    type: str
    text: str | None = None
    source: ImageSource | None = None
    id: CallId | None = None
    name: ToolName | None = None
    input: Any = None
    tool_use_id: CallId | None = None
    content: str | list[ResultBlock] | None = None
    is_error: bool | None = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None  # redacted_thinking
    cache_control: object = None  # accepted, ignored


class InputMessage(msgspec.Struct, frozen=True):
    role: Literal["user", "assistant"]
    content: str | Annotated[list[Block], Meta(max_length=1000)]


class SystemBlock(msgspec.Struct, frozen=True):
    type: Literal["text"]
    text: str
    cache_control: object = None  # accepted, ignored


class InputTool(msgspec.Struct, frozen=True):
    name: ToolName
    input_schema: JsonObject | None = None
    description: Annotated[str, Meta(max_length=8192)] | None = None
    type: str | None = None  # "custom" or absent; a server tool (web_search_…) is refused
    cache_control: object = None


class InputToolChoice(msgspec.Struct, frozen=True):
    type: Literal["auto", "any", "tool", "none"]
    name: ToolName | None = None
    disable_parallel_tool_use: bool | None = None  # accepted, not enforced


class Thinking(msgspec.Struct, frozen=True):
    type: Literal["enabled", "disabled"]
    budget_tokens: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None


class MessagesRequest(msgspec.Struct, frozen=True, kw_only=True):
    """The body of ``POST /v1/messages`` (and of ``count_tokens``, where ``max_tokens`` is not
    needed). Unknown fields are ignored; ``metadata`` is accepted and ignored."""

    model: Annotated[str, Meta(min_length=1, max_length=257)]
    messages: Annotated[list[InputMessage], Meta(min_length=1, max_length=1000)]
    max_tokens: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None
    system: str | list[SystemBlock] | None = None
    stop_sequences: Annotated[list[Annotated[str, Meta(max_length=256)]], Meta(max_length=16)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_k: int | None = None
    stream: bool | None = None
    metadata: object = None
    tools: Annotated[list[InputTool], Meta(max_length=MAX_TOOLS)] | None = None
    tool_choice: InputToolChoice | None = None
    thinking: Thinking | None = None


class Problem(msgspec.Struct, frozen=True):
    """A request refused with 400 ``invalid_request_error``; ``field`` names where."""

    message: str
    field: str | None = None

    @property
    def text(self) -> str:
        return self.message if self.field is None else f"{self.field}: {self.message}"


_request_decoder = msgspec.json.Decoder(MessagesRequest)
_PATH = re.compile(r" - at `\$\.?(.*)`$")
_MISSING = re.compile(r"missing required field `([^`]*)`")
_BLOCK_FIELDS = {
    "text": ("text",),
    "image": ("source",),
    "tool_use": ("id", "name"),
    "tool_result": ("tool_use_id",),
}
_BLOCK_FIELDS |= {"thinking": ("thinking",), "redacted_thinking": ("data",)}


def decode_messages_request(data: bytes, *, counting: bool = False) -> MessagesRequest | Problem:
    """Decode and check a request body; never raises. ``counting``: for ``count_tokens``, which
    takes no ``max_tokens``."""
    try:
        request = _request_decoder.decode(data)
    except msgspec.ValidationError as exc:
        text = str(exc)
        at, missing = _PATH.search(text), _MISSING.search(text)
        field = at[1] if at else None
        if missing:
            field = f"{field}.{missing[1]}" if field else missing[1]
        return Problem(text, field or None)
    except UNREADABLE as exc:
        return Problem(f"the body is not valid JSON: {describe(exc)}")
    if request.max_tokens is None and not counting:
        return Problem("Field required", "max_tokens")
    return _fields_problem(request) or _blocks_problem(request.messages) or request


def _fields_problem(request: MessagesRequest) -> Problem | None:
    if request.top_k is not None:
        return Problem("`top_k` is not supported by the gateway", "top_k")
    choice = request.tool_choice
    if choice is not None and (choice.type == "tool") != (choice.name is not None):
        return Problem("`name` is required with type `tool`, and only then", "tool_choice.name")
    for i, tool in enumerate(request.tools or ()):
        if tool.type not in (None, "custom"):
            return Problem(
                f"server tool type `{tool.type}` is not supported: only custom tools", f"tools.{i}.type"
            )
    thinking = request.thinking
    if thinking is not None and thinking.type == "enabled" and thinking.budget_tokens is None:
        return Problem("Field required", "thinking.budget_tokens")
    return None


def _blocks_problem(messages: list[InputMessage]) -> Problem | None:
    for i, message in enumerate(messages):
        for j, block in enumerate(message.content if isinstance(message.content, list) else ()):
            if (why := _block_problem(message.role, block)) is not None:
                return Problem(why, f"messages.{i}.content.{j}")
    return None


_ROLE_BLOCKS = {
    "user": ("text", "image", "tool_result"),
    "assistant": ("text", "tool_use", "thinking", "redacted_thinking"),
}


def _block_problem(role: str, block: Block) -> str | None:
    if block.type not in _ROLE_BLOCKS[role]:
        takes = ", ".join(_ROLE_BLOCKS[role])
        return f"a `{role}` message cannot have a `{block.type}` block (it takes {takes})"
    for name in _BLOCK_FIELDS[block.type]:
        if getattr(block, name) is None:
            return f"a `{block.type}` block needs `{name}`"
    if block.type == "tool_use" and not isinstance(block.input, dict):
        return "`input` of a `tool_use` block must be an object"
    if block.type == "image" and block.source is not None and _image_url(block.source) is None:
        return "an image `source` needs `media_type` and `data` (base64) or `url` (url)"
    for part in block.content if isinstance(block.content, list) else ():
        if part.type != "text" or part.text is None:
            return "a `tool_result`'s content takes only text blocks"
    return None


def _image_url(source: ImageSource) -> str | None:
    if source.type == "url":
        return source.url
    if source.media_type is None or source.data is None:
        return None
    return f"data:{source.media_type};base64,{source.data}"


def stream_request(
    body: MessagesRequest, *, id: str, provider: str | None, model: str | None, agent: str | None
) -> StreamRequest | Problem:
    """The gateway's request for a checked Messages request, or why the gateway refuses it."""
    request = StreamRequest(
        id=id,
        provider=provider,
        model=model,
        agent=agent,
        messages=chat_messages(body),
        options=_options(body),
        tools=[_tool(tool) for tool in body.tools] if body.tools else None,
        tool_choice=_tool_choice(body.tool_choice),
        reasoning=_reasoning(body.thinking),
    )
    problem = request_problem(request)
    if problem is None:
        return request
    at = _PATH.search(problem)
    if at is None:
        return Problem(problem)
    return Problem(problem[: at.start()], _anthropic_field(at[1]))


def _anthropic_field(path: str) -> str:
    """A gateway path as Anthropic names fields (dots, no brackets); messages are renumbered by
    the system message and split tool results, so only the top-level field is named there."""
    path = re.sub(r"\[(\d+)\]", r".\1", path)
    if path.startswith("messages."):
        return "messages"
    return path.replace(".parameters", ".input_schema")


def _options(body: MessagesRequest) -> Options:
    return Options(
        temperature=body.temperature, max_tokens=body.max_tokens, top_p=body.top_p, stop=body.stop_sequences
    )


def _tool(tool: InputTool) -> Tool:
    return Tool(name=tool.name, description=tool.description, parameters=tool.input_schema)


def _tool_choice(choice: InputToolChoice | None) -> ToolChoice | None:
    if choice is None:
        return None
    if choice.type == "tool":
        assert choice.name is not None  # checked by _fields_problem
        return ToolChoiceName(choice.name)
    return {"auto": "auto", "any": "required", "none": "none"}[choice.type]  # type: ignore[return-value]


def _reasoning(thinking: Thinking | None) -> Reasoning | None:
    if thinking is None or thinking.type == "disabled":
        return None
    return Reasoning(budget_tokens=thinking.budget_tokens)


def chat_messages(body: MessagesRequest) -> list[ChatMessage]:
    """The gateway's messages: the system prompt first, then each message; a user message's
    ``tool_result`` blocks become ``tool`` messages (before its other content, as Anthropic
    requires them first); an assistant's signed thinking blocks become its ``provider_state``."""
    out: list[ChatMessage] = []
    if body.system:
        system = body.system if isinstance(body.system, str) else "\n".join(b.text for b in body.system)
        out.append(ChatMessage(role="system", content=system))
    for message in body.messages:
        if isinstance(message.content, str):
            out.append(ChatMessage(role=message.role, content=message.content))
        elif message.role == "user":
            out.extend(_user_messages(message.content))
        else:
            out.append(_assistant_message(message.content))
    return out


def _user_messages(blocks: list[Block]) -> list[ChatMessage]:
    out = [
        ChatMessage(role="tool", tool_call_id=block.tool_use_id, content=_result_text(block.content))
        for block in blocks
        if block.type == "tool_result"
    ]
    parts = [_part(block) for block in blocks if block.type != "tool_result"]
    if parts or not out:
        images = any(isinstance(part, ImagePart) for part in parts)
        text = "\n".join(part.text for part in parts if isinstance(part, TextPart))
        out.append(ChatMessage(role="user", content=parts if images else text))
    return out


def _result_text(content: str | list[ResultBlock] | None) -> str:
    if isinstance(content, list):
        return "\n".join(part.text or "" for part in content)
    return content or ""


def _part(block: Block) -> TextPart | ImagePart:
    if block.type == "image":
        assert block.source is not None
        return ImagePart(_image_url(block.source) or "")
    return TextPart(block.text or "")


def _assistant_message(blocks: list[Block]) -> ChatMessage:
    text = "".join(block.text or "" for block in blocks if block.type == "text")
    calls = [
        ToolCall(call_id=block.id or "", name=block.name or "", arguments=block.input)
        for block in blocks
        if block.type == "tool_use"
    ]
    thoughts: list[StateBlock] = []
    for block in blocks:
        if block.type == "thinking" and block.signature:  # unsigned: cannot be sent back
            thoughts.append(ThinkingBlock(block.thinking or "", block.signature))
        elif block.type == "redacted_thinking":
            thoughts.append(RedactedThinkingBlock(block.data or ""))
    state = encode_state(thoughts) if thoughts else None
    if state is not None and len(state) > MAX_PROVIDER_STATE:
        state = None  # too large to carry: the provider answers as if the turn had not thought
    return ChatMessage(role="assistant", content=text, tool_calls=calls or None, provider_state=state)


# ---- the answer --------------------------------------------------------------------------------

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "pause_turn"]
_STOP_REASONS: dict[str, StopReason] = {
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "stop_sequence": "stop_sequence",
    "refusal": "refusal",
}


def stop_reason(finish_reason: str) -> StopReason:
    """Anthropic's ``stop_reason`` for a gateway finish; ``stop``, ``cancelled`` and unmapped
    reasons are ``end_turn``."""
    return _STOP_REASONS.get(finish_reason, "end_turn")


class MessageUsage(msgspec.Struct, frozen=True, kw_only=True):
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int | UnsetType = UNSET


def _usage(done: Done) -> MessageUsage:
    u = done.usage
    cached = UNSET if u.cached_tokens is None else u.cached_tokens
    return MessageUsage(
        input_tokens=u.prompt_tokens, output_tokens=u.completion_tokens, cache_read_input_tokens=cached
    )


class TextBlock(msgspec.Struct, tag="text", tag_field="type", frozen=True):
    text: str


class ToolUseBlock(msgspec.Struct, tag="tool_use", tag_field="type", frozen=True):
    id: str
    name: str
    input: Any


OutputBlock = TextBlock | ThinkingBlock | RedactedThinkingBlock | ToolUseBlock


class Message(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[OutputBlock]
    stop_reason: StopReason | None = None
    stop_sequence: None = None
    usage: MessageUsage


_encoder = msgspec.json.Encoder()


def message_json(done: Done, message_id: str, model: str) -> bytes:
    """A finished stream as one message object: its thinking (Anthropic's own blocks, signed, when
    the provider state has them; otherwise the reasoning as one unsigned block), its text, then
    its tool calls."""
    blocks: list[OutputBlock] = list(replay_blocks(done.provider_state))
    if not blocks and done.reasoning is not None:
        blocks.append(ThinkingBlock(done.reasoning, ""))
    if done.content:
        blocks.append(TextBlock(done.content))
    for call in done.tool_calls or ():
        blocks.append(ToolUseBlock(call.call_id, call.name, {} if call.arguments is None else call.arguments))
    message = Message(
        id=message_id,
        model=model,
        content=blocks,
        stop_reason=stop_reason(done.finish_reason),
        usage=_usage(done),
    )
    return _encoder.encode(message)


# ---- the stream ----------------------------------------------------------------------------------


class TextDelta(msgspec.Struct, tag="text_delta", tag_field="type", frozen=True):
    text: str


class ThinkingDelta(msgspec.Struct, tag="thinking_delta", tag_field="type", frozen=True):
    thinking: str


class SignatureDelta(msgspec.Struct, tag="signature_delta", tag_field="type", frozen=True):
    signature: str


class InputJsonDelta(msgspec.Struct, tag="input_json_delta", tag_field="type", frozen=True):
    partial_json: str


BlockDelta = TextDelta | ThinkingDelta | SignatureDelta | InputJsonDelta


class MessageStart(msgspec.Struct, tag="message_start", tag_field="type", frozen=True):
    message: Message


class ContentBlockStart(msgspec.Struct, tag="content_block_start", tag_field="type", frozen=True):
    index: int
    content_block: OutputBlock


class ContentBlockDelta(msgspec.Struct, tag="content_block_delta", tag_field="type", frozen=True):
    index: int
    delta: BlockDelta


class ContentBlockStop(msgspec.Struct, tag="content_block_stop", tag_field="type", frozen=True):
    index: int


class StopDelta(msgspec.Struct, frozen=True):
    stop_reason: StopReason
    stop_sequence: None = None


class MessageDelta(msgspec.Struct, tag="message_delta", tag_field="type", frozen=True):
    delta: StopDelta
    usage: MessageUsage


class MessageStop(msgspec.Struct, tag="message_stop", tag_field="type", frozen=True):
    pass


class Ping(msgspec.Struct, tag="ping", tag_field="type", frozen=True):
    pass


StreamEvent = (
    MessageStart
    | ContentBlockStart
    | ContentBlockDelta
    | ContentBlockStop
    | MessageDelta
    | MessageStop
    | Ping
)


def _event(event: StreamEvent) -> bytes:
    return sse_frame(event.__struct_config__.tag, _encoder.encode(event))  # type: ignore[arg-type]


PING = _event(Ping())


class EventEncoder:
    """Protocol events -> Anthropic's stream events. The ack is ``message_start`` and a ``ping``;
    text and reasoning open a ``text`` / ``thinking`` block (closing the open one), a tool call a
    ``tool_use`` block whose arguments stream as ``input_json_delta``. Blocks never overlap: the
    parts of a call that starts while another is open (interleaved parallel calls) wait, and go
    out once it ends. ``done`` closes the open block, adds each thinking block's signature (known
    only at the end, from the provider state) as a ``signature_delta`` at its index and any
    redacted thinking as blocks, then ``message_delta`` and ``message_stop``; an ``error`` is
    Anthropic's ``error`` event."""

    def __init__(self, message_id: str, model: str) -> None:
        self.id, self.model = message_id, model
        self.index = -1  # the index of the last block started
        self.open: str | None = None  # "text", "thinking", or the id of the open tool call's block
        self.ended: set[str] = set()  # calls whose end has come
        self.waiting: list[ServerMessage] = []  # the parts held while a tool call's block is open
        self.thinking: list[int] = []  # the indexes of the thinking blocks

    def __call__(self, message: ServerMessage) -> bytes:
        if type(message) is StartAck:
            usage = MessageUsage(input_tokens=0, output_tokens=0)
            start = Message(id=self.id, model=self.model, content=[], usage=usage)
            return _event(MessageStart(start)) + PING
        if type(message) is Done:
            return self._end(message)
        if type(message) is Error:
            return error_event(message.code, message.message)
        return self._part(message)

    def _part(self, message: ServerMessage) -> bytes:
        if self.open is not None and self.open not in ("text", "thinking"):
            if type(message) is ToolCallEnd and message.call_id == self.open:
                return self._close() + self._release()
            if getattr(message, "call_id", None) != self.open:
                self.waiting.append(message)
                return b""
        if type(message) is Chunk:
            return self._into("text", TextBlock(""), TextDelta(message.content))
        if type(message) is ReasoningChunk:
            return self._into("thinking", ThinkingBlock("", ""), ThinkingDelta(message.content))
        if type(message) is ToolCallStart:
            return self._into(message.call_id, ToolUseBlock(message.call_id, message.name, {}), None)
        if type(message) is ToolCallDelta:
            if not message.arguments_delta:
                return b""
            return _event(ContentBlockDelta(self.index, InputJsonDelta(message.arguments_delta)))
        return b""  # a ToolCallEnd of a call already closed; notices are not part of the stream

    def _into(self, kind: str, block: OutputBlock, delta: BlockDelta | None) -> bytes:
        out = b""
        if self.open != kind:
            out = self._close()
            self.index += 1
            self.open = kind
            if kind == "thinking":
                self.thinking.append(self.index)
            out += _event(ContentBlockStart(self.index, block))
        if delta is not None:
            out += _event(ContentBlockDelta(self.index, delta))
        return out

    def _close(self) -> bytes:
        if self.open is None:
            return b""
        self.open = None
        return _event(ContentBlockStop(self.index))

    def _release(self) -> bytes:
        """The parts held while a call was open, in order (one may open another call)."""
        held, self.waiting = self.waiting, []
        out = b""
        for message in held:
            out += self._part(message)
        return out

    def _end(self, done: Done) -> bytes:
        out = b""
        while self.waiting:  # calls still open at the end (their ends never came) close in turn
            out += self._close() + self._release()
        out += self._close()
        thoughts = replay_blocks(done.provider_state)
        signed = [block.signature for block in thoughts if isinstance(block, ThinkingBlock)]
        for index, signature in zip(self.thinking, signed, strict=False):
            out += _event(ContentBlockDelta(index, SignatureDelta(signature)))
        for block in thoughts:
            if isinstance(block, RedactedThinkingBlock):
                self.index += 1
                out += _event(ContentBlockStart(self.index, block))
                out += _event(ContentBlockStop(self.index))
        delta = MessageDelta(StopDelta(stop_reason(done.finish_reason)), _usage(done))
        return out + _event(delta) + _event(MessageStop())


# ---- errors ------------------------------------------------------------------------------------


class ErrorObject(msgspec.Struct, frozen=True):
    type: str
    message: str


class ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorObject
    type: Literal["error"] = "error"


# Anthropic's error types by the status the anthropic SDKs map to their exception classes.
_TYPES = {
    400: "invalid_request_error",  # BadRequestError
    401: "authentication_error",  # AuthenticationError
    403: "permission_error",  # PermissionDeniedError
    404: "not_found_error",  # NotFoundError
    409: "invalid_request_error",  # ConflictError
    413: "request_too_large",  # APIStatusError (413)
    429: "rate_limit_error",  # RateLimitError
    500: "api_error",  # InternalServerError (and every other 5xx)
    503: "overloaded_error",  # ServiceUnavailableError
    529: "overloaded_error",  # OverloadedError
}
# Where the gateway's status is not Anthropic's: an overloaded gateway is Anthropic's 529.
_STATUS = {ErrorCode.SERVER_BUSY: 529, ErrorCode.SHUTTING_DOWN: 529}


def error_status(code: ErrorCode) -> int:
    return _STATUS.get(code, HTTP_STATUS[code])


def error_type(status: int) -> str:
    return _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_json(status: int, message: str) -> bytes:
    return _encoder.encode(ErrorBody(ErrorObject(error_type(status), message)))


def error_event(code: ErrorCode, message: str) -> bytes:
    return sse_frame("error", error_json(error_status(code), message))


class TokenCount(msgspec.Struct, frozen=True):
    input_tokens: int


def token_count_json(tokens: int) -> bytes:
    return _encoder.encode(TokenCount(tokens))


def counted_text(request: StreamRequest) -> str:
    """The text a ``count_tokens`` estimate counts: every message's text, tool call and tool,
    as JSON for the structured ones."""
    parts: list[str] = []
    for message in request.messages or ():
        parts.append(message.text)
        parts.extend(_encoder.encode(call).decode() for call in message.tool_calls or ())
    parts.extend(_encoder.encode(tool).decode() for tool in request.tools or ())
    return "\n".join(parts)
