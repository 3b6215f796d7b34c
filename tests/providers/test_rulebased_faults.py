"""Fault injection in the offline provider: the event sequence of each fault, its typed error,
determinism, and cancellation of a delayed or stalled stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import msgspec
import pytest

from protocol.errors import ErrorCode
from protocol.messages import Fault, FaultErrorCode, Options
from providers.base import (
    Finish,
    GenerationRequest,
    ProviderError,
    StreamEvent,
    TextDelta,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
    Usage,
)
from providers.dialect import Dialect, ProviderSettings
from providers.dialects.anthropic import AnthropicDialect
from providers.dialects.azure_openai import AzureOpenAIDialect
from providers.dialects.gemini import GeminiDialect
from providers.dialects.ollama import OllamaDialect
from providers.dialects.openai import OpenAIDialect
from providers.offline.faults import NO_FAULT, plan
from providers.offline.rulebased import STALL_SLEEP_S, RuleBasedProvider, render, split_chunks
from providers.prompts import prompt_messages
from providers.stream_parser import FramedStreamParser

PROMPT = "Why is the sky blue?"
WORDS = 5


def request(fault: Fault | None = None, *, max_tokens: int | None = None) -> GenerationRequest:
    return GenerationRequest(
        model="script",
        messages=prompt_messages(PROMPT),
        options=Options(max_tokens=max_tokens),
        fault=fault,
    )


def chunks_of(req: GenerationRequest) -> list[str]:
    return split_chunks(render(req)[0], WORDS)


class Sleeps:
    """A fake sleep: logs each call into a shared log and returns at once."""

    def __init__(self, log: list[tuple[str, object]]) -> None:
        self.log = log

    async def __call__(self, seconds: float) -> None:
        self.log.append(("sleep", seconds))


class RealSleeps:
    """Logs each call, then really sleeps (asyncio), so cancellation can be tested."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(seconds)


async def run(
    provider: RuleBasedProvider, req: GenerationRequest, log: list[tuple[str, object]]
) -> tuple[list[StreamEvent], ProviderError | None]:
    """Every event and the error the stream ended with, logging deltas into ``log`` too."""
    events: list[StreamEvent] = []
    try:
        async for event in provider.stream(req):
            events.append(event)
            if isinstance(event, TextDelta):
                log.append(("delta", event.text))
    except ProviderError as exc:
        return events, exc
    return events, None


def deltas(events: list[StreamEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


# ---- no fault --------------------------------------------------------------------------------


async def test_no_fault_and_an_empty_fault_change_nothing() -> None:
    provider = RuleBasedProvider(sleep=Sleeps([]), chunk_delay_ms=10)
    plain, _ = await run(provider, request(), [])
    empty, error = await run(provider, request(Fault()), [])
    assert error is None
    assert empty == plain
    assert plain[-1] == Finish("stop")
    assert plan(None, 10, "rulebased") is NO_FAULT
    assert not plan(Fault(), 10, "rulebased").breaks


# ---- first token delay -----------------------------------------------------------------------


async def test_first_token_delay_sleeps_once_before_the_first_chunk() -> None:
    log: list[tuple[str, object]] = []
    provider = RuleBasedProvider(sleep=Sleeps(log), chunk_delay_ms=40)
    req = request(Fault(first_token_delay_ms=1500))
    events, error = await run(provider, req, log)
    chunks = chunks_of(req)
    assert error is None
    assert log == [("sleep", 1.5), ("delta", chunks[0])] + [
        item for chunk in chunks[1:] for item in (("sleep", 0.04), ("delta", chunk))
    ]
    assert isinstance(events[-2], Usage)
    assert events[-1] == Finish("stop")


async def test_first_token_delay_comes_before_a_break_at_zero() -> None:
    log: list[tuple[str, object]] = []
    provider = RuleBasedProvider(sleep=Sleeps(log), chunk_delay_ms=40)
    events, error = await run(provider, request(Fault(first_token_delay_ms=250, error_after_chunks=0)), log)
    assert events == []
    assert log == [("sleep", 0.25)]
    assert isinstance(error, UpstreamUnavailable)


# ---- error_after_chunks ----------------------------------------------------------------------

ERRORS: list[tuple[FaultErrorCode | None, type[ProviderError], int | None, bool]] = [
    (None, UpstreamUnavailable, 503, True),
    ("upstream_unavailable", UpstreamUnavailable, 503, True),
    ("upstream_rate_limited", UpstreamRateLimited, 429, True),
    ("upstream_auth", UpstreamAuthError, 401, False),
    ("upstream_bad_request", UpstreamBadRequest, 400, False),
    ("upstream_protocol", UpstreamProtocolError, None, True),
    ("timeout", UpstreamTimeout, None, True),
]


@pytest.mark.parametrize(("code", "cls", "status", "retryable"), ERRORS)
async def test_error_after_chunks_sends_n_chunks_then_fails_typed(
    code: FaultErrorCode | None, cls: type[ProviderError], status: int | None, retryable: bool
) -> None:
    log: list[tuple[str, object]] = []
    provider = RuleBasedProvider(sleep=Sleeps(log), chunk_delay_ms=40)
    req = request(Fault(error_after_chunks=2, error_code=code))
    events, error = await run(provider, req, log)
    chunks = chunks_of(req)
    assert events == [TextDelta(chunks[0]), TextDelta(chunks[1])]  # no usage, no finish
    assert log == [("delta", chunks[0]), ("sleep", 0.04), ("delta", chunks[1])]  # fails at once
    assert type(error) is cls
    assert error.code == ErrorCode(code or "upstream_unavailable")
    assert error.status == status
    assert error.retryable is retryable
    assert error.retry_after is None
    assert error.provider == "rulebased"
    assert "injected fault (error_after_chunks = 2)" in error.message
    if status is not None:
        assert error.message.startswith(f"rulebased answered HTTP {status}: ")


async def test_rate_limited_error_carries_retry_after() -> None:
    fault = Fault(error_after_chunks=1, error_code="upstream_rate_limited", retry_after_s=1.5)
    events, error = await run(RuleBasedProvider(sleep=Sleeps([])), request(fault), [])
    assert len(deltas(events)) == 1
    assert isinstance(error, UpstreamRateLimited)
    assert (error.status, error.retry_after, error.retryable) == (429, 1.5, True)
    assert error.message == "rulebased answered HTTP 429: injected fault (error_after_chunks = 1)"


async def test_error_after_zero_chunks_fails_before_any_text() -> None:
    events, error = await run(RuleBasedProvider(sleep=Sleeps([])), request(Fault(error_after_chunks=0)), [])
    assert events == []
    assert isinstance(error, UpstreamUnavailable)


async def test_a_count_beyond_the_reply_breaks_after_the_last_chunk() -> None:
    req = request(Fault(error_after_chunks=100_000, error_code="upstream_auth"))
    events, error = await run(RuleBasedProvider(sleep=Sleeps([])), req, [])
    assert deltas(events) == chunks_of(req)
    assert not any(isinstance(e, Usage | Finish) for e in events)
    assert isinstance(error, UpstreamAuthError)


async def test_chunks_are_counted_after_max_tokens_cuts() -> None:
    req = request(Fault(truncate_after_chunks=50), max_tokens=12)
    events, error = await run(RuleBasedProvider(sleep=Sleeps([])), req, [])
    assert "".join(deltas(events)) == render(req)[0]
    assert render(req)[1] == "length"
    assert isinstance(error, UpstreamProtocolError)


# ---- truncate_after_chunks -------------------------------------------------------------------


async def test_truncate_ends_without_finish_like_a_cut_upstream_stream() -> None:
    req = request(Fault(truncate_after_chunks=3))
    events, error = await run(RuleBasedProvider(sleep=Sleeps([])), req, [])
    assert events == [TextDelta(c) for c in chunks_of(req)[:3]]
    assert type(error) is UpstreamProtocolError
    # The message the HTTP providers' parsers report for a stream that ends before its end signal.
    assert error.message == f"rulebased stream ended before {FramedStreamParser.end_signal}"
    assert (error.code, error.status, error.retryable, error.provider) == (
        ErrorCode.UPSTREAM_PROTOCOL,
        None,
        True,
        "rulebased",
    )


# ---- stall_after_chunks ----------------------------------------------------------------------


async def _until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


@pytest.mark.parametrize("after", [0, 2])
async def test_stall_sends_n_chunks_then_nothing_until_cancelled(after: int) -> None:
    sleeps = RealSleeps()
    provider = RuleBasedProvider(sleep=sleeps, chunk_delay_ms=1)
    req = request(Fault(stall_after_chunks=after))
    seen: list[StreamEvent] = []

    async def consume() -> None:
        async for event in provider.stream(req):
            seen.append(event)

    task = asyncio.create_task(consume())
    await _until(lambda: STALL_SLEEP_S in sleeps.calls)
    await asyncio.sleep(0.05)
    assert seen == [TextDelta(c) for c in chunks_of(req)[:after]]
    assert not task.done()
    task.cancel()
    async with asyncio.timeout(0.5):  # at once: the stall is an asyncio sleep
        with pytest.raises(asyncio.CancelledError):
            await task
    assert seen == [TextDelta(c) for c in chunks_of(req)[:after]]


async def test_stall_keeps_sleeping_and_never_finishes() -> None:
    log: list[tuple[str, object]] = []

    class Budget(Exception):
        pass

    async def sleep(seconds: float) -> None:
        log.append(("sleep", seconds))
        if len(log) > 5:
            raise Budget  # stands in for the cancel that ends a real stall

    provider = RuleBasedProvider(sleep=sleep, chunk_delay_ms=0)
    events: list[StreamEvent] = []

    async def consume() -> None:
        async for event in provider.stream(request(Fault(stall_after_chunks=1))):
            events.append(event)

    with pytest.raises(Budget):
        await consume()
    assert len(events) == 1
    assert log == [("sleep", STALL_SLEEP_S)] * 6


async def test_cancel_stops_a_first_token_delay_at_once() -> None:
    sleeps = RealSleeps()
    provider = RuleBasedProvider(sleep=sleeps)
    stream = provider.stream(request(Fault(first_token_delay_ms=600_000)))
    task = asyncio.create_task(anext(stream))
    await _until(lambda: sleeps.calls == [600.0])
    task.cancel()
    async with asyncio.timeout(0.5):
        with pytest.raises(asyncio.CancelledError):
            await task
    await stream.aclose()


# ---- determinism -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault(
            first_token_delay_ms=5, error_after_chunks=3, error_code="upstream_rate_limited", retry_after_s=2
        ),
        Fault(truncate_after_chunks=4),
        Fault(error_after_chunks=1, error_code="timeout"),
    ],
)
async def test_the_same_fault_always_acts_out_the_same_way(fault: Fault) -> None:
    runs = []
    for _ in range(3):
        log: list[tuple[str, object]] = []
        events, error = await run(RuleBasedProvider(sleep=Sleeps(log), chunk_delay_ms=3), request(fault), log)
        assert error is not None
        runs.append((log, events, type(error), error.message, error.status, error.retry_after))
    assert runs[0] == runs[1] == runs[2]


# ---- the non-streaming call ------------------------------------------------------------------


async def test_complete_fails_like_the_stream() -> None:
    log: list[tuple[str, object]] = []
    provider = RuleBasedProvider(sleep=Sleeps(log))
    fault = Fault(first_token_delay_ms=20, error_after_chunks=2, error_code="upstream_auth")
    with pytest.raises(UpstreamAuthError, match="injected fault"):
        await provider.complete(request(fault))
    assert log == [("sleep", 0.02)]
    with pytest.raises(UpstreamProtocolError, match="ended before"):
        await provider.complete(request(Fault(truncate_after_chunks=0)))


async def test_complete_with_only_a_delay_returns_the_reply() -> None:
    log: list[tuple[str, object]] = []
    provider = RuleBasedProvider(sleep=Sleeps(log))
    completion = await provider.complete(request(Fault(first_token_delay_ms=100)))
    assert completion == await provider.complete(request())
    assert log == [("sleep", 0.1)]


async def test_complete_stalls_until_cancelled() -> None:
    sleeps = RealSleeps()
    task = asyncio.create_task(RuleBasedProvider(sleep=sleeps).complete(request(Fault(stall_after_chunks=3))))
    await _until(lambda: sleeps.calls == [STALL_SLEEP_S])
    task.cancel()
    async with asyncio.timeout(0.5):
        with pytest.raises(asyncio.CancelledError):
            await task


# ---- the Fault struct ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"stall_after_chunks": 1, "error_after_chunks": 2}, "only one of"),
        ({"error_after_chunks": 1, "truncate_after_chunks": 2}, "only one of"),
        ({"error_code": "timeout"}, "`error_code` goes with `error_after_chunks`"),
        ({"retry_after_s": 1, "truncate_after_chunks": 1}, "`retry_after_s` goes with `error_after_chunks`"),
    ],
)
def test_fault_combinations_that_make_no_sense_are_refused(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=problem):
        msgspec.convert(fields, Fault)


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"stall_after_chunks": -1}, "$.stall_after_chunks"),
        ({"error_after_chunks": 100_001}, "$.error_after_chunks"),
        ({"truncate_after_chunks": 1.5}, "$.truncate_after_chunks"),
        ({"first_token_delay_ms": 600_001}, "$.first_token_delay_ms"),
        ({"error_after_chunks": 0, "retry_after_s": 3601}, "$.retry_after_s"),
        ({"error_after_chunks": 0, "error_code": "internal"}, "$.error_code"),
        ({"stall_after": 1}, "unknown field `stall_after`"),
    ],
)
def test_fault_fields_are_bounded_and_unknown_ones_refused(fields: dict[str, object], path: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=path.replace("$", r"\$").replace(".", r"\.")):
        msgspec.convert(fields, Fault)


def test_fault_round_trips_as_json_with_only_its_set_fields() -> None:
    fault = Fault(error_after_chunks=2, error_code="upstream_rate_limited", retry_after_s=1.5)
    encoded = msgspec.json.encode(fault)
    assert json.loads(encoded) == {
        "error_after_chunks": 2,
        "error_code": "upstream_rate_limited",
        "retry_after_s": 1.5,
    }
    assert msgspec.json.decode(encoded, type=Fault) == fault


# ---- other providers ignore it ---------------------------------------------------------------

SETTINGS = ProviderSettings(api_key="k", base_url="https://api.example/", default_model="m", api_version="v")
DIALECTS: list[Dialect] = [
    OpenAIDialect(SETTINGS),
    AzureOpenAIDialect(SETTINGS),
    AnthropicDialect(SETTINGS),
    GeminiDialect(SETTINGS),
    OllamaDialect(SETTINGS),
]


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
@pytest.mark.parametrize("stream", [True, False])
def test_hosted_providers_send_the_same_request_with_or_without_a_fault(
    dialect: Dialect, stream: bool
) -> None:
    fault = Fault(first_token_delay_ms=10, error_after_chunks=1)
    plain = GenerationRequest(model="m", messages=prompt_messages("hi"), options=Options(max_tokens=9))
    # However a fault arrives: moved out of the options by the gateway, or left in them.
    faulty = [
        msgspec.structs.replace(plain, fault=fault),
        msgspec.structs.replace(plain, options=Options(max_tokens=9, fault=fault)),
    ]
    expected = dialect.request(plain, stream=stream)
    for req in faulty:
        got = dialect.request(req, stream=stream)
        assert (got.method, got.url, got.body) == (expected.method, expected.url, expected.body)
