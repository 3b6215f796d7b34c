"""Ollama ``/api/chat``: NDJSON, one JSON object per line, ending with a ``"done": true`` object
that carries ``done_reason`` and the token counts. Errors are ``{"error": "<string>"}``, as the
whole body of a non-2xx answer or as the last line of a 200 stream.

Tool calls arrive whole, their arguments an object; thinking in ``message.thinking``
(docs/providers-typed-parts.md, "Ollama")."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec

from protocol.messages import ChatMessage, JsonFormat, JsonSchemaFormat, Reasoning, ToolChoiceName
from protocol.structured import split_data_url
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
from providers.dialects import bytes_only
from providers.dialects.bytes_only import call_names
from providers.dialects.openai import function_tool
from providers.errors import describe_status, error_for_status, retry_after
from providers.framing import NDJSONDecoder
from providers.stream_parser import FramedStreamParser
from providers.tool_calls import ToolCallTracker

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


class _Function(msgspec.Struct):
    name: str = ""
    arguments: Any = None  # an object


class _ToolCall(msgspec.Struct):
    function: _Function
    id: str | None = None  # "call_…" on current servers, absent on old ones


class _Message(msgspec.Struct):
    content: str | None = None
    thinking: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Chunk(msgspec.Struct):
    """One stream line, or the whole non-streaming body. Go's ``omitempty`` drops zero counts."""

    message: _Message | None = None
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int = 0
    eval_count: int = 0
    error: str | None = None


_chunk = msgspec.json.Decoder(_Chunk)
_json = msgspec.json.Encoder()


class _Turn:
    """The assistant message as its pieces arrive: reasoning, text and numbered whole calls."""

    def __init__(self) -> None:
        self.calls = ToolCallTracker()

    def message(self, message: _Message | None, out: list[StreamEvent]) -> None:
        if message is None:
            return
        if message.thinking:
            out.append(ReasoningDelta(message.thinking))
        if message.content:
            out.append(TextDelta(message.content))  # the done object may still carry text
        for call in message.tool_calls or ():
            arguments = _json.encode({} if call.function.arguments is None else call.function.arguments)
            self.calls.whole(self.calls.count, call.id, call.function.name, arguments.decode(), out)

    def finish(self, done_reason: str | None) -> str:
        # "" is what a closed connection gives; "load"/"unload" pass through lowercased. Ollama
        # says "stop" after calls too.
        reason = (done_reason or "stop").lower()
        return "tool_calls" if reason == "stop" and self.calls.count else reason


def _reported_error(provider: str, message: str, where: str) -> ProviderError:
    # A bare string, no status: "model 'x' not found" is the one we can tell apart.
    status = 404 if "not found" in message.lower() else 500
    return error_for_status(provider, status, f"{provider} reported an error{where}: {message}")


class OllamaStreamParser(FramedStreamParser[bytes]):
    end_signal = "done:true"

    def __init__(self, provider: str = "ollama") -> None:
        super().__init__(provider, NDJSONDecoder())
        self._turn = _Turn()

    def item(self, line: bytes, out: list[StreamEvent]) -> None:
        chunk = self.decode(_chunk, line, out)
        if chunk is None:
            return
        if chunk.error is not None:  # checked before done, as ollama-python does
            out.append(self.report(_reported_error(self.provider, chunk.error, " mid-stream")))
            return
        self._chunk(chunk, out)

    def _chunk(self, chunk: _Chunk, out: list[StreamEvent]) -> None:
        self._turn.message(chunk.message, out)
        if chunk.done:
            self.ended = True  # anything after done:true is ignored
            out.append(Usage(chunk.prompt_eval_count, chunk.eval_count))
            out.append(Finish(self._turn.finish(chunk.done_reason)))


def _message(message: ChatMessage, names: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.text}
    # Raw base64; https URLs were refused by ``unsupported``.
    if images := [inline[1] for image in message.images if (inline := split_data_url(image.url))]:
        out["images"] = images
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.call_id,
                # An object, as Ollama sends them; a call whose arguments were invalid goes back without.
                "function": {
                    "name": call.name,
                    "arguments": call.arguments if isinstance(call.arguments, dict) else {},
                },
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_name"] = names[message.tool_call_id]
        out["tool_call_id"] = message.tool_call_id
    return out


def _think(reasoning: Reasoning) -> bool | str:
    """Ollama's own levels have the effort's names; no budget exists, so a budget alone just
    switches thinking on."""
    return reasoning.effort or True


def _parts_fields(request: GenerationRequest) -> dict[str, Any]:
    """``tools`` (none for ``tool_choice: "none"``), ``think`` and ``format``."""
    fields: dict[str, Any] = {}
    if request.tools and request.tool_choice != "none":
        fields["tools"] = [function_tool(tool) for tool in request.tools]
    if request.reasoning is not None:
        fields["think"] = _think(request.reasoning)
    response_format = request.response_format
    if isinstance(response_format, JsonFormat):
        fields["format"] = "json"
    elif isinstance(response_format, JsonSchemaFormat):
        fields["format"] = response_format.schema
    return fields


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
        names = call_names(request.messages)
        payload: dict[str, Any] = {
            "model": request.model,
            "messages": [_message(m, names) for m in request.messages],
            "stream": stream,  # always explicit: Ollama streams when it is left out
            **_parts_fields(request),
        }
        if options := _options(request):
            payload["options"] = options
        return HttpRequest.json(self._chat_url, headers, payload)

    def unsupported(self, request: GenerationRequest) -> str | None:
        choice = request.tool_choice
        if choice is not None and choice not in ("auto", "none"):
            forced = f"`{choice.name}`" if isinstance(choice, ToolChoiceName) else '"required"'
            return f"tool_choice {forced}: {self.name} cannot force a tool call"
        return bytes_only.unsupported(request, self.name)

    def parser(self) -> OllamaStreamParser:
        return OllamaStreamParser(self.name)

    def completion(self, body: bytes) -> Completion | Failure:
        try:
            doc = _chunk.decode(body)
        except msgspec.DecodeError:
            return Failure(UpstreamProtocolError(f"{self.name} sent a malformed completion"))
        if doc.error is not None:
            return Failure(_reported_error(self.name, doc.error, ""))
        turn, events = _Turn(), list[StreamEvent]()
        turn.message(doc.message, events)
        text = "".join(e.text for e in events if type(e) is TextDelta)
        parts = [e for e in events if type(e) is not TextDelta]
        usage = Usage(doc.prompt_eval_count, doc.eval_count)
        return Completion(text, turn.finish(doc.done_reason), usage, parts)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        # The body is {"error": "<string>"}, which describe_status reads.
        return error_for_status(
            self.name, status, describe_status(self.name, status, body), retry_after(headers)
        )
