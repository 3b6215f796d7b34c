"""The protocol's stable error codes and the HTTP status each maps to."""

from enum import StrEnum


class ErrorCode(StrEnum):
    BAD_MESSAGE = "bad_message"
    UNSUPPORTED_INPUT = "unsupported_input"  # valid, but the provider cannot serve it (v1.1)
    UNKNOWN_PROVIDER = "unknown_provider"
    PROVIDER_NOT_CONFIGURED = "provider_not_configured"
    UNKNOWN_AGENT = "unknown_agent"
    DUPLICATE_STREAM = "duplicate_stream"
    UNKNOWN_STREAM = "unknown_stream"
    TOO_MANY_STREAMS = "too_many_streams"
    SERVER_BUSY = "server_busy"
    UPSTREAM_AUTH = "upstream_auth"
    UPSTREAM_RATE_LIMITED = "upstream_rate_limited"
    UPSTREAM_BAD_REQUEST = "upstream_bad_request"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    UPSTREAM_PROTOCOL = "upstream_protocol"
    TIMEOUT = "timeout"
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "rate_limited"
    SHUTTING_DOWN = "shutting_down"
    STREAM_EXPIRED = "stream_expired"
    STREAM_LOST = "stream_lost"
    INTERNAL = "internal"


# Status of an HTTP response that carries the error instead of a stream. Upstream failures
# are the gateway's upstream failing, hence 502, except where the client can act on them.
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_MESSAGE: 400,
    ErrorCode.UNSUPPORTED_INPUT: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.UNKNOWN_PROVIDER: 404,
    ErrorCode.UNKNOWN_AGENT: 404,
    ErrorCode.UNKNOWN_STREAM: 404,
    ErrorCode.DUPLICATE_STREAM: 409,
    ErrorCode.TOO_MANY_STREAMS: 429,
    ErrorCode.SERVER_BUSY: 503,
    ErrorCode.PROVIDER_NOT_CONFIGURED: 503,
    ErrorCode.UPSTREAM_AUTH: 502,
    ErrorCode.UPSTREAM_RATE_LIMITED: 429,
    ErrorCode.UPSTREAM_BAD_REQUEST: 400,
    ErrorCode.UPSTREAM_UNAVAILABLE: 502,
    ErrorCode.UPSTREAM_PROTOCOL: 502,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.SHUTTING_DOWN: 503,
    ErrorCode.STREAM_EXPIRED: 404,
    ErrorCode.STREAM_LOST: 502,
    ErrorCode.INTERNAL: 500,
}

# Codes a client may simply try again later (the default of `retryable`; an upstream error
# follows the upstream's status instead).
RETRYABLE: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.TOO_MANY_STREAMS,
        ErrorCode.SERVER_BUSY,
        ErrorCode.UPSTREAM_RATE_LIMITED,
        ErrorCode.UPSTREAM_UNAVAILABLE,
        ErrorCode.UPSTREAM_PROTOCOL,
        ErrorCode.TIMEOUT,
        ErrorCode.RATE_LIMITED,
        ErrorCode.SHUTTING_DOWN,
        ErrorCode.STREAM_LOST,
        ErrorCode.INTERNAL,
    }
)
