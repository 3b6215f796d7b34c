"""Fault injection for the offline provider, as pure data: what to act out, and which error.

A request's ``Fault`` (``options.fault``) asks for a late first chunk and at most one break after N
chunks: a stall (nothing more, ever), a typed upstream error, or a stream that ends without its
finish. ``plan`` turns it into numbers for a reply of a given length; the provider does the
waiting (with its injected sleep, so a cancel stops it at once). The same request always gives
the same plan, and a break always happens: a reply with fewer than N chunks breaks after its last.

The errors look like a real upstream's: the status it would answer with, the HTTP providers'
message style, and for a truncated stream the very message their parsers report.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.errors import ErrorCode
from protocol.messages import Fault
from providers.base import ProviderError, UpstreamProtocolError, UpstreamTimeout
from providers.errors import error_for_status

DEFAULT_ERROR_CODE = ErrorCode.UPSTREAM_UNAVAILABLE
# The status a real upstream answers with for each code (error_for_status maps it back).
STATUS: dict[ErrorCode, int] = {
    ErrorCode.UPSTREAM_UNAVAILABLE: 503,
    ErrorCode.UPSTREAM_RATE_LIMITED: 429,
    ErrorCode.UPSTREAM_AUTH: 401,
    ErrorCode.UPSTREAM_BAD_REQUEST: 400,
}


@dataclass(frozen=True, slots=True)
class FaultPlan:
    delay_s: float = 0.0  # before the first chunk (and before a break after 0 chunks)
    chunks: int | None = None  # chunks sent before the break; None: no break, the whole reply
    stall: bool = False  # at the break: send nothing more, ever
    error: ProviderError | None = None  # at the break: fail with this

    @property
    def breaks(self) -> bool:
        return self.chunks is not None


NO_FAULT = FaultPlan()


def plan(fault: Fault | None, total_chunks: int, provider: str) -> FaultPlan:
    """What ``provider`` acts out for ``fault`` over a reply of ``total_chunks`` chunks."""
    if fault is None:
        return NO_FAULT
    delay = (fault.first_token_delay_ms or 0) / 1000
    if fault.stall_after_chunks is not None:
        return FaultPlan(delay, min(fault.stall_after_chunks, total_chunks), stall=True)
    if fault.error_after_chunks is not None:
        error = injected_error(fault, provider)
        return FaultPlan(delay, min(fault.error_after_chunks, total_chunks), error=error)
    if fault.truncate_after_chunks is not None:
        error = truncated(provider)
        return FaultPlan(delay, min(fault.truncate_after_chunks, total_chunks), error=error)
    return FaultPlan(delay)


def injected_error(fault: Fault, provider: str) -> ProviderError:
    """The typed error of ``error_after_chunks``, with ``retry_after_s`` as the upstream's hint."""
    code = ErrorCode(fault.error_code or DEFAULT_ERROR_CODE)
    why = f"injected fault (error_after_chunks = {fault.error_after_chunks})"
    retry_after = fault.retry_after_s
    if code in STATUS:
        status = STATUS[code]
        message = f"{provider} answered HTTP {status}: {why}"
        error = error_for_status(provider, status, message, retry_after)
    elif code is ErrorCode.UPSTREAM_PROTOCOL:
        error = UpstreamProtocolError(
            f"{provider} sent malformed data: {why}", provider=provider, retry_after=retry_after
        )
    else:
        error = UpstreamTimeout(f"{provider} timed out: {why}", provider=provider, retry_after=retry_after)
    return error


def truncated(provider: str) -> UpstreamProtocolError:
    """A stream that ended without its finish, reported as the HTTP providers' parsers do."""
    return UpstreamProtocolError(f"{provider} stream ended before its end signal", provider=provider)
