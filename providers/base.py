"""The provider contract: a generation request in, typed stream events out, typed errors."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import ClassVar, Literal, Protocol

import msgspec

from protocol.errors import ErrorCode
from protocol.messages import Brief, ChatMessage, Fault, Options, Plan

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


# ---- stream events ---------------------------------------------------------------------------


class TextDelta(msgspec.Struct, frozen=True):
    text: str


class ReasoningDelta(msgspec.Struct, frozen=True):
    """Reasoning ("thinking") text; parsed, not forwarded by protocol v1."""

    text: str


class Usage(msgspec.Struct, frozen=True):
    """Token counts so far; a later Usage replaces an earlier one."""

    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False


class Finish(msgspec.Struct, frozen=True):
    reason: str


class Failure:
    """The upstream reported an error, or sent something unreadable, mid-stream. Parsers return
    this instead of raising, so a bad byte from a peer never escapes as an exception."""

    __slots__ = ("error",)

    def __init__(self, error: ProviderError) -> None:
        self.error = error


StreamEvent = TextDelta | ReasoningDelta | Usage | Finish | Failure


class Completion(msgspec.Struct, frozen=True):
    """The result of a non-streaming call."""

    text: str
    finish_reason: str
    usage: Usage | None = None


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


class Provider(Protocol):
    """One upstream. ``stream`` is an async generator: closing it (``aclose``) must stop the
    upstream generation, which is how cancellation reaches the provider."""

    @property
    def name(self) -> str: ...

    @property
    def streaming(self) -> Literal["native", "simulated"]: ...

    @property
    def default_model(self) -> str: ...

    @property
    def configured(self) -> bool: ...

    def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]: ...

    async def complete(self, request: GenerationRequest) -> Completion: ...


class EventSink(Protocol):
    """Where a relaying provider delivers a stream's events, straight from its I/O callback."""

    def push(self, event: StreamEvent) -> bool:
        """Take one event (never a Failure: the provider raises its error instead). True when
        the consumer is behind: the provider stops reading upstream until ``caught_up``."""
        ...

    async def caught_up(self) -> None:
        """Until the consumer has caught up with what was pushed."""
        ...


# A provider may also offer ``relay(request, sink)``: its stream's events pushed to the sink as each
# upstream read is parsed, without waking a task and resuming a generator chain per chunk. It
# returns at the end of the stream and raises ProviderError; cancelling it closes the upstream
# response, as closing ``stream`` does. The runner uses it when a provider has it.
Relay = Callable[[GenerationRequest, EventSink], Awaitable[None]]
