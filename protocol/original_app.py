"""The original application's two streaming routes: their camelCase bodies and event formats,
encoded from the same protocol v1 events as every other transport."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from protocol.messages import (
    Brief,
    ChatMessage,
    Chunk,
    Density,
    Done,
    DurationSeconds,
    Error,
    Notice,
    Pacing,
    Plan,
    ServerMessage,
    ShortText,
    StartAck,
    StreamRequest,
)
from protocol.sse import sse_frame

_encoder = msgspec.json.Encoder()


class PlanSpec(msgspec.Struct, frozen=True, rename="camel"):
    """``planSpec``: ``Plan`` in camelCase (msgspec does not rename inherited fields)."""

    target_duration_seconds: DurationSeconds = 60
    pacing: Pacing = "conversational"
    density: Density = "balanced"
    style: ShortText = "explainer"


class ScriptStreamBody(msgspec.Struct, frozen=True, rename="camel"):
    """Body of ``POST /api/scripts/generate-stream``."""

    brief: Brief
    plan_spec: PlanSpec = PlanSpec()
    provider_name: Annotated[str, Meta(min_length=1, max_length=128)] | None = None

    def to_request(self) -> StreamRequest:
        plan = Plan(**msgspec.structs.asdict(self.plan_spec))
        return StreamRequest(provider=self.provider_name, brief=self.brief, plan=plan)


class AgentChatBody(msgspec.Struct, frozen=True, rename="camel"):
    """Body of ``POST /api/agents/{agentId}/chat/stream``."""

    prompt: Annotated[str, Meta(min_length=1)]
    conversation_history: Annotated[list[ChatMessage], Meta(max_length=1000)] = []
    additional_context: str | dict[str, Any] | None = None

    def to_request(self, agent: str) -> StreamRequest:
        messages = list(self.conversation_history)
        if self.additional_context:
            context = self.additional_context
            text = context if isinstance(context, str) else _encoder.encode(context).decode()
            messages.append(ChatMessage(role="system", content=f"Additional context: {text}"))
        messages.append(ChatMessage(role="user", content=self.prompt))
        return StreamRequest(agent=agent, messages=messages)


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return sse_frame(name, _encoder.encode(payload))


def _usage_camel(done: Done) -> dict[str, Any]:
    u, m = done.usage, done.metrics
    return {
        "provider": m.provider,
        "model": m.model,
        "usage": {
            "promptTokens": u.prompt_tokens,
            "completionTokens": u.completion_tokens,
            "totalTokens": u.total_tokens,
            "estimated": u.estimated,
        },
        "ttftMs": m.ttft_ms,
        "durationMs": m.duration_ms,
        "tokensPerSecond": m.tokens_per_second,
        "estimatedCostUsd": m.estimated_cost_usd,
    }


def _error(error: Error) -> bytes:
    return _event("error", {"message": error.message, "code": error.code.value})


class ScriptEventEncoder:
    """``chunk`` {provider, content, accumulated, tokenIndex, isFinal, metadata}, a last chunk with
    ``isFinal: true`` and the whole text, then ``done`` {finishReason, metadata}; or ``error``."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._provider = ""
        self._model = ""

    def __call__(self, message: ServerMessage) -> bytes:
        if type(message) is StartAck or type(message) is Notice:
            self._provider, self._model = message.provider, message.model  # Notice: a failover
            return b""
        if type(message) is Chunk:
            self._parts.append(message.content)
            return self._chunk(message.content, message.seq - 1, False, {"seq": message.seq})
        if type(message) is Done:
            final = self._chunk("", message.seq - 1, True, {"finishReason": message.finish_reason})
            done = {"finishReason": message.finish_reason, "metadata": _usage_camel(message)}
            return final + _event("done", done)
        if type(message) is Error:
            return _error(message)
        return b""

    def _chunk(self, content: str, index: int, final: bool, extra: dict[str, Any]) -> bytes:
        return _event(
            "chunk",
            {
                "provider": self._provider,
                "content": content,
                "accumulated": "".join(self._parts),
                "tokenIndex": index,
                "isFinal": final,
                "metadata": {"model": self._model, **extra},
            },
        )


def agent_chat_event(message: ServerMessage) -> bytes:
    """``token`` {content}, then ``done`` {totalTokens, finishReason}; or ``error``."""
    if type(message) is Chunk:
        return _event("token", {"content": message.content})
    if type(message) is Done:
        return _event(
            "done", {"totalTokens": message.usage.total_tokens, "finishReason": message.finish_reason}
        )
    if type(message) is Error:
        return _error(message)
    return b""
