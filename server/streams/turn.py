"""What a stream's v1.1 parts add up to by its end: the fields ``done`` gains.

The runner logs each part as it comes; this keeps what ``done`` repeats (every call, the whole
reasoning), what is never forwarded but still counts (reasoning a start did not ask for), and the
provider's state. A stream carries a kind of part only when its start asked for it, so a v1
client's ``done`` gains nothing.
"""

from __future__ import annotations

from typing import Any

from protocol.messages import JsonFormat, JsonSchemaFormat, ToolCall
from protocol.structured import parse_object
from providers.base import GenerationRequest, ToolCallEnd
from providers.tokens import estimate_tokens, tokens_for_chars


class Turn:
    __slots__ = ("calls", "provider_state", "reasoning", "reasoning_chars")

    def __init__(self) -> None:
        self.calls: list[ToolCall] = []
        self.reasoning: list[str] = []  # kept only when forwarded
        self.reasoning_chars = 0  # all of it, forwarded or not: it counts in usage estimates
        self.provider_state: str | None = None

    def call_ended(self, end: ToolCallEnd) -> None:
        self.calls.append(
            ToolCall(call_id=end.call_id, name=end.name, arguments=end.arguments, arguments_error=end.error)
        )

    def finish_reason(self, reported: str) -> str:
        """``tool_calls`` whenever the turn ended so the client can run tools, whatever the
        provider called it (Gemini and Ollama say a plain stop); a cut-off call stays ``length``."""
        return "tool_calls" if self.calls and reported == "stop" else reported

    def estimated_completion_tokens(self, content: str) -> tuple[int, int | None]:
        """(completion tokens, reasoning tokens) when the provider reported none, e.g. after a
        cancel: the text, the reasoning and the calls' arguments all were generated."""
        arguments = sum(len(str(call.arguments)) for call in self.calls)
        reasoning = tokens_for_chars(self.reasoning_chars) if self.reasoning_chars else None
        return estimate_tokens(content) + tokens_for_chars(arguments) + (reasoning or 0), reasoning

    def done_fields(self, request: GenerationRequest, content: str) -> dict[str, Any]:
        """The v1.1 fields of ``done``, each only when the start asked for its part."""
        fields: dict[str, Any] = {}
        if request.tools is not None:
            fields["tool_calls"] = self.calls
        if request.reasoning is not None:
            fields["reasoning"] = "".join(self.reasoning)
        if (request.tools is not None or request.reasoning is not None) and self.provider_state is not None:
            fields["provider_state"] = self.provider_state
        response_format = request.response_format
        if isinstance(response_format, JsonFormat | JsonSchemaFormat):
            schema = response_format.schema if isinstance(response_format, JsonSchemaFormat) else None
            value, error = parse_object(content, schema)
            if error is None:
                fields["object"] = value
            else:
                fields["object_error"] = error
        return fields
