"""Fixtures of the server suites that run the Redis store on a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from tests.support.redis_server import RedisServer, redis_server


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own (skipped loudly without one, failed under CI)."""
    with redis_server() as server:
        yield server


@pytest.fixture
async def raw(redis: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A plain client of that server, to look at what the store wrote."""
    client = aioredis.from_url(redis.url)
    yield client
    await client.aclose()
