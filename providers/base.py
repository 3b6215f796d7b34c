"""The provider contract: a generation request in, typed stream events out, typed errors."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import ClassVar, Literal, Protocol

import msgspec

from protocol.errors import ErrorCode
from protocol.messages import (
    Brief,
    ChatMessage,
    Fault,
    Options,
    Plan,
    Reasoning,
    ResponseFormat,
    Tool,
    ToolChoice,
)

# ---- request ---------------------------------------------------------------------------------


class GenerationRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What a provider is asked to generate. ``messages`` is always filled in (a prompt or a
    brief is turned into messages); ``brief``/``plan`` stay for providers that use them.

    ``fault`` is the request's ``options.fault``, moved out of ``options`` (whose ``fault`` is then
    None): failures to act out. Only the offline ``rulebased`` provider acts on it; every other
    provider ignores it."""

    model: str
    messages: list[ChatMessage]
    brief: Brief | None = None
    plan: Plan | None = None
    options: Options = Options()
    fault: Fault | None = None
    # v1.1, as in the start (protocol.messages.StreamRequest); each dialect maps them to its own fields.
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None
    reasoning: Reasoning | None = None


# ---- stream events ---------------------------------------------------------------------------


class TextDelta(msgspec.Struct, frozen=True):
    text: str


class ReasoningDelta(msgspec.Struct, frozen=True):
    """Reasoning ("thinking") text; forwarded only to a stream whose start asked for reasoning."""

    text: str


class ToolCallStart(msgspec.Struct, frozen=True):
    """A tool call begins. ``index`` is the call's 0-based order in the turn (never the
    provider's own index), ``call_id`` its id (made up when the provider gives none)."""

    index: int
    call_id: str
    name: str


class ToolCallDelta(msgspec.Struct, frozen=True):
    """A fragment of a call's arguments as JSON text (a whole-call provider sends one)."""

    call_id: str
    text: str


class ToolCallEnd(msgspec.Struct, frozen=True):
    """A call is complete: its arguments parsed once, here. ``arguments`` is None, with
    ``error``, when they were not a JSON object."""

    call_id: str
    name: str
    arguments: object
    error: str | None = None


class ProviderState(msgspec.Struct, frozen=True):
    """Opaque state the provider needs back next turn (thinking signatures); the last one
    replaces earlier ones. Its format is the dialect's own."""

    data: str


class Usage(msgspec.Struct, frozen=True):
    """Token counts so far; a later Usage replaces an earlier one."""

    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False
    reasoning_tokens: int | None = None  # part of completion_tokens
    cached_tokens: int | None = None  # part of prompt_tokens


class Finish(msgspec.Struct, frozen=True):
    reason: str


class Failure:
    """The upstream reported an error, or sent something unreadable, mid-stream. Parsers return
    this instead of raising, so a bad byte from a peer never escapes as an exception."""

    __slots__ = ("error",)

    def __init__(self, error: ProviderError) -> None:
        self.error = error


StreamEvent = (
    TextDelta
    | ReasoningDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | ProviderState
    | Usage
    | Finish
    | Failure
)


class Completion(msgspec.Struct, frozen=True):
    """The result of a non-streaming call: its text and the events of its other parts (reasoning,
    tool calls, provider state), in order, as a stream would have sent them."""

    text: str
    finish_reason: str
    usage: Usage | None = None
    parts: list[StreamEvent] = []


# ---- errors ----------------------------------------------------------------------------------


class ProviderError(Exception):
    """A failure reaching or reading an upstream, with the protocol code a client sees.

    ``message`` must be safe to show a client: no keys, no stack traces, no internal paths."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after


class ProviderNotConfigured(ProviderError):
    code = ErrorCode.PROVIDER_NOT_CONFIGURED


class UpstreamAuthError(ProviderError):
    code = ErrorCode.UPSTREAM_AUTH


class UpstreamRateLimited(ProviderError):
    code = ErrorCode.UPSTREAM_RATE_LIMITED
    default_retryable = True


class UpstreamBadRequest(ProviderError):
    code = ErrorCode.UPSTREAM_BAD_REQUEST


class UpstreamUnavailable(ProviderError):
    code = ErrorCode.UPSTREAM_UNAVAILABLE
    default_retryable = True


class UpstreamProtocolError(ProviderError):
    """A malformed or truncated upstream stream."""

    code = ErrorCode.UPSTREAM_PROTOCOL
    default_retryable = True


class UpstreamTimeout(ProviderError):
    """The upstream itself reported a timeout (only injected faults raise it today; the gateway's
    own first-token, idle and total timeouts are not provider errors)."""

    code = ErrorCode.TIMEOUT
    default_retryable = True


# ---- the provider ----------------------------------------------------------------------------


class EventSink(Protocol):
    """Where a provider delivers a stream's events: the stream runner."""

    def push(self, event: StreamEvent) -> bool:
        """Take one event (never a Failure: the provider raises its error instead). True when
        the consumer is behind: the provider stops reading upstream until ``caught_up``."""
        ...

    async def caught_up(self) -> None:
        """Until the consumer has caught up with what was pushed."""
        ...


class Provider(Protocol):
    """One upstream. ``relay`` is how the runner drives every provider; ``stream`` is the same
    events as an async generator, and ``GeneratorProvider`` derives ``relay`` from it."""

    @property
    def name(self) -> str: ...

    @property
    def streaming(self) -> Literal["native", "simulated"]: ...

    @property
    def default_model(self) -> str: ...

    @property
    def configured(self) -> bool: ...

    def unsupported(self, request: GenerationRequest) -> str | None:
        """What in ``request`` the provider is known not to serve, refused before the stream
        starts (``unsupported_input``); None when it can be tried. Only what is known without
        asking the upstream: there is no table of models."""
        ...

    def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        """The stream's events. Closing the generator (``aclose``) must stop the upstream
        generation, which is how cancellation reaches the provider."""
        ...

    async def relay(self, request: GenerationRequest, sink: EventSink) -> None:
        """The stream's events pushed to ``sink``; returns at the end of the stream and raises
        ProviderError. Cancelling it must stop the upstream generation. HTTP providers push
        from the connection's data callback, with no task wake-up and generator resumption per
        chunk."""
        ...

    async def complete(self, request: GenerationRequest) -> Completion: ...


async def relay_events(events: AsyncGenerator[StreamEvent, None], sink: EventSink) -> None:
    """A generator's events into a sink, the default ``relay``: closing the generator at the end
    (or on cancellation) closes the upstream response."""
    async with aclosing(events):
        async for event in events:
            if type(event) is Failure:
                raise event.error
            if sink.push(event):
                await sink.caught_up()


class GeneratorProvider:
    """A provider written as a ``stream`` generator: ``relay`` comes from it."""

    def unsupported(self, request: GenerationRequest) -> str | None:
        return None

    def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        raise NotImplementedError

    async def relay(self, request: GenerationRequest, sink: EventSink) -> None:
        await relay_events(self.stream(request), sink)
