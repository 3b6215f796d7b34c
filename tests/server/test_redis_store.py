"""The Redis resume store against a real redis-server: mirroring, replay, tail, expiry, leases,
cancels between instances, an instance that dies, and Redis that goes away."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from protocol.errors import ErrorCode
from protocol.messages import ChatMessage, Chunk, Done, Error, Reasoning, StartAck, Tool
from providers.base import (
    Completion,
    Finish,
    GenerationRequest,
    GeneratorProvider,
    ProviderState,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UpstreamUnavailable,
)
from server.config import Config, ConfigError
from server.stores import make_store
from server.stores.base import Source
from server.stores.redis import RedisStore, RedisUnavailable, Timing, redact_url
from server.stores.redis_remote import RemoteStream
from server.streams.eventlog import Subscription
from server.streams.runner import Stream, StreamSettings
from tests.support.providers import PartsProvider, ScriptedProvider
from tests.support.redis_server import RedisServer

FAST = Timing(
    flush_interval=0.005,
    beat_interval=0.1,
    heartbeat_ttl=0.3,
    lease_ttl=1.0,  # ten beats: renewals keep up on a loaded machine
    reader_ttl=0.3,
    lost_after=0.3,
    remote_idle=1.0,
    retry=0.2,
)


MakeStore = Callable[..., Awaitable[RedisStore]]


@pytest.fixture
async def make(redis: RedisServer) -> AsyncIterator[MakeStore]:
    """Started stores on the test's Redis, closed after the test."""
    stores: list[RedisStore] = []

    async def make_one(timing: Timing = FAST, max_streams: int = 5, **resume: Any) -> RedisStore:
        config = msgspec.convert(
            {
                "resume": {"store": "redis", "redis_url": redis.url, **resume},
                "streaming": {"max_concurrent_streams": max_streams},
            },
            Config,
        )
        store = RedisStore(config, timing=timing)
        await store.start()
        stores.append(store)
        return store

    yield make_one
    for store in stores:
        await store.close()


SETTINGS = StreamSettings(
    stream_timeout=60, first_token_timeout=60, idle_timeout=60, buffer_size=262144, retry_backoff=0
)
_keys = iter(range(10**6))


def new_key() -> str:
    return f"test-key-{next(_keys):06d}-{time.monotonic_ns()}"


def run(
    store: RedisStore, provider: Any, settings: StreamSettings = SETTINGS, key: str | None = None
) -> Stream:
    """Start a stream on ``store`` as the hub does once it admitted it."""
    request = GenerationRequest(model="m", messages=[ChatMessage("user", "hi")])
    key = key or new_key()
    stream = Stream("s1", provider, request, settings, lambda *_: None, key=key)
    store.started(stream)
    stream.start(store.ended)
    return stream


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def mirrored(store: RedisStore) -> None:
    await until(lambda: not store._mirrors)


class FlakyOnce(GeneratorProvider):
    """Fails retryably before the first token once, then streams: the log gets a notice."""

    name = "flaky"
    streaming = "native"
    configured = True
    default_model = "m"

    def __init__(self, count: int = 5) -> None:
        self.calls = 0
        self.count = count

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        self.calls += 1
        if self.calls == 1:
            raise UpstreamUnavailable("down for a moment", provider=self.name)
        for i in range(self.count):
            yield TextDelta(f"w{i} ")
        yield Finish("stop")

    async def complete(self, request: GenerationRequest) -> Completion:
        raise NotImplementedError


async def test_mirror_replays_every_event_and_notice_on_another_instance(
    make: MakeStore, raw: aioredis.Redis
) -> None:
    a, b = await make(), await make()
    settings = dataclasses.replace(SETTINGS, retry_attempts=1)
    stream = run(a, FlakyOnce(count=40), settings)
    await stream.wait()
    await mirrored(a)
    assert len(stream.log.notices) == 1
    remote = await b.find(stream.key)
    assert isinstance(remote, RemoteStream)
    assert remote.ended
    assert remote.id == "s1"
    assert remote.key == stream.key
    assert remote.log.entries == stream.log.entries
    assert remote.log.notices == stream.log.notices
    items = await raw.xrange(f"tw:s:{stream.key}")
    assert items is not None
    ids = [entry_id for entry_id, _ in items]
    # One Redis entry per seq (and per notice): nothing merged, nothing doubled.
    assert ids == [b"1-0", b"1-1", *(f"{seq + 1}-0".encode() for seq in range(1, len(stream.log.entries)))]
    assert await raw.hgetall(f"tw:m:{stream.key}") == {
        b"owner": a.instance.encode(),
        b"id": b"s1",
        b"ended": b"1",
    }
    own = await a.find(stream.key)  # its own instance serves it from memory: the ended record
    assert own is not None
    assert own.log is stream.log
    assert own.ended


async def test_a_stream_of_parts_is_mirrored_whole_on_another_instance(make: MakeStore) -> None:
    a, b = await make(), await make()
    parts: list[StreamEvent] = [
        ReasoningDelta("think "),
        TextDelta("calling"),
        ToolCallStart(0, "call_1", "get_weather"),
        ToolCallDelta("call_1", '{"city": "Paris"}'),
        ToolCallEnd("call_1", "get_weather", {"city": "Paris"}),
        ProviderState("state"),
        Finish("stop"),
    ]
    request = GenerationRequest(
        model="m",
        messages=[ChatMessage("user", "hi")],
        tools=[Tool(name="get_weather")],
        reasoning=Reasoning(),
    )
    stream = Stream("s1", PartsProvider(parts), request, SETTINGS, lambda *_: None, key=new_key())
    a.started(stream)
    stream.start(a.ended)
    await stream.wait()
    await mirrored(a)
    remote = await b.find(stream.key)
    assert isinstance(remote, RemoteStream)
    assert remote.log.entries == stream.log.entries
    assert [type(e).__name__ for e in remote.log.entries] == [
        "StartAck",
        "ReasoningChunk",
        "str",
        "ToolCallStart",
        "ToolCallDelta",
        "ToolCallEnd",
        "Done",
    ]
    done = remote.log.entries[-1]
    assert isinstance(done, Done)
    assert done.finish_reason == "tool_calls"
    assert done.provider_state == "state"


async def test_a_remote_reader_gets_the_live_tail_without_gaps(make: MakeStore) -> None:
    a, b = await make(), await make()
    stream = run(a, ScriptedProvider(text="tok ", count=60, delay=0.005))
    await until(lambda: len(stream.log.entries) > 5)
    remote = await b.find(stream.key)
    assert isinstance(remote, RemoteStream)
    assert not remote.ended
    assert await b.find(stream.key) is remote  # followed once per instance, however many read it
    taken: list[Any] = []
    wake = asyncio.Event()
    subscription = remote.log.subscribe("mine", lambda _: wake.set(), after_seq=2)
    while not subscription.finished:
        await wake.wait()
        wake.clear()
        taken.extend(subscription.take())
    remote.log.unsubscribe(subscription)
    await stream.wait()
    assert remote.log.entries == stream.log.entries
    seqs = [(m.from_seq if getattr(m, "from_seq", None) is not None else m.seq, m.seq) for m in taken]
    assert seqs[0][0] == 3
    assert all(later[0] == earlier[1] + 1 for earlier, later in itertools.pairwise(seqs))
    assert type(taken[-1]) is Done
    assert taken[-1].id == "mine"
    assert "".join(m.content for m in taken[:-1]) == stream.log.text()[len("tok tok ") :]
    await until(lambda: not b._remote)  # no longer followed once ended
    await until(lambda: b._pump_task is not None and b._pump_task.done())  # nothing left to do
    assert not b._remote


async def test_ended_streams_expire_after_retention(make: MakeStore, raw: aioredis.Redis) -> None:
    a, b = await make(retention_seconds=0.4), await make(retention_seconds=0.4)
    stream = run(a, ScriptedProvider(count=3))
    await stream.wait()
    await mirrored(a)
    assert await b.find(stream.key) is not None
    ttl = await raw.pttl(f"tw:s:{stream.key}")
    assert 0 < ttl <= 400
    await asyncio.sleep(0.6)
    assert await raw.exists(f"tw:s:{stream.key}", f"tw:m:{stream.key}") == 0
    assert await b.find(stream.key) is None
    assert await a.find(stream.key) is None


async def test_no_retention_deletes_at_once(make: MakeStore, raw: aioredis.Redis) -> None:
    a = await make(retention_seconds=0)
    stream = run(a, ScriptedProvider(count=3))
    await stream.wait()
    await mirrored(a)
    assert await raw.exists(f"tw:s:{stream.key}", f"tw:m:{stream.key}") == 0


async def test_running_streams_keys_expire_even_if_their_owner_dies(
    make: MakeStore, raw: aioredis.Redis
) -> None:
    a = await make()
    stream = run(a, ScriptedProvider(count=100, delay=0.01))
    await until(lambda: len(stream.log.entries) > 2)
    await until(lambda: a._mirrors[stream.key].announced)
    assert 60_000 < await raw.pttl(f"tw:s:{stream.key}") <= (600 + 300 + 60) * 1000
    stream.cancel()
    await stream.wait()


async def test_max_concurrent_streams_holds_across_instances(make: MakeStore, raw: aioredis.Redis) -> None:
    a, b = await make(max_streams=1), await make(max_streams=1)
    key = new_key()
    assert await a.admit(key)
    stream = run(a, ScriptedProvider(count=1000, delay=0.01), key=key)  # outlives a lease
    assert not await b.admit("another-key")
    assert not await a.admit("another-key")
    await asyncio.sleep(FAST.lease_ttl + 0.2)  # the owner's beat renews its lease
    assert not await b.admit("another-key")
    stream.cancel()
    await stream.wait()
    await mirrored(a)
    assert await raw.zcard("tw:leases") == 0
    assert await b.admit("another-key")


async def test_a_crashed_instance_frees_its_leases_and_its_readers_get_stream_lost(make: MakeStore) -> None:
    a, b = await make(max_streams=1), await make(max_streams=1)
    key = new_key()
    assert await a.admit(key)
    stream = run(a, ScriptedProvider(count=1000, delay=0.01), key=key)
    await until(lambda: len(stream.log.entries) > 3)
    remote = await b.find(stream.key)
    assert isinstance(remote, RemoteStream)
    await a.abort()  # as if its process died: no terminal, lease and heartbeat left behind
    started = time.monotonic()
    await until(lambda: remote.ended)
    assert time.monotonic() - started < 5
    lost = remote.log.entries[-1]
    assert type(lost) is Error
    assert lost.code is ErrorCode.STREAM_LOST
    assert lost.retryable
    assert lost.seq == len(remote.log.entries) - 1
    assert lost.id == "s1"
    assert lost.provider == "scripted"
    assert all(type(e) is str for e in remote.log.entries[1:-1])
    await until(lambda: not b._remote)
    await asyncio.sleep(FAST.lease_ttl)
    assert await b.admit("k2")
    # Found again later, the stream is lost at once (its owner's heartbeat is gone).
    again = await b.find(stream.key)
    assert again is not None
    assert again.ended
    assert type(again.log.entries[-1]) is Error
    stream.cancel()
    await stream.wait()


async def test_cancel_by_key_reaches_the_owning_instance(make: MakeStore) -> None:
    a, b = await make(), await make()
    stream = run(a, ScriptedProvider(count=1000, delay=0.01))
    await until(lambda: len(stream.log.entries) > 2)
    await until(lambda: a._mirrors[stream.key].announced)
    assert await b.cancel(stream.key)
    async with asyncio.timeout(2):
        await stream.wait()
    done = stream.log.entries[-1]
    assert type(done) is Done
    assert done.finish_reason == "cancelled"
    await mirrored(a)
    assert not await b.cancel(stream.key)  # ended
    assert not await b.cancel("no-such-key-at-all-here")


async def test_a_stream_is_found_and_cancelled_elsewhere_from_its_first_moment(make: MakeStore) -> None:
    a, b = await make(), await make()
    key = new_key()
    assert await a.admit(key)
    stream = run(a, ScriptedProvider(count=1000, delay=0.01), key=key)
    found = await b.find(key)  # before the first mirror flush: waits for it
    assert found is not None
    assert found.log.entries[:1] == stream.log.entries[:1]
    second_key = new_key()
    assert await a.admit(second_key)
    second = run(a, ScriptedProvider(count=1000, delay=0.01), key=second_key)
    assert await b.cancel(second_key)  # the meta names its owner from admission on
    async with asyncio.timeout(2):
        await second.wait()
    done = second.log.entries[-1]
    assert type(done) is Done
    assert done.finish_reason == "cancelled"
    stream.cancel()
    await stream.wait()


async def test_a_stream_is_found_elsewhere_when_its_owner_mirrors_it_late(make: MakeStore) -> None:
    # A busy owner's first mirror tick can come long after the ack its client got (and resumed
    # elsewhere with at once): the other instance waits for it instead of calling it unknown.
    late = dataclasses.replace(FAST, flush_interval=0.15)
    a, b = await make(late), await make()
    running = run(a, ScriptedProvider(count=1000, delay=0.01))  # A's pump ticks every 0.15 s
    await until(lambda: a._mirrors[running.key].next_seq != 0)
    key = new_key()
    assert await a.admit(key)
    stream = run(a, ScriptedProvider(count=1000, delay=0.01), key=key)  # mirrored at the next tick
    found = await b.find(key)
    assert isinstance(found, RemoteStream)
    assert found.log.entries[:1] == stream.log.entries[:1]
    for started in (stream, running):
        started.cancel()
        await started.wait()


async def test_a_remote_stream_cancels_through_its_owner(make: MakeStore) -> None:
    a, b = await make(), await make()
    stream = run(a, ScriptedProvider(count=1000, delay=0.01))
    await until(lambda: len(stream.log.entries) > 2)
    remote = await b.find(stream.key)
    assert remote is not None
    remote.cancel()
    await until(lambda: remote.ended)
    done = remote.log.entries[-1]
    assert type(done) is Done
    assert done.finish_reason == "cancelled"
    assert remote.log.entries == stream.log.entries


async def test_readers_on_another_instance_are_seen_by_the_owner(make: MakeStore) -> None:
    a, b = await make(), await make()
    stream = run(a, ScriptedProvider(count=1000, delay=0.01))
    await until(lambda: len(stream.log.entries) > 2)
    assert not await a.read_elsewhere(stream.key)
    remote = await b.find(stream.key)
    assert remote is not None
    subscription: Subscription = remote.log.subscribe("r", lambda _: None, after_seq=0)
    assert await a.read_elsewhere(stream.key)  # at once: find() says so before the next beat
    assert not await b.read_elsewhere(stream.key)  # a's own stream has no reader on a
    await asyncio.sleep(FAST.reader_ttl * 2)
    assert await a.read_elsewhere(stream.key)  # renewed while read
    remote.log.unsubscribe(subscription)
    # Gone within a tick or two, not when a TTL runs out: the hub asks only once, when a grace
    # period ends, and a stale "read elsewhere" would leave the stream running for nobody.
    await asyncio.sleep(FAST.reader_linger + 0.1)
    assert not await a.read_elsewhere(stream.key)
    stream.cancel()
    await stream.wait()


async def test_the_owners_own_readers_count_for_other_instances(make: MakeStore) -> None:
    a, b = await make(), await make()
    stream = run(a, ScriptedProvider(count=1000, delay=0.01))
    await until(lambda: len(stream.log.entries) > 2)
    subscription = stream.log.subscribe(stream.id, lambda _: None)
    await until(lambda: stream.key in a._reading)
    assert await b.read_elsewhere(stream.key)  # a client came back to the owner
    stream.log.unsubscribe(subscription)
    await until(lambda: stream.key not in a._reading)
    await asyncio.sleep(0.05)
    assert not await b.read_elsewhere(stream.key)
    stream.cancel()
    await stream.wait()


async def test_an_idle_remote_stream_stops_being_read(make: MakeStore) -> None:
    a, b = await make(), await make()
    stream = run(a, ScriptedProvider(count=1000, delay=0.01))
    await until(lambda: len(stream.log.entries) > 2)
    remote = await b.find(stream.key)
    assert isinstance(remote, RemoteStream)
    await until(lambda: stream.key not in b._remote, timeout=FAST.remote_idle + 2)
    assert not remote.ended
    assert not b._remote
    assert await b.find(stream.key) is not remote  # read afresh
    stream.cancel()
    await stream.wait()


def test_a_bad_url_is_a_config_error_without_the_password() -> None:
    config = msgspec.convert({"resume": {"store": "redis", "redis_url": "http://:s3cret@h:1/0"}}, Config)
    with pytest.raises(ConfigError, match=r"resume\.redis_url") as raised:
        make_store(config)
    assert "s3cret" not in str(raised.value)


async def test_unreachable_redis_fails_start_up_without_the_password(redis: RedisServer) -> None:
    url = f"redis://user:s3cret@127.0.0.1:{redis.port}/0"
    redis.stop()
    config = msgspec.convert({"resume": {"store": "redis", "redis_url": url}}, Config)
    store = make_store(config)
    with pytest.raises(RedisUnavailable) as raised:
        await store.start()
    message = str(raised.value)
    assert f"redis://user:***@127.0.0.1:{redis.port}/0" in message
    assert "s3cret" not in message


def test_urls_are_redacted() -> None:
    assert redact_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redact_url("rediss://u:pw@h/1?password=x&db=2") == "rediss://u:***@h/1?password=***&db=2"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"


async def test_streams_run_on_when_redis_goes_away(make: MakeStore, redis: RedisServer) -> None:
    a, b = await make(), await make()
    stream = run(a, ScriptedProvider(count=100, delay=0.01))
    await until(lambda: len(stream.log.entries) > 2)
    remote = await b.find(stream.key)
    assert isinstance(remote, RemoteStream)
    redis.stop()
    async with asyncio.timeout(5):
        await stream.wait()
    done = stream.log.entries[-1]
    assert type(done) is Done
    assert done.finish_reason == "stop"
    await until(lambda: remote.ended)  # its reader elsewhere does not hang
    lost = remote.log.entries[-1]
    assert type(lost) is Error
    assert lost.code is ErrorCode.STREAM_LOST
    assert await b.find(stream.key) is None  # no other instance can resume it
    own = await a.find(stream.key)  # its own instance still can, from its ended record
    assert own is not None
    assert own.log is stream.log
    assert await b.admit("k")  # admission falls back to the instance's own streams
    assert not await b.cancel("k")
    assert not await b.read_elsewhere("k")
    redis.start()  # back, empty: new streams are mirrored, found and cancelled again
    await asyncio.sleep(FAST.retry)
    second = run(a, ScriptedProvider(count=1000, delay=0.01))
    await until(lambda: len(second.log.entries) > 2)
    await until(lambda: second.key in a._mirrors and a._mirrors[second.key].announced)
    found = await b.find(second.key)
    assert found is not None
    assert await b.cancel(second.key)
    async with asyncio.timeout(2):
        await second.wait()
    await until(lambda: found.ended)
    assert found.log.entries == second.log.entries


async def test_close_sends_the_terminal_of_streams_ended_just_before(make: MakeStore) -> None:
    a, b = await make(), await make()
    stream = run(a, ScriptedProvider(count=1000, delay=0.01))
    await until(lambda: len(stream.log.entries) > 2)
    stream.shut_down()
    await a.close()
    found = await b.find(stream.key)
    assert found is not None
    assert found.ended
    last = found.log.entries[-1]
    assert type(last) is Error
    assert last.code is ErrorCode.SHUTTING_DOWN
    assert type(found.log.entries[0]) is StartAck


async def test_remote_streams_found_while_a_tick_is_in_flight_are_relayed(
    make: MakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    # A resume on an instance that owns busy streams of its own lands, now and then, while the
    # pump waits on Redis with no remote stream in its pipeline: that tick has no read to relay.
    a, b = await make(max_streams=50), await make(max_streams=50)
    own = run(b, ScriptedProvider(text="b ", count=100_000, delay=0.0005))  # a tick every flush
    rng = random.Random(5)
    for _ in range(40):
        key = new_key()
        assert await a.admit(key)  # as the hub does: the owner is known before the first tick
        stream = run(a, ScriptedProvider(text="a ", count=8, delay=0.005), key=key)
        await until(lambda s=stream: len(s.log.entries) > 1)  # type: ignore[misc]  # bound now
        await asyncio.sleep(rng.uniform(0, FAST.flush_interval))
        remote = await b.find(stream.key)
        assert isinstance(remote, RemoteStream)
        await until(lambda: remote.ended and not b._remote)  # noqa: B023  # awaited right here
        assert remote.log.entries == stream.log.entries
    own.cancel()
    await own.wait()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "the pump failed"


async def test_a_hanging_redis_holds_a_client_up_for_the_timeout_at_most(
    make: MakeStore, redis: RedisServer
) -> None:
    a, b = await make(redis_timeout_seconds=0.1), await make(redis_timeout_seconds=0.1)
    stream = run(a, ScriptedProvider(count=1000, delay=0.01))
    await until(lambda: stream.key in a._mirrors and a._mirrors[stream.key].announced)
    calls: list[tuple[Callable[[], Awaitable[object]], object]] = [
        (lambda: b.admit(new_key()), True),  # admitted against b's own streams, as when Redis is down
        (lambda: b.find(stream.key), None),
        (lambda: b.cancel(stream.key), False),
        (lambda: b.read_elsewhere(stream.key), False),
    ]
    with redis.frozen():
        for call, fallback in calls:
            await asyncio.sleep(FAST.retry)  # past the pause after a failure: each one asks Redis
            started = time.monotonic()
            assert await call() == fallback
            assert time.monotonic() - started < 0.1 + 0.3
    await asyncio.sleep(FAST.retry + 3 * FAST.beat_interval)  # Redis is back; a beats again
    remote = await b.find(stream.key)
    assert isinstance(remote, RemoteStream)
    assert not remote.ended
    assert await b.cancel(stream.key)
    async with asyncio.timeout(2):
        await stream.wait()
    await until(lambda: remote.ended)
    assert remote.log.entries == stream.log.entries


@pytest.mark.parametrize("emptied", ["restarted", "flushed"])
async def test_streams_running_when_redis_comes_back_empty_are_mirrored_again(
    make: MakeStore, redis: RedisServer, raw: aioredis.Redis, emptied: str
) -> None:
    a, b = await make(), await make()
    stream = run(a, ScriptedProvider(count=200, delay=0.01))
    await until(lambda: a._mirrors[stream.key].next_seq > 5)
    if emptied == "restarted":  # no persistence, the documented set-up: back on its port, empty
        redis.stop()
        redis.start()
    else:
        await raw.flushall()
    found: Source | None = None
    async with asyncio.timeout(3):  # the owner's next beats find its heartbeat gone
        while found is None:
            await asyncio.sleep(0.05)
            found = await b.find(stream.key)
    assert isinstance(found, RemoteStream)
    assert not found.ended
    assert await raw.zscore("tw:leases", stream.key) is not None
    found.log.subscribe("r", lambda _: None)  # read, so b follows it to its end
    await until(lambda: found.ended)
    assert found.log.entries == stream.log.entries  # whole, from its ack on
    done = found.log.entries[-1]
    assert type(done) is Done
    assert done.finish_reason == "stop"


async def test_a_reader_ahead_of_a_lost_mirror_gets_stream_lost_at_its_next_seq(make: MakeStore) -> None:
    a, b = await make(), await make()
    stream = run(a, ScriptedProvider(count=1000, delay=0.01))
    await until(lambda: len(stream.log.entries) > 3)
    remote = await b.find(stream.key)
    assert isinstance(remote, RemoteStream)
    await a.abort()  # died; its client had events the mirror never got
    ahead = len(stream.log.entries) + 5
    readers = [remote.log.subscribe("r", lambda _: None, after_seq) for after_seq in (-1, ahead)]
    await until(lambda: remote.ended)
    behind, past = (r.take() for r in readers)
    end = len(remote.log.entries) - 1
    assert [type(m) for m in behind[1:-1]] == [Chunk] * (len(behind) - 2)
    for taken, seq in ((behind, end), (past, ahead + 1)):
        lost = taken[-1]
        assert type(lost) is Error
        assert (lost.code, lost.seq, lost.id) == (ErrorCode.STREAM_LOST, seq, "r")
        assert all(r.finished for r in readers)
    assert len(past) == 1
