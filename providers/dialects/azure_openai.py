"""Azure OpenAI chat completions: OpenAI's stream format from a deployment URL with an
``api-key`` header. Its extra chunks (prompt filter results with empty ``choices``, filter
annotations) carry no text, and a late filter hit ends the stream with ``content_filter``. The
request body is OpenAI's (tools, formats, images, ``reasoning_effort``) without ``model``."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

import msgspec

from providers.base import Completion, Failure, GenerationRequest, ProviderError
from providers.dialect import HttpRequest, KeyedDialect
from providers.dialects.openai import ChatStreamParser, chat_payload, parse_completion
from providers.errors import error_for_status, retry_after

DEFAULT_API_VERSION = "2024-10-21"
DEFAULT_MODEL = "gpt-4o-mini"  # the deployment name; Azure routes by deployment, not model


class _Inner(msgspec.Struct):
    code: str | None = None


class _Error(msgspec.Struct):
    message: str = "error"
    code: str | None = None
    innererror: _Inner | None = None
    inner_error: _Inner | None = None


class _ErrorBody(msgspec.Struct):
    error: _Error


def _message(status: int, body: bytes) -> str:
    try:
        error = msgspec.json.decode(body, type=_ErrorBody).error
    except msgspec.DecodeError:
        return f"azure_openai answered HTTP {status}"
    inner = error.innererror or error.inner_error
    if error.code == "content_filter" or (inner and inner.code == "ResponsibleAIPolicyViolation"):
        return f"azure_openai content filter blocked the prompt: {error.message}"
    return f"azure_openai answered HTTP {status}: {error.message}"


class AzureOpenAIDialect(KeyedDialect):
    name = "azure_openai"

    @property
    def configured(self) -> bool:
        return bool(self.settings.api_key and self.settings.base_url)

    def request(self, request: GenerationRequest, *, stream: bool) -> HttpRequest:
        deployment = quote(request.model, safe="")  # one path segment, whatever the name holds
        version = self.settings.api_version or DEFAULT_API_VERSION
        url = (
            f"{self.settings.base_url.rstrip('/')}/openai/deployments/{deployment}"
            f"/chat/completions?api-version={quote(version, safe='')}"
        )
        headers = {"api-key": self.settings.api_key or ""}
        # Dated api-versions predate max_completion_tokens for most deployments: keep max_tokens,
        # except for a reasoning deployment (asked for reasoning), which refuses it; the
        # api-versions that take reasoning_effort take max_completion_tokens too.
        field = "max_tokens" if request.reasoning is None else "max_completion_tokens"
        payload = chat_payload(request, stream=stream, model=None, max_tokens_field=field)
        return HttpRequest.json(url, headers, payload)

    def parser(self) -> ChatStreamParser:
        return ChatStreamParser(self.name)

    def completion(self, body: bytes) -> Completion | Failure:
        return parse_completion(self.name, body)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return error_for_status(self.name, status, _message(status, body), retry_after(headers))
