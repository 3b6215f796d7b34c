"""One stream: runs a provider as an asyncio task and appends its events to the stream's log.

The runner owns seq numbering (through the log), accumulation, usage, metrics, cost and the
three timeouts. Cancelling (client ``cancel``, disconnect, timeout) cancels the task; closing the
provider's generator closes the upstream response before the terminal event is written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass

from protocol import messages as wire
from protocol.errors import ErrorCode
from protocol.messages import Done, Error, Metrics, Notice, StartAck, Usage
from providers.base import (
    Finish,
    GenerationRequest,
    Provider,
    ProviderError,
    ProviderState,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    relay_events,
)
from providers.base import Usage as ProviderUsage
from providers.tokens import estimate_tokens
from server.streams.deadlines import Deadline, Deadlines
from server.streams.eventlog import EventLog
from server.streams.retry import RetryPolicy
from server.streams.turn import Turn

log = logging.getLogger("tokenwire.stream")


@dataclass(frozen=True, slots=True)
class StreamSettings:
    stream_timeout: float
    first_token_timeout: float
    idle_timeout: float
    buffer_size: int
    streaming_enabled: bool = True
    retry_attempts: int = 0  # per provider, before the first token
    retry_backoff: float = 0.25  # seconds before the first retry, doubled for each next one
    retry_max_wait: float = 5.0  # a longer retry-after is not waited for


@dataclass(frozen=True, slots=True)
class Route:
    """A provider and the request as it would serve it: the first choice, or a fallback."""

    provider: Provider
    request: GenerationRequest


CostFn = Callable[[str, str, int, int], float | None]  # (provider, model, prompt, completion) -> USD


class Stream:
    """A running generation. Its ``log`` is what every transport reads."""

    def __init__(
        self,
        stream_id: str,
        provider: Provider,
        request: GenerationRequest,
        settings: StreamSettings,
        cost: CostFn,
        fallbacks: Sequence[Route] = (),
        key: str = "",
    ) -> None:
        self.id = stream_id
        self.key = key  # unguessable: resuming and cancelling from elsewhere take it
        self.provider = provider  # the one serving now: a fallback after a failover
        self.request = request
        self.settings = settings
        self._cost = cost
        s = settings
        self._tries = RetryPolicy(s.retry_attempts, s.retry_backoff, s.retry_max_wait, fallbacks)
        self._deadlines = Deadlines(s.stream_timeout, s.first_token_timeout, s.idle_timeout)
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
        # Why we stopped it: (None, "cancelled"), or an error code and message (timeout, shutdown).
        self._stopped: tuple[ErrorCode | None, str] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._usage: ProviderUsage | None = None
        self._finish = "stop"
        self._turn = Turn()
        self._task: asyncio.Task[None] | None = None

    # ---- control -----------------------------------------------------------------------------

    def start(self, on_end: Callable[[Stream], None]) -> None:
        """Run the provider in a task of its own and acknowledge at once. The task is created
        first so that its first step (sending the upstream request) runs before the ack's write."""
        self._task = self._loop.create_task(self._run(), name=f"stream:{self.id}")
        ack = StartAck(id=self.id, seq=0, provider=self.provider.name, model=self.request.model, key=self.key)
        self.log.append(ack)
        self._task.add_done_callback(lambda _: self._finished(on_end))
        self._arm_watchdog()

    def cancel(self) -> None:
        """Abort the upstream; the stream ends with ``done``/``cancelled``. No-op once ended."""
        self._stop(None, "cancelled")

    def shut_down(self) -> None:
        """Abort the upstream; the stream ends with the retryable error ``shutting_down``."""
        self._stop(ErrorCode.SHUTTING_DOWN, "the gateway is shutting down; start the stream again")

    @property
    def ended(self) -> bool:
        return self.log.ended

    async def wait(self) -> None:
        """Until the stream has ended. A task stopped before its first step ends cancelled: that
        is no cancellation of the waiter. Cancelling the waiter leaves the stream running."""
        if self._task is not None:
            await asyncio.wait([self._task])

    def _stop(self, code: ErrorCode | None, message: str) -> None:
        if self._task is None or self._task.done() or self._stopped is not None:
            return
        self._stopped = (code, message)
        self._task.cancel()

    # ---- the task ----------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            finish = await self._serve()
        except asyncio.CancelledError:
            self._end_stopped()
            if self._stopped is None:
                raise  # cancelled from outside (shutdown): let the cancellation through
            asyncio.current_task().uncancel()  # type: ignore[union-attr]  # we are in a task
        except ProviderError as exc:
            self._end_provider_error(exc)
        except Exception:
            log.exception("stream %s failed", self.id)
            self._end_error(ErrorCode.INTERNAL, "internal error while streaming", retryable=True)
        else:
            self._end_done(finish)

    async def _serve(self) -> str:
        """Stream; a retryable failure before the first token is tried again or failed over."""
        while True:
            try:
                return await self._stream_once()
            except ProviderError as exc:
                notice = self._next_try(exc)
                if notice is None:
                    raise
                log.info(_notice_line(notice))
                self.log.notice(notice)
                if notice.delay_s:
                    await asyncio.sleep(notice.delay_s)

    async def _stream_once(self) -> str:
        self._finish = "stop"
        self._usage = None
        self._turn = Turn()
        if self.settings.streaming_enabled:
            await self.provider.relay(self.request, self)
        else:
            await relay_events(self._completed(), self)
        return self._finish

    # ---- providers.base.EventSink: the provider's events ----------------------------------------

    def push(self, event: StreamEvent) -> bool:
        """One event; True when the slowest reader is more than a buffer behind."""
        if self._stopped is not None:
            return False  # cancelled: events that came before the task saw it are dropped
        self._last_event_at = self._loop.time()
        if type(event) is TextDelta:
            return self._text(event.text)
        if type(event) is ProviderUsage:
            self._usage = event
        elif type(event) is Finish:
            self._finish = event.reason
        else:
            return self._part(event)
        return False

    def _part(self, event: StreamEvent) -> bool:
        """A v1.1 part: logged when the start asked for its kind; True when a reader is behind."""
        request, turn, seq = self.request, self._turn, len(self.log.entries)
        entry: wire.Part
        if type(event) is ReasoningDelta:
            if not event.text:
                return False
            turn.reasoning_chars += len(event.text)
            self._first_output()  # generated output: the first-token deadline is met
            if request.reasoning is None:
                return False  # not asked for: not forwarded, but counted in usage
            turn.reasoning.append(event.text)
            entry = wire.ReasoningChunk(id=self.id, seq=seq, content=event.text)
        elif type(event) is ProviderState:
            turn.provider_state = event.data
            return False
        elif request.tools is None:
            return False  # calls nobody asked for (a provider's own tools are not reported)
        elif type(event) is ToolCallStart:
            entry = wire.ToolCallStart(
                id=self.id, seq=seq, call_id=event.call_id, name=event.name, index=event.index
            )
        elif type(event) is ToolCallDelta:
            entry = wire.ToolCallDelta(id=self.id, seq=seq, call_id=event.call_id, arguments_delta=event.text)
        elif type(event) is ToolCallEnd:
            turn.call_ended(event)
            entry = wire.ToolCallEnd(
                id=self.id,
                seq=seq,
                call_id=event.call_id,
                name=event.name,
                arguments=event.arguments,
                arguments_error=event.error,
            )
        else:
            return False
        self._first_output()
        self.log.append(entry)
        return self.log.backlog() > self.settings.buffer_size

    async def caught_up(self) -> None:
        """Stop reading upstream (TCP backpressure) until the slow reader catches up. Waiting on
        our reader is not upstream idling, so the idle timeout is paused meanwhile."""
        self._reader_wait = True
        try:
            await self.log.wait_backlog_below(self.settings.buffer_size)
        finally:
            self._reader_wait = False
            self._last_event_at = self._loop.time()
            self._arm_watchdog()

    def _next_try(self, exc: ProviderError) -> Notice | None:
        """Move to the next try (same provider after a backoff, else the next fallback) and say
        so; None when there is none (see RetryPolicy.next_try)."""
        failed = self.provider.name
        step = self._tries.next_try(exc, text_sent=self._first_token_at is not None)
        if step is None:
            return None
        message = f"{failed} failed before the first token ({exc.code}); "
        if step.route is None:
            message += f"retrying in {step.delay:g} s"
        else:
            self.provider, self.request = step.route.provider, step.route.request
            message += f"trying {self.provider.name}"
        return Notice(
            id=self.id,
            code=step.code,
            message=message,
            provider=self.provider.name,
            model=self.request.model,
            attempt=step.attempt,
            reason=exc.code,
            delay_s=step.delay or None,
        )

    def _finished(self, on_end: Callable[[Stream], None]) -> None:
        # A task cancelled before its first step never enters _run's try block; every stream
        # still ends with exactly one terminal event.
        if not self.log.ended:
            self._end_stopped()
        if self._timer is not None:
            self._timer.cancel()
        on_end(self)

    async def _completed(self) -> AsyncGenerator[StreamEvent, None]:
        """Streaming switched off: the non-streaming call, as its parts and one chunk."""
        result = await self.provider.complete(self.request)
        for part in result.parts:
            yield part
        yield TextDelta(result.text)
        if result.usage is not None:
            yield result.usage
        yield Finish(result.finish_reason)

    def _text(self, text: str) -> bool:
        """Log a text delta; True when the slowest reader is more than a buffer behind."""
        if not text:
            return False
        if self._first_token_at is None:
            self._first_output()
        self.log.append(text)
        return self.log.backlog() > self.settings.buffer_size

    def _first_output(self) -> None:
        """The first text or part the client sees: the first-token deadline is met, and from here
        on a failure is not retried (the client has output a retry would repeat)."""
        if self._first_token_at is None:
            self._first_token_at = self._last_event_at
            self._first_token_perf = time.perf_counter()
            self._arm_watchdog()  # the idle deadline may come before the first-token one

    # ---- terminal events ---------------------------------------------------------------------

    def _end_done(self, finish_reason: str) -> None:
        content = self.log.text()
        usage = self._final_usage(content)
        turn = self._turn
        self.log.append(
            Done(
                id=self.id,
                seq=len(self.log.entries),
                finish_reason=turn.finish_reason(finish_reason),
                content=content,
                usage=usage,
                metrics=self._metrics(usage),
                **turn.done_fields(self.request, content),
            )
        )

    def _end_stopped(self) -> None:
        """The terminal event of a stream stopped by us: cancelled, timed out or shut down."""
        code, message = self._stopped or (None, "cancelled")
        if code is None:
            self._end_done("cancelled")
        else:
            self._end_error(code, message, retryable=True)

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
            prompt = sum(estimate_tokens(m.text) for m in self.request.messages)
            completion, reasoning = self._turn.estimated_completion_tokens(content)
            reported = ProviderUsage(prompt, completion, estimated=True, reasoning_tokens=reasoning)
        return Usage(
            prompt_tokens=reported.prompt_tokens,
            completion_tokens=reported.completion_tokens,
            total_tokens=reported.prompt_tokens + reported.completion_tokens,
            estimated=reported.estimated,
            reasoning_tokens=reported.reasoning_tokens,
            cached_tokens=reported.cached_tokens,
        )

    def elapsed_ms(self) -> float:
        """Milliseconds since the stream was accepted."""
        return round((time.perf_counter() - self._accepted_perf) * 1000, 3)

    def _metrics(self, usage: Usage) -> Metrics:
        now = time.perf_counter()
        first = None if self._first_token_at is None else self._first_token_perf
        generating = None if first is None else now - first
        tps = usage.completion_tokens / generating if generating else None
        return Metrics(
            provider=self.provider.name,
            model=self.request.model,
            ttft_ms=None if first is None else round((first - self._accepted_perf) * 1000, 3),
            duration_ms=self.elapsed_ms(),
            tokens_per_second=None if tps is None else round(tps, 2),
            estimated_cost_usd=self._cost(
                self.provider.name, self.request.model, usage.prompt_tokens, usage.completion_tokens
            ),
        )

    # ---- timeouts: one timer, re-armed lazily instead of per chunk ---------------------------

    def _arm_watchdog(self) -> None:
        """(Re)schedule the check; needed only when the deadline moves earlier."""
        if self._timer is not None:
            self._timer.cancel()
        deadline, _ = self._deadline()
        self._timer = self._loop.call_at(deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        deadline, which = self._deadline()
        if self._loop.time() >= deadline:
            self._stop(ErrorCode.TIMEOUT, self._deadlines.message(which))
        else:
            self._timer = self._loop.call_at(deadline, self._check_deadline)

    def _deadline(self) -> tuple[float, Deadline]:
        return self._deadlines.next(
            self._accepted_at,
            self._first_token_at,
            self._last_event_at,
            waiting_for_reader=self._reader_wait,
        )


def _notice_line(notice: Notice) -> str:
    """The stream log's JSON line for a retry or failover (no message text, as for stream ends)."""
    fields: dict[str, str | int] = {"event": "stream_notice", "stream_id": notice.id, "code": notice.code}
    fields |= {"provider": notice.provider, "attempt": notice.attempt, "reason": notice.reason.value}
    return json.dumps(fields, separators=(",", ":"))
