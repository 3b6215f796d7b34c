"""The AI SDK chat index of the resume stores (``bind_chat``/``active_chat``): in memory, and on a
real redis-server shared by two stores (two instances)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from protocol.messages import ChatMessage
from providers.base import GenerationRequest
from server.config import Config
from server.stores.memory import MemoryStore
from server.stores.redis import RedisStore, Timing
from server.stores.redis_remote import RemoteStream
from server.streams.runner import Stream, StreamSettings
from tests.support.providers import ScriptedProvider
from tests.support.redis_server import RedisServer

SETTINGS = StreamSettings(stream_timeout=60, first_token_timeout=60, idle_timeout=60, buffer_size=65536)
FAST = Timing(flush_interval=0.005, beat_interval=0.1, heartbeat_ttl=0.3, lease_ttl=1.0, reader_ttl=0.3,
              lost_after=0.3, remote_idle=1.0, retry=0.2)  # fmt: skip


def config(**resume: Any) -> Config:
    return msgspec.convert({"resume": resume, "streaming": {"stream_timeout_seconds": 120}}, Config)


def run(store: MemoryStore | RedisStore, key: str) -> Stream:
    """A stream that runs until cancelled, started on ``store`` as the hub does."""
    request = GenerationRequest(model="m", messages=[ChatMessage("user", "hi")])
    stream = Stream("s1", ScriptedProvider(first_delay=3600), request, SETTINGS, lambda *_: None, key=key)
    store.started(stream)
    stream.start(store.ended)
    return stream


async def stop(stream: Stream) -> None:
    stream.cancel()
    await stream.wait()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


# ---- memory ----------------------------------------------------------------------------------


async def test_memory_binds_a_running_stream_until_it_ends() -> None:
    store = MemoryStore(config())
    assert await store.active_chat("c1") is None
    stream = run(store, "k1")
    await store.bind_chat("c1", "k1", "m1")
    assert await store.active_chat("c1") == (stream, "m1")
    await stop(stream)
    assert await store.active_chat("c1") is None
    assert not store._chats  # the index holds running streams only
    assert not store._chat_of


async def test_memory_newer_stream_of_a_chat_replaces_the_older() -> None:
    store = MemoryStore(config())
    old, new = run(store, "k1"), run(store, "k2")
    await store.bind_chat("c1", "k1", "m1")
    await store.bind_chat("c1", "k2", "m2")
    assert await store.active_chat("c1") == (new, "m2")
    await stop(old)  # the replaced stream's end leaves the chat's binding alone
    assert await store.active_chat("c1") == (new, "m2")
    await stop(new)
    assert await store.active_chat("c1") is None
    assert not store._chats
    assert not store._chat_of


async def test_memory_never_binds_an_ended_or_unknown_stream() -> None:
    store = MemoryStore(config())
    stream = run(store, "k1")
    await stop(stream)
    await store.bind_chat("c1", "k1", "m1")
    await store.bind_chat("c2", "nowhere", "m2")
    assert await store.active_chat("c1") is None
    assert await store.active_chat("c2") is None
    assert not store._chats


# ---- Redis -----------------------------------------------------------------------------------


@pytest.fixture
async def stores(redis: RedisServer) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    pair = (
        RedisStore(config(store="redis", redis_url=redis.url), timing=FAST),
        RedisStore(config(store="redis", redis_url=redis.url), timing=FAST),
    )
    for store in pair:
        await store.start()
    yield pair
    for store in pair:
        await store.close()


async def test_redis_chat_is_found_from_another_instance(
    stores: tuple[RedisStore, RedisStore], raw: aioredis.Redis
) -> None:
    a, b = stores
    key = f"k-{time.monotonic_ns()}"
    stream = run(a, key)
    await a.bind_chat("c1", key, "m1")
    assert await a.active_chat("c1") == (stream, "m1")
    found = await b.active_chat("c1")
    assert found is not None
    remote, message_id = found
    assert isinstance(remote, RemoteStream)
    assert (remote.key, message_id) == (key, "m1")
    assert not remote.ended
    ttl_ms = await raw.pttl("tw:chat:c1")
    assert 0 < ttl_ms <= (120 + 60) * 1000  # bounded by the stream timeout plus a margin
    await stop(stream)
    assert await a.active_chat("c1") is None
    await until(lambda: remote.ended)  # B learns of the end through the mirror
    assert await b.active_chat("c1") is None  # the binding outlives the stream: never answers


async def test_redis_newer_binding_from_another_instance_wins(stores: tuple[RedisStore, RedisStore]) -> None:
    a, b = stores
    first, second = run(a, f"k1-{time.monotonic_ns()}"), run(b, f"k2-{time.monotonic_ns()}")
    await a.bind_chat("c1", first.key, "m1")
    await b.bind_chat("c1", second.key, "m2")
    found = await a.active_chat("c1")
    assert found is not None
    assert (found[0].key, found[1]) == (second.key, "m2")
    assert await b.active_chat("c1") == (second, "m2")
    await stop(first)
    await stop(second)


async def test_redis_ignores_a_binding_it_cannot_read(
    stores: tuple[RedisStore, RedisStore], raw: aioredis.Redis
) -> None:
    a, _ = stores
    await raw.set("tw:chat:c1", b"not a binding")
    assert await a.active_chat("c1") is None
    await raw.set("tw:chat:c2", b'["no-such-stream", "m1"]')
    assert await a.active_chat("c2") is None
