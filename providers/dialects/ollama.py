"""Ollama ``/api/chat``: NDJSON, one JSON object per line, ending with a ``"done": true`` object
that carries ``done_reason`` and the token counts. Errors are ``{"error": "<string>"}``, as the
whole body of a non-2xx answer or as the last line of a 200 stream."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec

from providers.base import (
    Completion,
    Failure,
    Finish,
    GenerationRequest,
    ProviderError,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    UpstreamProtocolError,
    Usage,
)
from providers.dialect import HttpRequest, KeyedDialect, ProviderSettings
from providers.errors import describe_status, error_for_status, retry_after
from providers.framing import NDJSONDecoder
from providers.stream_parser import FramedStreamParser

DEFAULT_BASE_URL = "http://127.0.0.1:11434"
DEFAULT_MODEL = "llama3.2"
DEFAULT_PORT = 11434


def base_url(host: str) -> str:
    """``OLLAMA_HOST`` read the way ollama's own clients read it (ollama-python ``_parse_host``):
    scheme defaults to http; the port to 11434, or to 80/443 when a scheme is written; a
    path prefix is kept (reverse proxies), without its slashes."""
    host = host.strip()
    scheme, sep, rest = host.partition("://")
    port = DEFAULT_PORT
    if not sep:
        scheme, rest = "http", host
    elif scheme.lower() in ("http", "https"):
        scheme = scheme.lower()
        port = 443 if scheme == "https" else 80
    split = urlsplit(f"{scheme}://{rest}")
    with contextlib.suppress(ValueError):  # a bad port keeps the default, as ollama's Go client does
        port = split.port or port
    path = split.path.strip("/")
    return f"{scheme}://{_client_host(split.hostname)}:{port}" + (f"/{path}" if path else "")


def _client_host(name: str | None) -> str:
    """A listen address as a client dials it: an unspecified address means this machine."""
    if not name:
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return name
    if address.is_unspecified:
        return "127.0.0.1" if address.version == 4 else "[::1]"
    return f"[{name}]" if address.version == 6 else name


class _Message(msgspec.Struct):
    content: str | None = None
    thinking: str | None = None


class _Chunk(msgspec.Struct):
    """One stream line, or the whole non-streaming body. Go's ``omitempty`` drops zero counts."""

    message: _Message | None = None
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int = 0
    eval_count: int = 0
    error: str | None = None


_chunk = msgspec.json.Decoder(_Chunk)


def _finish_reason(done_reason: str | None) -> str:
    # "" is what a closed connection gives; "load"/"unload" pass through lowercased.
    return (done_reason or "stop").lower()


def _reported_error(provider: str, message: str, where: str) -> ProviderError:
    # A bare string, no status: "model 'x' not found" is the one we can tell apart.
    status = 404 if "not found" in message.lower() else 500
    return error_for_status(provider, status, f"{provider} reported an error{where}: {message}")


class OllamaStreamParser(FramedStreamParser[bytes]):
    end_signal = "done:true"

    def __init__(self, provider: str = "ollama") -> None:
        super().__init__(provider, NDJSONDecoder())

    def item(self, line: bytes, out: list[StreamEvent]) -> None:
        chunk = self.decode(_chunk, line, out)
        if chunk is None:
            return
        if chunk.error is not None:  # checked before done, as ollama-python does
            out.append(self.report(_reported_error(self.provider, chunk.error, " mid-stream")))
            return
        self._chunk(chunk, out)

    def _chunk(self, chunk: _Chunk, out: list[StreamEvent]) -> None:
        message = chunk.message
        if message is not None and message.thinking:
            out.append(ReasoningDelta(message.thinking))
        if message is not None and message.content:
            out.append(TextDelta(message.content))  # the done object may still carry text
        if chunk.done:
            self.ended = True  # anything after done:true is ignored
            out.append(Usage(chunk.prompt_eval_count, chunk.eval_count))
            out.append(Finish(_finish_reason(chunk.done_reason)))


def _options(request: GenerationRequest) -> dict[str, Any]:
    options = request.options
    stop = [options.stop] if isinstance(options.stop, str) else options.stop
    named = {
        "temperature": options.temperature,
        "top_p": options.top_p,
        "num_predict": options.max_tokens,
        "stop": stop,
    }
    return {name: value for name, value in named.items() if value is not None}


class OllamaDialect(KeyedDialect):
    name = "ollama"

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        self._chat_url = base_url(settings.base_url) + "/api/chat"

    @property
    def configured(self) -> bool:
        return True  # a local server needs no key; whether it is up shows when it is called

    def request(self, request: GenerationRequest, *, stream: bool) -> HttpRequest:
        # ollama.com cloud takes a bearer key; a local server ignores the header's absence.
        headers = {"authorization": f"Bearer {self.settings.api_key}"} if self.settings.api_key else {}
        payload: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.text} for m in request.messages],
            "stream": stream,  # always explicit: Ollama streams when it is left out
        }
        if options := _options(request):
            payload["options"] = options
        return HttpRequest.json(self._chat_url, headers, payload)

    def parser(self) -> OllamaStreamParser:
        return OllamaStreamParser(self.name)

    def completion(self, body: bytes) -> Completion | Failure:
        try:
            doc = _chunk.decode(body)
        except msgspec.DecodeError:
            return Failure(UpstreamProtocolError(f"{self.name} sent a malformed completion"))
        if doc.error is not None:
            return Failure(_reported_error(self.name, doc.error, ""))
        text = (doc.message.content if doc.message is not None else None) or ""
        usage = Usage(doc.prompt_eval_count, doc.eval_count)
        return Completion(text, _finish_reason(doc.done_reason), usage)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        # The body is {"error": "<string>"}, which describe_status reads.
        return error_for_status(
            self.name, status, describe_status(self.name, status, body), retry_after(headers)
        )
