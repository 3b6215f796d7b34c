"""The provider that drives HTTP dialects over the gateway's client (providers.http.client).

Closing the stream generator drops the upstream connection, which stops the generation. Every
upstream call runs inside a stream, whose first-token, idle and total timeouts govern it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Iterator
from contextlib import contextmanager
from typing import Literal
from urllib.parse import urlsplit
from urllib.request import getproxies_environment, proxy_bypass

from providers.base import (
    Completion,
    EventSink,
    Failure,
    GenerationRequest,
    ProviderError,
    ProviderNotConfigured,
    StreamEvent,
    UpstreamProtocolError,
    UpstreamUnavailable,
)
from providers.dialect import Dialect, HttpRequest, StreamParser
from providers.errors import redact
from providers.http.client import HttpClient, Response
from providers.http.errors import (
    BadRequest,
    ConnectFailed,
    HttpError,
    PoolTimeout,
    UnsupportedEncoding,
    UnsupportedProxy,
)

MAX_ERROR_BODY = 64 * 1024
MAX_COMPLETION_BODY = 32 * 1024 * 1024


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

    def unsupported(self, request: GenerationRequest) -> str | None:
        return self.dialect.unsupported(request)

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        parser = self.dialect.parser()
        response = await self._send(self.dialect.request(request, stream=True))
        with self._reading(response, "mid-stream"):
            await self._check_head(response)
            while chunk := await response.read_some():  # b"" at the end
                for event in parser.feed(chunk):
                    yield self._checked(event)
            for event in parser.close():
                yield self._checked(event)

    async def relay(self, request: GenerationRequest, sink: EventSink) -> None:
        """``stream``'s events pushed to ``sink`` from the connection's data callback."""
        feed = _Feed(self.dialect.parser(), sink)
        response = await self._send(self.dialect.request(request, stream=True))
        with self._reading(response, "mid-stream"):
            await self._check_head(response)
            while await response.pipe(feed):  # held: the sink is behind, or the stream failed
                self._raise_failure(feed)
                await sink.caught_up()
            feed.deliver(feed.parser.close())
            self._raise_failure(feed)

    async def complete(self, request: GenerationRequest) -> Completion:
        response = await self._send(self.dialect.request(request, stream=False))
        with self._reading(response, "mid-answer"):
            await self._check_head(response)
            body = await response.read(MAX_COMPLETION_BODY)
        result = self.dialect.completion(body)
        if isinstance(result, Failure):
            raise self._safe(result.error)
        return result

    @contextmanager
    def _reading(self, response: Response, where: str) -> Iterator[None]:
        """A broken body as ``upstream_protocol``. The response is closed at the end: not read to
        the end (cancelled, timed out, failed), its connection is dropped, so the provider sees
        the client go away and stops generating."""
        try:
            yield
        except HttpError as exc:
            raise UpstreamProtocolError(
                f"{self.name} closed the connection {where}", provider=self.name
            ) from exc
        finally:
            response.close()

    async def _send(self, http: HttpRequest) -> Response:
        """The response, its head read; connection failures as typed errors."""
        if not self.configured:
            raise ProviderNotConfigured(
                f"provider `{self.name}` is not configured (no API key or endpoint)", provider=self.name
            )
        try:
            return await self.client.request(http.method, http.url, http.headers, http.body, proxy=self.proxy)
        except ConnectFailed as exc:
            raise UpstreamUnavailable(f"could not connect to {self.name}", provider=self.name) from exc
        except PoolTimeout as exc:  # every connection allowed is busy: retryable, after a backoff
            message = f"no connection to {self.name} came free in time ([upstream] max_connections)"
            raise UpstreamUnavailable(message, provider=self.name) from exc
        except UnsupportedEncoding as exc:
            # Not retryable: the server, or a proxy in front of it, ignored `accept-encoding:
            # identity`. Every try would get the same answer until that hop is fixed.
            message = f"{self.name} sent a compressed response, which the gateway does not decode"
            raise UpstreamProtocolError(message, provider=self.name, retryable=False) from exc
        except (BadRequest, UnsupportedProxy) as exc:  # e.g. a key with its newline: fix the config
            message = f"provider `{self.name}` is misconfigured: {exc}"
            raise ProviderNotConfigured(message, provider=self.name) from exc
        except HttpError as exc:
            raise UpstreamUnavailable(f"{self.name} failed before answering", provider=self.name) from exc

    async def _check_head(self, response: Response) -> None:
        """Raise for an error status, or for a web page where the API's answer should be."""
        if response.status >= 300:
            body = await response.read(MAX_ERROR_BODY)
            raise self._safe(self.dialect.error(response.status, response.headers, body))
        if response.headers.get("content-type", "").lower().startswith("text/html"):
            # A captive portal, a proxy's sign-in page, a base URL that names a website: not
            # retryable, as every try would get the same page.
            message = f"{self.name} answered with a web page, not its API (check its base URL)"
            raise UpstreamProtocolError(message, provider=self.name, retryable=False)

    def _checked(self, event: StreamEvent) -> StreamEvent:
        if type(event) is Failure:
            raise self._safe(event.error)
        return event

    def _raise_failure(self, feed: _Feed) -> None:
        failure = feed.failure
        if isinstance(failure, ProviderError):
            raise self._safe(failure)
        if failure is not None:
            raise failure  # a bug in the sink: the stream ends with `internal`, and it is logged

    def _safe(self, error: ProviderError) -> ProviderError:
        error.message = redact(error.message, [self.dialect.settings.api_key or ""])
        error.provider = self.name
        return error


class _Feed:
    """Body bytes → the dialect's parser → the sink, inside the connection's data callback.
    Nothing is raised there: a failure is kept, reading stops, and the task raises it."""

    __slots__ = ("failure", "parser", "sink")

    def __init__(self, parser: StreamParser, sink: EventSink) -> None:
        self.parser = parser
        self.sink = sink
        self.failure: Exception | None = None

    def __call__(self, chunk: bytes) -> bool:
        """True to stop reading for now: the sink is behind, or the stream failed."""
        try:
            return self.deliver(self.parser.feed(chunk))
        except Exception as exc:  # raised from the task, not the I/O callback
            self.failure = exc
            return True

    def deliver(self, events: Iterable[StreamEvent]) -> bool:
        behind = False
        for event in events:
            if type(event) is Failure:
                self.failure = event.error
                return True
            behind = self.sink.push(event) or behind
        return behind


def proxy_for(url: str) -> str | None:
    """The HTTP(S)_PROXY that applies to ``url`` (honouring NO_PROXY), read once at start-up."""
    parts = urlsplit(url)
    if not parts.hostname or proxy_bypass(parts.hostname):
        return None
    return getproxies_environment().get(parts.scheme)
