"""Every protocol v1 message as a msgspec Struct, tagged on ``type``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from protocol.errors import ErrorCode

PROTOCOL_VERSION = 1
# \A and \Z, not ^ and $: msgspec matches with re.search, and $ also matches before a final "\n".
STREAM_ID_PATTERN = r"\A[A-Za-z0-9._:-]{1,64}\Z"

StreamId = Annotated[str, Meta(pattern=STREAM_ID_PATTERN, min_length=1, max_length=64)]
# A stream key: the gateway's unguessable name for one stream (see StartAck.key).
StreamKey = Annotated[str, Meta(pattern=r"\A[A-Za-z0-9_-]{16,128}\Z")]
Name = Annotated[str, Meta(min_length=1, max_length=128)]
ShortText = Annotated[str, Meta(max_length=2000)]


# ---- shared pieces ---------------------------------------------------------------------------


# ---- protocol v1.1: typed parts (tools, reasoning, structured output, images) -----------------
# The bounds are the protocol's own, the same for every provider (docs/protocol.md, "Limits").

MAX_TOOLS = 128
MAX_SCHEMA_BYTES = 65_536  # a tool's `parameters` or a `json_schema` schema, as compact JSON
MAX_IMAGES = 16  # image parts in one request
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # one image's bytes in a data: URL, decoded (Anthropic's cap)
MAX_IMAGE_URL = 4096  # an https image URL
MAX_TOOL_CALLS_IN = 128  # tool calls on one assistant message
MAX_PROVIDER_STATE = 1024 * 1024  # the opaque provider_state passed back

ToolName = Annotated[str, Meta(pattern=r"\A[A-Za-z0-9_-]{1,64}\Z")]
CallId = Annotated[str, Meta(min_length=1, max_length=256)]
JsonObject = dict[str, Any]


class TextPart(msgspec.Struct, tag="text", tag_field="type", frozen=True):
    text: str


class ImagePart(msgspec.Struct, tag="image", tag_field="type", frozen=True):
    """An image by ``https:`` URL, or inline as a ``data:image/...;base64,`` URL. The gateway
    never fetches the URL: providers that take URLs get it as it is."""

    url: str


ContentPart = TextPart | ImagePart


class ToolCall(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One call the model made: in ``done.tool_calls``, and passed back on an ``assistant`` message.
    ``arguments`` is the parsed JSON object; None with ``arguments_error`` when it was not one."""

    call_id: CallId
    name: ToolName
    arguments: Any
    arguments_error: str | None = None


class Tool(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: ToolName
    description: Annotated[str, Meta(max_length=8192)] | None = None
    parameters: JsonObject | None = None  # a JSON Schema object; None: no arguments


class ToolChoiceName(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: ToolName


ToolChoice = Literal["auto", "none", "required"] | ToolChoiceName


class TextFormat(msgspec.Struct, tag="text", tag_field="type", frozen=True, forbid_unknown_fields=True):
    pass


class JsonFormat(msgspec.Struct, tag="json", tag_field="type", frozen=True, forbid_unknown_fields=True):
    pass


class JsonSchemaFormat(
    msgspec.Struct, tag="json_schema", tag_field="type", frozen=True, kw_only=True, forbid_unknown_fields=True
):
    name: ToolName = "response"
    schema: JsonObject
    strict: bool | None = None


ResponseFormat = TextFormat | JsonFormat | JsonSchemaFormat


class Reasoning(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Thinking: enable or tune it where the model supports it, and stream its text."""

    effort: Literal["low", "medium", "high"] | None = None
    budget_tokens: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None


class ChatMessage(msgspec.Struct, frozen=True, omit_defaults=True):
    """A turn of the conversation. ``content`` is text or a list of text and image parts; an
    ``assistant`` turn may carry the ``tool_calls`` and ``provider_state`` of its ``done``, and a
    ``tool`` turn answers the call ``tool_call_id``."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | Annotated[list[ContentPart], Meta(max_length=256)] | None = None
    tool_calls: Annotated[list[ToolCall], Meta(max_length=MAX_TOOL_CALLS_IN)] | None = None
    provider_state: Annotated[str, Meta(max_length=MAX_PROVIDER_STATE)] | None = None
    tool_call_id: CallId | None = None

    @property
    def text(self) -> str:
        """The text of ``content``: its text parts joined, without the images."""
        content = self.content
        if content is None:
            return ""
        if type(content) is str:
            return content
        return "".join(part.text for part in content if type(part) is TextPart)

    @property
    def images(self) -> list[ImagePart]:
        content = self.content
        if content is None or type(content) is str:
            return []
        return [part for part in content if type(part) is ImagePart]


FaultErrorCode = Literal[
    "upstream_unavailable",
    "upstream_rate_limited",
    "upstream_auth",
    "upstream_bad_request",
    "upstream_protocol",
    "timeout",
]
ChunkCount = Annotated[int, Meta(ge=0, le=100_000)]
_BREAKS = ("stall_after_chunks", "error_after_chunks", "truncate_after_chunks")


class Fault(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Failures the ``rulebased`` provider acts out, to rehearse a client's error handling; every
    other provider ignores it. A count N means "after N chunks" (0: before the first); at most one
    of the three ``*_after_chunks`` is set. Unknown fields are refused: a misspelt fault must not
    silently do nothing."""

    first_token_delay_ms: Annotated[float, Meta(ge=0, le=600_000)] | None = None
    stall_after_chunks: ChunkCount | None = None
    error_after_chunks: ChunkCount | None = None
    error_code: FaultErrorCode | None = None  # with error_after_chunks; None: "upstream_unavailable"
    retry_after_s: Annotated[float, Meta(ge=0, le=3600)] | None = None  # with error_after_chunks
    truncate_after_chunks: ChunkCount | None = None

    def __post_init__(self) -> None:
        # Raised while decoding, msgspec reports these with the path, e.g. `$.options.fault`.
        if sum(getattr(self, name) is not None for name in _BREAKS) > 1:
            names = "`stall_after_chunks`, `error_after_chunks` and `truncate_after_chunks`"
            raise ValueError(f"only one of {names} may be set")
        for name in ("error_code", "retry_after_s"):
            if getattr(self, name) is not None and self.error_after_chunks is None:
                raise ValueError(f"`{name}` goes with `error_after_chunks`")


class Options(msgspec.Struct, frozen=True, omit_defaults=True):
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    max_tokens: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    stop: Annotated[str, Meta(max_length=256)] | Annotated[list[str], Meta(max_length=16)] | None = None
    fault: Fault | None = None  # rulebased only; the gateway moves it to GenerationRequest.fault


class Brief(msgspec.Struct, frozen=True):
    """What a video script is about (input of the script drafter)."""

    topic: Annotated[str, Meta(min_length=1, max_length=500)]
    audience: ShortText = "a general audience"
    goal: ShortText = "explain the topic clearly"
    tone: ShortText = "friendly"
    language: Annotated[str, Meta(max_length=35)] = "en"


Pacing = Literal["slow", "conversational", "fast"]
Density = Literal["sparse", "low", "balanced", "medium", "dense", "high"]
DurationSeconds = Annotated[float, Meta(ge=5, le=3600)]


class Plan(msgspec.Struct, frozen=True):
    """How long and how dense the script should be."""

    target_duration_seconds: DurationSeconds = 60
    pacing: Pacing = "conversational"
    density: Density = "balanced"
    style: ShortText = "explainer"


# ---- client -> server ------------------------------------------------------------------------


class StreamRequest(msgspec.Struct, kw_only=True, frozen=True):
    """A generation request: the fields of ``start``, also the body of ``POST /v1/streams``."""

    id: StreamId | None = None
    provider: Name | None = None
    model: Name | None = None
    agent: Name | None = None
    messages: Annotated[list[ChatMessage], Meta(max_length=1000)] | None = None
    prompt: str | None = None
    brief: Brief | None = None
    plan: Plan | None = None
    options: Options | None = None
    # v1.1: a stream carries a new kind of part only when its start asked for it.
    tools: Annotated[list[Tool], Meta(max_length=MAX_TOOLS)] | None = None
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None


class StartRequest(StreamRequest, tag="start", tag_field="type", kw_only=True, frozen=True):
    id: StreamId


class Cancel(msgspec.Struct, tag="cancel", tag_field="type", frozen=True, kw_only=True):
    """Stop a stream: by ``id`` on this connection, or by ``key`` wherever it runs."""

    id: StreamId | None = None
    key: StreamKey | None = None

    def __post_init__(self) -> None:
        if (self.id is None) == (self.key is None):
            raise ValueError("give exactly one of `id` and `key`")


class Resume(msgspec.Struct, tag="resume", tag_field="type", frozen=True, kw_only=True):
    """Attach to a stream by its key and get every event after ``after_seq`` (-1: from its
    ``start`` ack on), then the live rest. ``id`` names it on this connection (default: its id)."""

    key: StreamKey
    after_seq: Annotated[int, Meta(ge=-1)] = -1
    id: StreamId | None = None


class Ping(msgspec.Struct, tag="ping", tag_field="type", frozen=True):
    ts: int | float | str | None = None


ClientMessage = StartRequest | Cancel | Resume | Ping


# ---- server -> client ------------------------------------------------------------------------


class ServerInfo(msgspec.Struct, frozen=True):
    name: str
    version: str


class ProviderInfo(msgspec.Struct, frozen=True):
    name: str
    streaming: Literal["native", "simulated"]
    configured: bool
    default_model: str


class Limits(msgspec.Struct, frozen=True):
    max_streams: int
    max_message_bytes: int


class Usage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated: bool
    reasoning_tokens: int | None = None  # part of completion_tokens, when the provider says
    cached_tokens: int | None = None  # part of prompt_tokens, when the provider says


class Metrics(msgspec.Struct, frozen=True):
    provider: str
    model: str
    ttft_ms: float | None
    duration_ms: float
    tokens_per_second: float | None
    estimated_cost_usd: float | None


class Ready(msgspec.Struct, tag="ready", tag_field="type", kw_only=True, frozen=True):
    protocol: int
    server: ServerInfo
    providers: list[ProviderInfo]
    limits: Limits


class StartAck(msgspec.Struct, tag="start", tag_field="type", kw_only=True, frozen=True):
    id: str
    seq: int
    provider: str
    model: str
    key: str  # unguessable; resuming and cancelling from elsewhere take it


class Chunk(msgspec.Struct, tag="chunk", tag_field="type", kw_only=True, frozen=True, omit_defaults=True):
    id: str
    seq: int
    content: str
    from_seq: int | None = None  # only on a merged chunk: the first seq it covers


class ReasoningChunk(
    msgspec.Struct, tag="reasoning", tag_field="type", kw_only=True, frozen=True, omit_defaults=True
):
    """Reasoning text, only when ``start`` had ``reasoning``."""

    id: str
    seq: int
    content: str
    from_seq: int | None = None


class ToolCallStart(msgspec.Struct, tag="tool_call_start", tag_field="type", kw_only=True, frozen=True):
    id: str
    seq: int
    call_id: str
    name: str
    index: int  # the call's 0-based order in this turn


class ToolCallDelta(
    msgspec.Struct, tag="tool_call_delta", tag_field="type", kw_only=True, frozen=True, omit_defaults=True
):
    id: str
    seq: int
    call_id: str
    arguments_delta: str  # a fragment of the arguments' JSON text
    from_seq: int | None = None


class ToolCallEnd(
    msgspec.Struct, tag="tool_call_end", tag_field="type", kw_only=True, frozen=True, omit_defaults=True
):
    id: str
    seq: int
    call_id: str
    name: str
    arguments: Any  # the parsed JSON object; None with arguments_error
    arguments_error: str | None = None


Part = ReasoningChunk | ToolCallStart | ToolCallDelta | ToolCallEnd


class Done(msgspec.Struct, tag="done", tag_field="type", kw_only=True, frozen=True, omit_defaults=True):
    """The end of a stream. The v1.1 fields are there only when ``start`` asked for their part:
    ``tool_calls`` with ``tools``, ``reasoning`` with ``reasoning``, ``object`` or
    ``object_error`` with a json ``response_format``; ``provider_state`` when the provider needs
    it back next turn."""

    id: str
    seq: int
    finish_reason: str
    content: str
    usage: Usage
    metrics: Metrics
    tool_calls: list[ToolCall] | None = None
    reasoning: str | None = None
    object: Any | msgspec.UnsetType = msgspec.UNSET  # may be JSON null
    object_error: str | None = None
    provider_state: str | None = None


class Error(msgspec.Struct, tag="error", tag_field="type", kw_only=True, frozen=True, omit_defaults=True):
    id: str | None = None
    seq: int | None = None  # present only when the error ends an accepted stream
    code: ErrorCode
    message: str
    retryable: bool
    retry_after_s: float | None = None
    provider: str | None = None
    status: int | None = None


class Notice(msgspec.Struct, tag="notice", tag_field="type", kw_only=True, frozen=True, omit_defaults=True):
    """The gateway retries or fails over before the first token. It carries no ``seq``: it is
    not one of the stream's events, only news of how the stream is being served."""

    id: str
    code: Literal["retrying", "failover"]
    message: str
    provider: str  # the provider tried next
    model: str
    attempt: int  # the try about to start: 2 is the first retry
    reason: ErrorCode  # the failure that caused it
    delay_s: float | None = None  # the wait before that try


class Pong(msgspec.Struct, tag="pong", tag_field="type", frozen=True):
    ts: int | float | str | None


ServerMessage = (
    Ready
    | StartAck
    | Chunk
    | ReasoningChunk
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | Notice
    | Done
    | Error
    | Pong
)
