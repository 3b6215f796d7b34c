"""Turning a client's request into a provider and a GenerationRequest, or a typed refusal."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from protocol.errors import RETRYABLE, ErrorCode
from protocol.messages import ChatMessage, Error, Options, Plan, StreamRequest
from providers.base import GenerationRequest, Provider
from providers.prompts import prompt_messages, script_messages
from providers.registry import ProviderRegistry
from server.config import AgentConfig, Config


@dataclass(frozen=True, slots=True)
class Refusal:
    """A request refused before any stream exists."""

    code: ErrorCode
    message: str

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE

    def to_error(self, stream_id: str | None) -> Error:
        return Error(id=stream_id, code=self.code, message=self.message, retryable=self.retryable)


@dataclass(frozen=True, slots=True)
class Resolved:
    provider: Provider
    request: GenerationRequest


def resolve(request: StreamRequest, config: Config, registry: ProviderRegistry) -> Resolved | Refusal:
    agent: AgentConfig | None = None
    if request.agent is not None:
        agent = config.agents.get(request.agent)
        if agent is None:
            known = ", ".join(sorted(config.agents)) or "none"
            return Refusal(ErrorCode.UNKNOWN_AGENT, f"unknown agent `{request.agent}` (configured: {known})")
    name = request.provider or (agent.provider if agent else None) or config.streaming.default_provider
    provider = registry.get(name)
    if provider is None:
        known = ", ".join(registry.names)
        return Refusal(ErrorCode.UNKNOWN_PROVIDER, f"unknown provider `{name}` (available: {known})")
    if not provider.configured:
        return Refusal(
            ErrorCode.PROVIDER_NOT_CONFIGURED, f"provider `{name}` is not configured (no API key or endpoint)"
        )
    model = request.model or (agent.model if agent else None) or provider.default_model
    options = _options(agent.options if agent else None, request.options)
    generation = GenerationRequest(
        model=model,
        messages=_messages(request, agent),
        brief=request.brief,
        plan=request.plan if request.brief is None else (request.plan or Plan()),
        # The fault is no generation option: it travels apart, for the provider that acts it out.
        options=options if options.fault is None else msgspec.structs.replace(options, fault=None),
        fault=options.fault,
        tools=request.tools,
        tool_choice=request.tool_choice,
        response_format=request.response_format,
        reasoning=request.reasoning,
    )
    if problem := provider.unsupported(generation):
        return Refusal(ErrorCode.UNSUPPORTED_INPUT, f"provider `{name}` cannot take this request: {problem}")
    return Resolved(provider, generation)


def _messages(request: StreamRequest, agent: AgentConfig | None) -> list[ChatMessage]:
    if request.brief is not None:
        messages = script_messages(request.brief, request.plan or Plan())
    elif request.prompt is not None:
        messages = prompt_messages(request.prompt)
    else:
        messages = list(request.messages or ())
    if agent is not None and agent.system_prompt:
        messages.insert(0, ChatMessage(role="system", content=agent.system_prompt))
    return messages


def _options(base: Options | None, override: Options | None) -> Options:
    """The agent's options with the request's set fields on top. A request's ``fault`` replaces
    the agent's as a whole (``{}`` switches the agent's fault off)."""
    if base is None or override is None:
        return override or base or Options()
    merged = msgspec.structs.asdict(base)
    merged.update({k: v for k, v in msgspec.structs.asdict(override).items() if v is not None})
    return Options(**merged)
