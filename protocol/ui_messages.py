"""The AI SDK's chat request (``useChat``'s transports) into a tokenwire stream request.

``DefaultChatTransport`` posts, and ``WebSocketChatTransport`` sends in its ``send`` frame, the
chat's id, its ``UIMessage``s, the ``trigger``, the ``messageId`` of the assistant message being
continued, and the app's extra body fields: tokenwire reads those by the v1 ``start`` names
(``provider``, ``model``, ``agent``, ``tools``, ``tool_choice``, ``response_format``,
``reasoning``, ``options``) and ignores the rest.

A UIMessage's parts become provider messages: text; file parts with an image media type as image
parts; an assistant message's steps (split at ``step-start``) as an ``assistant`` turn with its
tool calls and ``provider_state`` (from ``providerMetadata.tokenwire``), then one ``tool`` turn per
call that has an output. Pure: no I/O.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from protocol.messages import (
    MAX_TOOLS,
    CallId,
    ChatMessage,
    ContentPart,
    ImagePart,
    Name,
    Options,
    Reasoning,
    ResponseFormat,
    StreamRequest,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
)

# A chat id names the chat in a URL (``/v1/ui/chat/{id}/stream``): the stream-id alphabet, longer,
# so that UUIDs and the SDK's own ids fit.
ChatId = Annotated[str, Meta(pattern=r"\A[A-Za-z0-9._:-]{1,128}\Z")]
MessageId = Annotated[str, Meta(min_length=1, max_length=256)]
PROVIDER_KEY = "tokenwire"  # providerMetadata[PROVIDER_KEY]["provider_state"]
_json = msgspec.json.Encoder()


class UIPart(msgspec.Struct, frozen=True, kw_only=True):
    """Any part of a UIMessage: which fields matter depends on ``type`` (``text``, ``file``,
    ``reasoning``, ``step-start``, ``tool-<name>``, ``dynamic-tool``; others are ignored)."""

    type: Annotated[str, Meta(max_length=200)]
    text: str | None = None
    url: str | None = None
    mediaType: str | None = None
    toolCallId: CallId | None = None
    toolName: Annotated[str, Meta(max_length=200)] | None = None
    state: str | None = None
    input: Any = None
    output: Any = None
    errorText: str | None = None
    providerMetadata: dict[str, Any] | None = None
    callProviderMetadata: dict[str, Any] | None = None


class UIMessage(msgspec.Struct, frozen=True, kw_only=True):
    id: Annotated[str, Meta(max_length=256)] = ""
    role: Literal["system", "user", "assistant"]
    parts: Annotated[list[UIPart], Meta(max_length=1000)]
    metadata: Any = None  # what the gateway sent in finish.messageMetadata, sent back: ignored


class ChatRequest(msgspec.Struct, frozen=True, kw_only=True):
    """The body ``DefaultChatTransport`` posts; also a ``send`` frame's fields and ``body``."""

    id: ChatId
    messages: Annotated[list[UIMessage], Meta(max_length=1000)]
    trigger: Literal["submit-message", "regenerate-message"] = "submit-message"
    messageId: MessageId | None = None
    provider: Name | None = None
    model: Name | None = None
    agent: Name | None = None
    options: Options | None = None
    tools: Annotated[list[Tool], Meta(max_length=MAX_TOOLS)] | None = None
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None


class Unsupported(Exception):
    """A part the gateway cannot pass to any provider (a PDF file, say): ``unsupported_input``."""


def stream_request(chat: ChatRequest) -> StreamRequest:
    """The stream request of a chat request. Raises Unsupported, or msgspec.ValidationError for
    what the converted messages break (a tool name, an image URL), with its path."""
    fields = {name: getattr(chat, name) for name in _START_FIELDS}
    messages = msgspec.to_builtins(chat_messages(chat.messages))
    return msgspec.convert({"messages": messages, **msgspec.to_builtins(fields)}, StreamRequest)


_START_FIELDS = (
    "provider",
    "model",
    "agent",
    "options",
    "tools",
    "tool_choice",
    "response_format",
    "reasoning",
)


def chat_messages(messages: list[UIMessage]) -> list[ChatMessage]:
    """The provider messages of a chat; raises Unsupported naming the place."""
    out: list[ChatMessage] = []
    for i, message in enumerate(messages):
        where = f"$.messages[{i}]"
        if message.role == "assistant":
            out.extend(_assistant_turns(message))
        else:
            content = _content(message, where)
            if content:
                out.append(ChatMessage(role=message.role, content=content))
    return out


def _content(message: UIMessage, where: str) -> str | list[ContentPart]:
    """A user or system message's text, or its text and image parts."""
    parts: list[ContentPart] = []
    for j, part in enumerate(message.parts):
        if part.type == "text" and part.text:
            parts.append(TextPart(part.text))
        elif part.type == "file":
            media = part.mediaType or ""
            if not media.startswith("image/") or part.url is None:
                raise Unsupported(
                    f"file parts other than images are not supported: `{media}` - at `{where}.parts[{j}]`"
                )
            parts.append(ImagePart(part.url))
    if all(type(part) is TextPart for part in parts):
        return "".join(part.text for part in parts)  # type: ignore[union-attr]
    return parts


def _assistant_turns(message: UIMessage) -> list[ChatMessage]:
    """Each step of an assistant message: its text, calls and state, then the calls' results."""
    turns: list[ChatMessage] = []
    for step in _steps(message.parts):
        turns.extend(_step_turns(step))
    return turns


def _steps(parts: list[UIPart]) -> list[list[UIPart]]:
    steps: list[list[UIPart]] = [[]]
    for part in parts:
        if part.type == "step-start":
            if steps[-1]:
                steps.append([])
        else:
            steps[-1].append(part)
    return steps


def _step_turns(parts: list[UIPart]) -> list[ChatMessage]:
    text = "".join(part.text or "" for part in parts if part.type == "text")
    state: str | None = None
    calls: list[ToolCall] = []
    results: list[ChatMessage] = []
    for part in parts:
        state = _provider_state(part.providerMetadata) or _provider_state(part.callProviderMetadata) or state
        name = _tool_name(part)
        result = _tool_result(part)
        if name is None or part.toolCallId is None or result is None:
            continue  # not a call, or one without its output: providers refuse unanswered calls
        calls.append(ToolCall(call_id=part.toolCallId, name=name, arguments=_arguments(part.input)))
        results.append(ChatMessage(role="tool", content=result, tool_call_id=part.toolCallId))
    if not text and not calls:
        return []
    assistant = ChatMessage(
        role="assistant", content=text or None, tool_calls=calls or None, provider_state=state
    )
    return [assistant, *results]


def _tool_name(part: UIPart) -> str | None:
    if part.type == "dynamic-tool":
        return part.toolName
    if part.type.startswith("tool-"):
        return part.type.removeprefix("tool-")
    return None


def _tool_result(part: UIPart) -> str | None:
    """What the ``tool`` turn says: the output (text as it is, else JSON), or the error."""
    if part.state == "output-available":
        return part.output if isinstance(part.output, str) else _json.encode(part.output).decode()
    if part.state == "output-error":
        return f"Error: {part.errorText or 'the tool failed'}"
    if part.state == "output-denied":
        return "Error: the user denied this tool call"
    return None


def _arguments(value: Any) -> Any:
    return value if isinstance(value, dict) else {}


def _provider_state(metadata: dict[str, Any] | None) -> str | None:
    own = (metadata or {}).get(PROVIDER_KEY)
    state = own.get("provider_state") if isinstance(own, dict) else None
    return state if isinstance(state, str) else None
