"""What Gemini and Ollama share: they take images only as bytes, and a tool result names the tool
it answers, where the protocol names only the call (``tool_call_id``)."""

from __future__ import annotations

from protocol.messages import ChatMessage
from protocol.structured import split_data_url
from providers.base import GenerationRequest


def call_names(messages: list[ChatMessage]) -> dict[str, str]:
    """The name of every call the assistant messages made, by ``call_id``."""
    return {call.call_id: call.name for m in messages for call in m.tool_calls or ()}


def unsupported(request: GenerationRequest, provider: str) -> str | None:
    """An https image (the gateway never fetches one), or a tool result whose call is not in the
    conversation (its tool's name is unknown)."""
    messages = request.messages
    if any(split_data_url(image.url) is None for m in messages for image in m.images):
        return f"image URLs: {provider} takes only inline data: images"
    names = call_names(messages)
    for m in messages:
        if m.role == "tool" and m.tool_call_id not in names:
            return (
                f"the tool result for `{m.tool_call_id}` answers no call of an assistant message: "
                f"{provider} needs the name of the tool it answers"
            )
    return None
