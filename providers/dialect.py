"""What an HTTP provider module supplies: pure request building, parsing and error mapping.

``providers.http.client`` does the I/O for every dialect, so each provider module stays pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import msgspec

from providers.base import Completion, Failure, GenerationRequest, ProviderError, StreamEvent

_json = msgspec.json.Encoder()


class ProviderSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where and how to reach one upstream, from config and the provider's usual env vars."""

    api_key: str | None = None
    base_url: str
    default_model: str
    api_version: str | None = None


class HttpRequest(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"

    @classmethod
    def json(cls, url: str, headers: dict[str, str], payload: object) -> HttpRequest:
        return cls(
            url=url, headers={"content-type": "application/json", **headers}, body=_json.encode(payload)
        )


class StreamParser(Protocol):
    """Fed the response body as it arrives; returns the events each piece completes."""

    def feed(self, chunk: bytes) -> list[StreamEvent]: ...

    def close(self) -> list[StreamEvent]:
        """At EOF: the last events, or a Failure when the stream was cut short."""
        ...


class KeyedDialect:
    """What the dialects share: their settings, and being configured once a key is set."""

    name: str

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings

    @property
    def configured(self) -> bool:
        return bool(self.settings.api_key)

    def unsupported(self, request: GenerationRequest) -> str | None:
        return None


class Dialect(Protocol):
    name: str
    settings: ProviderSettings

    @property
    def configured(self) -> bool: ...

    def unsupported(self, request: GenerationRequest) -> str | None:
        """What in ``request`` this upstream is known not to take (an image URL where only bytes
        go), said before the stream starts; None when it can be sent."""
        ...

    def request(self, request: GenerationRequest, *, stream: bool) -> HttpRequest: ...

    def parser(self) -> StreamParser: ...

    def completion(self, body: bytes) -> Completion | Failure:
        """The non-streaming response body."""
        ...

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        """A non-2xx response, from its status, headers and body."""
        ...
