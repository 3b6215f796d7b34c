"""Mapping upstream failures to typed ProviderErrors, with safe messages and retry hints."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import msgspec

from providers.base import (
    ProviderError,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)

MAX_MESSAGE = 500
# Things that look like credentials, whoever's they are: OpenAI/Anthropic "sk-…", Google "AIza…",
# bearer tokens. Upstreams echo (partially masked) keys in auth errors.
_SECRET_LIKE = re.compile(r"\b(?:sk-[A-Za-z0-9_\-*.]{6,}|AIza[0-9A-Za-z_\-]{20,}|Bearer\s+\S+)")


def error_for_status(
    provider: str, status: int, message: str, retry_after: float | None = None
) -> ProviderError:
    """The typed error for an upstream HTTP status; ``retryable`` follows the status."""
    retryable = None  # the class's default
    if status in (401, 402, 403):
        cls: type[ProviderError] = UpstreamAuthError
    elif status == 429:
        cls = UpstreamRateLimited
    elif status in (408, 409) or status >= 500:
        cls = UpstreamUnavailable
    elif 400 <= status < 500:
        cls = UpstreamBadRequest
    else:  # a redirect, not followed: the base URL is wrong, and every try gets the same answer
        cls, retryable = UpstreamProtocolError, False
    return cls(message, provider=provider, status=status, retryable=retryable, retry_after=retry_after)


def reported_status(code: object) -> int | None:
    """An error object's numeric ``code`` as the HTTP status it stands for, when it is one: Google
    and OpenRouter (among other OpenAI-compatible servers) report errors inside a 200 stream so;
    LiteLLM's proxy writes the number as a string."""
    if isinstance(code, str) and code.isascii() and code.isdigit():
        code = int(code)
    return code if type(code) is int and 400 <= code <= 599 else None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def body_message(body: bytes) -> str | None:
    """The human message in a JSON error body of any of the providers' shapes, if any."""
    try:
        doc: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if isinstance(doc, list) and len(doc) == 1:  # Gemini's array framing
        doc = doc[0]
    if not isinstance(doc, dict):
        return None
    error = doc.get("error", doc)
    if isinstance(error, str):
        return error
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return None


def describe_status(provider: str, status: int, body: bytes) -> str:
    message = body_message(body)
    if message is None:
        text = body[:200].decode("utf-8", "replace").strip()
        message = text if text and "<" not in text[:1] else "no details"
    return f"{provider} answered HTTP {status}: {message}"


def redact(message: str, secrets: Iterable[str] = ()) -> str:
    """A message safe to show a client: no configured secret, nothing key-like, bounded."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "[redacted]")
    message = _SECRET_LIKE.sub(lambda m: "[redacted]" + m[0][len(m[0].rstrip(".")) :], message)
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"
