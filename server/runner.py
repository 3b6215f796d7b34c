"""One stream: runs a provider as an asyncio task and appends its events to the stream's log.

The runner owns seq numbering (through the log), accumulation, usage, metrics, cost and the
three timeouts. Cancelling (client ``cancel``, disconnect, timeout) cancels the task; closing the
provider's generator closes the upstream response before the terminal event is written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass

from protocol.errors import ErrorCode
from protocol.messages import Done, Error, Metrics, StartAck, Usage
from providers.base import (
    Failure,
    Finish,
    GenerationRequest,
    Provider,
    ProviderError,
    StreamEvent,
    TextDelta,
)
from providers.base import Usage as ProviderUsage
from providers.tokens import estimate_tokens
from server.eventlog import EventLog

log = logging.getLogger("tokenwire.stream")


@dataclass(frozen=True, slots=True)
class StreamSettings:
    stream_timeout: float
    first_token_timeout: float
    idle_timeout: float
    buffer_size: int
    streaming_enabled: bool = True


CostFn = Callable[[str, int, int], float | None]  # (model, prompt, completion) -> USD


class Stream:
    """A running generation. Its ``log`` is what every transport reads."""

    def __init__(
        self,
        stream_id: str,
        provider: Provider,
        request: GenerationRequest,
        settings: StreamSettings,
        cost: CostFn,
    ) -> None:
        self.id = stream_id
        self.provider = provider
        self.request = request
        self.settings = settings
        self._cost = cost
        self.log = EventLog()
        self._loop = asyncio.get_running_loop()
        # Deadlines run on the loop's clock (call_at); metrics on perf_counter, because uvloop's
        # clock has millisecond resolution.
        self._accepted_at = self._loop.time()
        self._accepted_perf = time.perf_counter()
        self._first_token_at: float | None = None
        self._first_token_perf = 0.0
        self._last_event_at = self._accepted_at
        self._reader_wait = False
        self._stop_reason: str | None = None  # "cancelled" or a timeout description
        self._timer: asyncio.TimerHandle | None = None
        self._usage: ProviderUsage | None = None
        self._task: asyncio.Task[None] | None = None

    # ---- control -----------------------------------------------------------------------------

    def start(self, on_end: Callable[[Stream], None]) -> None:
        """Run the provider in a task of its own and acknowledge at once. The task is created
        first so that its first step (sending the upstream request) runs before the ack's write."""
        self._task = self._loop.create_task(self._run(), name=f"stream:{self.id}")
        self.log.append(StartAck(id=self.id, seq=0, provider=self.provider.name, model=self.request.model))
        self._task.add_done_callback(lambda _: self._finished(on_end))
        self._arm_watchdog()

    def cancel(self) -> None:
        """Abort the upstream; the stream ends with ``done``/``cancelled``. No-op once ended."""
        self._stop("cancelled")

    @property
    def ended(self) -> bool:
        return self.log.ended

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    def _stop(self, reason: str) -> None:
        if self._task is None or self._task.done() or self._stop_reason is not None:
            return
        self._stop_reason = reason
        self._task.cancel()

    # ---- the task ----------------------------------------------------------------------------

    async def _run(self) -> None:
        finish = "stop"
        try:
            async with aclosing(self._events()) as events:
                async for event in events:
                    self._last_event_at = self._loop.time()
                    if type(event) is TextDelta:
                        await self._text(event.text)
                    elif type(event) is ProviderUsage:
                        self._usage = event
                    elif type(event) is Finish:
                        finish = event.reason
                    elif type(event) is Failure:
                        raise event.error
        except asyncio.CancelledError:
            self._end_stopped()
            if self._stop_reason is None:
                raise  # cancelled from outside (shutdown): let the cancellation through
            asyncio.current_task().uncancel()  # type: ignore[union-attr]  # we are in a task
        except ProviderError as exc:
            self._end_provider_error(exc)
        except Exception:
            log.exception("stream %s failed", self.id)
            self._end_error(ErrorCode.INTERNAL, "internal error while streaming", retryable=True)
        else:
            self._end_done(finish)

    def _finished(self, on_end: Callable[[Stream], None]) -> None:
        # A task cancelled before its first step never enters _run's try block; every stream
        # still ends with exactly one terminal event.
        if not self.log.ended:
            self._end_stopped()
        if self._timer is not None:
            self._timer.cancel()
        on_end(self)

    def _events(self) -> AsyncGenerator[StreamEvent, None]:
        if self.settings.streaming_enabled:
            return self.provider.stream(self.request)
        return self._completed()

    async def _completed(self) -> AsyncGenerator[StreamEvent, None]:
        """Streaming switched off: the non-streaming call, as one chunk."""
        result = await self.provider.complete(self.request)
        yield TextDelta(result.text)
        if result.usage is not None:
            yield result.usage
        yield Finish(result.finish_reason)

    async def _text(self, text: str) -> None:
        if not text:
            return
        if self._first_token_at is None:
            self._first_token_at = self._last_event_at
            self._first_token_perf = time.perf_counter()
            self._arm_watchdog()  # the idle deadline may come before the first-token one
        self.log.append(text)
        if self.log.backlog() > self.settings.buffer_size:
            # A slow reader: stop reading upstream (TCP backpressure) until it catches up.
            # Waiting on our reader is not upstream idling, so the idle timeout is paused.
            self._reader_wait = True
            try:
                await self.log.wait_backlog_below(self.settings.buffer_size)
            finally:
                self._reader_wait = False
                self._last_event_at = self._loop.time()
                self._arm_watchdog()

    # ---- terminal events ---------------------------------------------------------------------

    def _end_done(self, finish_reason: str) -> None:
        content = self.log.text()
        usage = self._final_usage(content)
        self.log.append(
            Done(
                id=self.id,
                seq=len(self.log.entries),
                finish_reason=finish_reason,
                content=content,
                usage=usage,
                metrics=self._metrics(usage),
            )
        )

    def _end_stopped(self) -> None:
        """The terminal event of a stream stopped by us: cancelled, or timed out."""
        reason = self._stop_reason or "cancelled"
        if reason == "cancelled":
            self._end_done("cancelled")
        else:
            self._end_error(ErrorCode.TIMEOUT, reason, retryable=True)

    def _end_provider_error(self, exc: ProviderError) -> None:
        self._end_error(
            exc.code,
            exc.message,
            retryable=exc.retryable,
            retry_after=exc.retry_after,
            status=exc.status,
        )

    def _end_error(
        self,
        code: ErrorCode,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        self.log.append(
            Error(
                id=self.id,
                seq=len(self.log.entries),
                code=code,
                message=message,
                retryable=retryable,
                retry_after_s=retry_after,
                provider=self.provider.name,
                status=status,
            )
        )

    def _final_usage(self, content: str) -> Usage:
        reported = self._usage
        if reported is None:
            prompt = sum(estimate_tokens(m.content) for m in self.request.messages)
            reported = ProviderUsage(prompt, estimate_tokens(content), estimated=True)
        return Usage(
            prompt_tokens=reported.prompt_tokens,
            completion_tokens=reported.completion_tokens,
            total_tokens=reported.prompt_tokens + reported.completion_tokens,
            estimated=reported.estimated,
        )

    def _metrics(self, usage: Usage) -> Metrics:
        now = time.perf_counter()
        first = None if self._first_token_at is None else self._first_token_perf
        generating = None if first is None else now - first
        tps = usage.completion_tokens / generating if generating else None
        return Metrics(
            provider=self.provider.name,
            model=self.request.model,
            ttft_ms=None if first is None else round((first - self._accepted_perf) * 1000, 3),
            duration_ms=round((now - self._accepted_perf) * 1000, 3),
            tokens_per_second=None if tps is None else round(tps, 2),
            estimated_cost_usd=self._cost(self.request.model, usage.prompt_tokens, usage.completion_tokens),
        )

    # ---- timeouts: one timer, re-armed lazily instead of per chunk ---------------------------

    def _arm_watchdog(self) -> None:
        """(Re)schedule the check; needed only when the deadline moves earlier."""
        if self._timer is not None:
            self._timer.cancel()
        deadline, _ = self._deadline()
        self._timer = self._loop.call_at(deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        deadline, reason = self._deadline()
        if self._loop.time() >= deadline:
            self._stop(reason)
        else:
            self._timer = self._loop.call_at(deadline, self._check_deadline)

    def _deadline(self) -> tuple[float, str]:
        s = self.settings
        total = (self._accepted_at + s.stream_timeout, f"stream exceeded {s.stream_timeout:g} s in total")
        if self._reader_wait:
            return total
        if self._first_token_at is None:
            other = (
                self._accepted_at + s.first_token_timeout,
                f"no first token within {s.first_token_timeout:g} s",
            )
        else:
            other = (self._last_event_at + s.idle_timeout, f"no data from upstream for {s.idle_timeout:g} s")
        return min(total, other)
