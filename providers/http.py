"""The one module that does HTTP: a pooled aiohttp session and the provider that drives dialects.

No read timeouts here: a total one would cut long generations, and aiohttp re-arms ``sock_read``
for every chunk received (a timer per chunk). Every upstream call runs inside a stream, whose own
first-token, idle and total timeouts (server.runner) govern it.
Closing the stream generator closes the upstream connection, which stops the generation.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Literal
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass

import aiohttp

from providers.base import (
    Completion,
    Failure,
    GenerationRequest,
    ProviderError,
    ProviderNotConfigured,
    StreamEvent,
    UpstreamProtocolError,
    UpstreamUnavailable,
)
from providers.dialect import Dialect, HttpRequest
from providers.errors import redact

MAX_ERROR_BODY = 64 * 1024
MAX_COMPLETION_BODY = 32 * 1024 * 1024


class HttpClient:
    """Owns the pooled session; started and closed by the application's lifespan."""

    def __init__(self, *, connect_timeout: float = 10) -> None:
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=None)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            # trust_env would look up netrc in a thread for every request; proxies are resolved
            # once per provider instead (proxy_for).
            connector=connector,
            timeout=self._timeout,
            auto_decompress=True,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("HttpClient used before start()")
        return self._session


class HttpProvider:
    """A Provider for any HTTP dialect."""

    streaming: Literal["native", "simulated"] = "native"

    def __init__(self, dialect: Dialect, client: HttpClient) -> None:
        self.dialect = dialect
        self.client = client
        self.name = dialect.name
        self.default_model = dialect.settings.default_model
        self.proxy = proxy_for(dialect.settings.base_url)

    @property
    def configured(self) -> bool:
        return self.dialect.configured

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        parser = self.dialect.parser()
        async with self._send(self.dialect.request(request, stream=True)) as response:
            await self._raise_for_status(response)
            content = response.content
            try:
                while chunk := await content.readany():  # b"" at the end
                    for event in parser.feed(chunk):
                        yield self._checked(event)
                for event in parser.close():
                    yield self._checked(event)
            except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, ConnectionError) as exc:
                raise UpstreamProtocolError(
                    f"{self.name} closed the connection mid-stream", provider=self.name
                ) from exc
            finally:
                # Not read to the end (cancelled, timed out, failed): drop the connection so the
                # provider sees the client go away and stops generating.
                if not content.at_eof():
                    response.close()

    async def complete(self, request: GenerationRequest) -> Completion:
        async with self._send(self.dialect.request(request, stream=False)) as response:
            await self._raise_for_status(response)
            body = await self._read(response, MAX_COMPLETION_BODY)
        result = self.dialect.completion(body)
        if isinstance(result, Failure):
            raise self._safe(result.error)
        return result

    def _send(self, http: HttpRequest) -> _Exchange:
        if not self.configured:
            raise ProviderNotConfigured(
                f"provider `{self.name}` is not configured (no API key or endpoint)", provider=self.name
            )
        return _Exchange(self, http)

    async def _raise_for_status(self, response: aiohttp.ClientResponse) -> None:
        if response.status < 300:
            return
        body = await self._read(response, MAX_ERROR_BODY)
        raise self._safe(self.dialect.error(response.status, response.headers, body))

    @staticmethod
    async def _read(response: aiohttp.ClientResponse, limit: int) -> bytes:
        body = bytearray()
        async for chunk in response.content.iter_any():
            body += chunk
            if len(body) > limit:
                break
        return bytes(body[:limit])

    def _checked(self, event: StreamEvent) -> StreamEvent:
        if type(event) is Failure:
            raise self._safe(event.error)
        return event

    def _safe(self, error: ProviderError) -> ProviderError:
        error.message = redact(error.message, [self.dialect.settings.api_key or ""])
        error.provider = self.name
        return error


def proxy_for(url: str) -> str | None:
    """The HTTP(S)_PROXY that applies to ``url`` (honouring NO_PROXY), read once at start-up."""
    parts = urlsplit(url)
    if not parts.hostname or proxy_bypass(parts.hostname):
        return None
    return getproxies_environment().get(parts.scheme)


class _Exchange:
    """``async with``: one request/response, with connection failures as typed errors."""

    def __init__(self, provider: HttpProvider, http: HttpRequest) -> None:
        self._provider = provider
        self._http = http
        self._response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        name, http = self._provider.name, self._http
        try:
            self._response = await self._provider.client.session.request(
                http.method, http.url, headers=http.headers, data=http.body, proxy=self._provider.proxy
            )
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamUnavailable(f"could not connect to {name}", provider=name) from exc
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            raise UpstreamUnavailable(f"{name} failed before answering", provider=name) from exc
        return self._response

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            self._response.release()
