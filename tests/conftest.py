"""Shared fixtures: a real uvicorn server on a free port, in a thread of its own."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
import pytest
import uvicorn

from providers.base import Provider
from server.app import TokenwireApp, create_app
from server.cli import uvicorn_config
from server.config import Config
from server.hub import StreamHub
from tests.support.upstream import FakeUpstream


@dataclass
class Gateway:
    http: str
    ws: str
    app: TokenwireApp

    @property
    def hub(self) -> StreamHub:
        hub: StreamHub = self.app.state.hub
        return hub


class ServerThread(threading.Thread):
    def __init__(self, app: TokenwireApp, config: Config) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn_config(app, config, log_level="warning"))

    def run(self) -> None:
        self.server.run(sockets=[self.sock])

    def stop(self) -> None:
        self.server.should_exit = True
        self.join(10)


class StartGateway(Protocol):
    def __call__(
        self,
        config: dict[str, Any] | None = None,
        providers: Sequence[Provider] = (),
        environ: dict[str, str] | None = None,
    ) -> Gateway: ...


@pytest.fixture
def start_gateway() -> Iterator[StartGateway]:
    """Start gateways with a config given as a dict shaped like tokenwire.toml, and provider
    environment variables (keys, base URLs) given as ``environ``."""
    threads: list[ServerThread] = []

    def start(
        config: dict[str, Any] | None = None,
        providers: Sequence[Provider] = (),
        environ: dict[str, str] | None = None,
    ) -> Gateway:
        typed = msgspec.convert(config or {}, Config)
        app = create_app(typed, providers, environ or {})  # no provider keys from the real env
        thread = ServerThread(app, typed)
        thread.start()
        deadline = time.monotonic() + 10
        while not thread.server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        threads.append(thread)
        base = f"127.0.0.1:{thread.port}"
        return Gateway(http=f"http://{base}", ws=f"ws://{base}/v1/ws", app=app)

    yield start
    for thread in threads:
        thread.stop()


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    """A fake provider upstream on a free port (see tests/support/upstream.py)."""
    fake = FakeUpstream()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def gateway(start_gateway: StartGateway) -> Gateway:
    """A gateway with defaults, the rulebased provider pacing 5 ms between chunks."""
    return start_gateway({"providers": {"rulebased": {"chunk_delay_ms": 5}}})
