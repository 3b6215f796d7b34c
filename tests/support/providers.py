"""Fake providers for the server's tests: upstream behaviours rulebased cannot produce."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncGenerator
from typing import Literal

from providers.base import (
    Completion,
    Finish,
    GenerationRequest,
    GeneratorProvider,
    StreamEvent,
    TextDelta,
    UpstreamRateLimited,
    Usage,
)


class ScriptedProvider(GeneratorProvider):
    """Yields ``count`` chunks of ``text`` (or random text of its length), ``delay`` seconds
    apart, after waiting ``first_delay``; optionally fails after ``fail_after`` chunks. Records
    whether the upstream was closed (``aclose``), which is what cancellation must do."""

    streaming: Literal["native", "simulated"] = "native"
    configured = True
    default_model = "scripted-1"

    def __init__(
        self,
        name: str = "scripted",
        *,
        text: str = "x",
        count: int = 10,
        delay: float = 0.0,
        first_delay: float = 0.0,
        fail_after: int | None = None,
        incompressible: bool = False,
    ) -> None:
        self.name = name
        self.text, self.count, self.delay, self.first_delay = text, count, delay, first_delay
        self.fail_after = fail_after
        self.incompressible = incompressible  # random text, so WebSocket compression cannot shrink it
        self.emitted: list[str] = []
        self.closed = 0
        self.finished = 0

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        try:
            await asyncio.sleep(self.first_delay)
            for i in range(self.count):
                if i == self.fail_after:
                    raise UpstreamRateLimited("slow down", provider=self.name, status=429, retry_after=2.0)
                if i and self.delay:
                    await asyncio.sleep(self.delay)
                text = secrets.token_hex(len(self.text) // 2) if self.incompressible else self.text
                self.emitted.append(text)
                yield TextDelta(text)
            yield Usage(prompt_tokens=3, completion_tokens=self.count)
            yield Finish("stop")
            self.finished += 1
        finally:
            self.closed += 1

    async def complete(self, request: GenerationRequest) -> Completion:
        return Completion(self.text * self.count, "stop", Usage(3, self.count))


class PartsProvider(GeneratorProvider):
    """Yields a fixed list of events (v1.1 parts included), ``delay`` seconds apart, and
    records each request it served. ``refuse`` is what ``unsupported`` says."""

    streaming: Literal["native", "simulated"] = "native"
    configured = True
    default_model = "parts-1"

    def __init__(
        self, events: list[StreamEvent], *, name: str = "parts", delay: float = 0.0, refuse: str | None = None
    ) -> None:
        self.name = name
        self.events, self.delay, self.refuse = events, delay, refuse
        self.requests: list[GenerationRequest] = []

    def unsupported(self, request: GenerationRequest) -> str | None:
        return self.refuse

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        self.requests.append(request)
        for i, event in enumerate(self.events):
            if i and self.delay:
                await asyncio.sleep(self.delay)
            yield event

    async def complete(self, request: GenerationRequest) -> Completion:
        self.requests.append(request)
        text = "".join(e.text for e in self.events if isinstance(e, TextDelta))
        parts: list[StreamEvent] = [e for e in self.events if not isinstance(e, TextDelta | Usage | Finish)]
        finish = next((e.reason for e in self.events if isinstance(e, Finish)), "stop")
        return Completion(text, finish, None, parts)
