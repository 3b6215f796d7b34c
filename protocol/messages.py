"""Every protocol v1 message as a msgspec Struct, tagged on ``type``."""

from __future__ import annotations

from typing import Annotated, Literal

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


class ChatMessage(msgspec.Struct, frozen=True):
    role: Literal["system", "user", "assistant"]
    content: str


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


class Usage(msgspec.Struct, frozen=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated: bool


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


class Done(msgspec.Struct, tag="done", tag_field="type", kw_only=True, frozen=True):
    id: str
    seq: int
    finish_reason: str
    content: str
    usage: Usage
    metrics: Metrics


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


ServerMessage = Ready | StartAck | Chunk | Notice | Done | Error | Pong
