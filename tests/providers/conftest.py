"""Fixtures of the HTTP client's tests: raw servers (tests/support/raw_http.py) and a client."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import pytest

from providers.http.client import HttpClient
from tests.support.raw_http import (
    Handler,
    RawServer,
    Serve,
)


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start servers: ``await serve(handler, tls=None)``; stopped after the test."""
    started: list[RawServer] = []

    async def start(handler: Handler, tls: ssl.SSLContext | None = None) -> RawServer:
        server = RawServer(handler, tls)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    client = HttpClient(connect_timeout=2)
    await client.start()
    yield client
    await client.close()
