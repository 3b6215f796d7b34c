"""Fixtures of the end-to-end tests that run gateways on a real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis

from tests.support.redis_server import RedisServer, redis_server


@pytest.fixture(scope="module")
def redis_process() -> Iterator[RedisServer]:
    # One per module, so that it outlives every test's gateways and their leak checks.
    with redis_server() as server:
        yield server


@pytest.fixture
async def redis_url(redis_process: RedisServer) -> str:
    """The module's Redis, emptied for the test."""
    client = aioredis.from_url(redis_process.url)
    await client.flushall()
    await client.aclose()
    return redis_process.url
