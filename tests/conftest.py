"""Shared fixtures: a real uvicorn server on a free port, in a thread of its own."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
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
from tests.support.faulty_upstream import FaultyUpstream
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
    def __init__(self, app: TokenwireApp, config: Config, uvicorn_options: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        _started_servers.append(self)  # for the leak check after the test
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn_config(app, config, **{"log_level": "warning", **uvicorn_options})
        )

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
        uvicorn_options: dict[str, Any] | None = None,
    ) -> Gateway: ...


@pytest.fixture
def start_gateway() -> Iterator[StartGateway]:
    """Start gateways with a config given as a dict shaped like tokenwire.toml, and provider
    environment variables (keys, base URLs) given as ``environ``; ``uvicorn_options`` override
    how server.cli runs uvicorn."""
    threads: list[ServerThread] = []

    def start(
        config: dict[str, Any] | None = None,
        providers: Sequence[Provider] = (),
        environ: dict[str, str] | None = None,
        uvicorn_options: dict[str, Any] | None = None,
    ) -> Gateway:
        # A client that leaves cancels its streams at once unless a test asks for a grace period:
        # otherwise streams would outlive the test, waiting for a resume that never comes.
        config = dict(config or {})
        config["resume"] = {"resume_grace_seconds": 0, **config.get("resume", {})}
        typed = msgspec.convert(config, Config)
        app = create_app(typed, providers, environ or {})  # no provider keys from the real env
        thread = ServerThread(app, typed, uvicorn_options or {})
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
async def fake() -> AsyncIterator[FaultyUpstream]:
    """A raw-TCP fake upstream answering each request with a script (tests/support/faulty_upstream.py)."""
    upstream = FaultyUpstream()
    await upstream.start()
    yield upstream
    await upstream.stop()


@pytest.fixture
def gateway(start_gateway: StartGateway) -> Gateway:
    """A gateway with defaults, the rulebased provider pacing 5 ms between chunks."""
    return start_gateway({"providers": {"rulebased": {"chunk_delay_ms": 5}}})


# ---- leak checks -----------------------------------------------------------------------------
#
# After every test that started a gateway, nothing of it may outlive the test's clients: no stream
# in the hub, no task on the server's event loop but uvicorn's own (the serve task and the
# lifespan), no open client connection. After every test that used the fake upstream, no request
# of it may still be answered (the gateway hung up on every upstream response it abandoned).
# Both allow LEAK_GRACE_SECONDS for a closing socket to be noticed, polling.
#
# A stream whose client went away is kept running for ``[resume] resume_grace_seconds`` waiting
# for a resume, by design: such a "parked" stream (no reader left) and its task are leaks only when
# that grace period is short enough to wait for (RESUME_GRACE_WAITED); with a longer one (the
# default is 30 s) they are tolerated and only everything else is checked.
#
# A test that shows a known server leak carries ``@pytest.mark.known_leak("reason")`` (or, for a
# test in a file the marker cannot go in, an entry in KNOWN_LEAKS): its leak check is then an
# expected failure (reported as xfail), and a clean run is an error (XPASS strict), so the mark is
# removed once the leak is fixed.

LEAK_GRACE_SECONDS = 2.0
RESUME_GRACE_WAITED = 5.0  # parked streams of a gateway with at most this resume grace must end
SERVER_OWN_TASKS = frozenset({"Server.serve", "LifespanOn.main"})  # uvicorn's serve task, lifespan

KNOWN_LEAKS: dict[str, str] = {}  # test node id -> the leak it shows, as for known_leak

_started_servers: list[ServerThread] = []


@dataclass(frozen=True)
class GatewayLeaks:
    running: list[str]  # ids of the streams still in hub.running (parked ones aside)
    http_streams: list[str]  # ids still in hub.http_streams (parked ones aside)
    tasks: list[str]  # tasks on the server's loop that are not uvicorn's own (or a parked stream's)
    connections: int  # client connections uvicorn still holds
    parked: list[str]  # streams without a reader, waiting for a resume

    def __bool__(self) -> bool:
        return bool(self.running or self.http_streams or self.tasks or self.connections)


def _describe_task(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return f"{task.get_name()} ({getattr(coro, '__qualname__', repr(coro))})"


def server_thread(gw: Gateway) -> ServerThread:
    """The thread serving ``gw``."""
    return next(thread for thread in _started_servers if thread.app is gw.app)


def _resume_grace(hub: StreamHub) -> float:
    resume = getattr(hub.config, "resume", None)
    return float(getattr(resume, "resume_grace_seconds", 0.0))


def gateway_leaks(thread: ServerThread, tolerate_parked: bool = False) -> GatewayLeaks:
    """What of the gateway run by ``thread`` is still alive, read on the server's own loop."""
    server = thread.server
    hub: StreamHub = thread.app.state.hub
    loop: asyncio.AbstractEventLoop = server.servers[0].get_loop()

    async def snapshot() -> GatewayLeaks:
        this = asyncio.current_task()
        parked = {s for s in hub.running if not s.ended and not getattr(s.log, "has_readers", True)}
        excused = parked if tolerate_parked else set()
        excused_tasks = {f"stream:{s.id}" for s in excused}
        tasks = [
            _describe_task(task)
            for task in asyncio.all_tasks()
            if task is not this
            and getattr(task.get_coro(), "__qualname__", "") not in SERVER_OWN_TASKS
            and task.get_name() not in excused_tasks
        ]
        return GatewayLeaks(
            running=sorted(s.id for s in hub.running if s not in excused),
            http_streams=sorted(sid for sid, s in hub.http_streams.items() if s not in excused),
            tasks=sorted(tasks),
            connections=len(server.server_state.connections),
            parked=sorted(s.id for s in parked),
        )

    return asyncio.run_coroutine_threadsafe(snapshot(), loop).result(timeout=5)


def wait_for_no_gateway_leaks(thread: ServerThread, grace: float = LEAK_GRACE_SECONDS) -> GatewayLeaks:
    """Poll until nothing leaks or ``grace`` seconds (plus a short resume grace) have passed;
    returns the last snapshot."""
    resume_grace = _resume_grace(thread.app.state.hub)
    tolerate_parked = resume_grace > RESUME_GRACE_WAITED
    deadline = time.monotonic() + grace + (0 if tolerate_parked else resume_grace)
    while True:
        leaks = gateway_leaks(thread, tolerate_parked)
        if not leaks or time.monotonic() >= deadline:
            return leaks
        time.sleep(0.02)


def _report_leaks(request: pytest.FixtureRequest, problems: list[str]) -> None:
    known = request.node.get_closest_marker("known_leak")
    reason = KNOWN_LEAKS.get(request.node.nodeid)
    if known is not None:
        reason = known.args[0] if known.args else "known leak"
    if reason is not None:
        if problems:
            pytest.xfail(f"{reason}: " + "; ".join(problems))
        pytest.fail(f"[XPASS(strict)] known_leak no longer leaks, remove the marker: {reason}", pytrace=False)
    if problems:
        pytest.fail("leak check: " + "; ".join(problems), pytrace=False)


_call_failed = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if report.when == "call":
        item.stash[_call_failed] = report.failed
    return report


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "known_leak(reason): the leak check after this test is expected to find this leak"
    )


@pytest.fixture
async def upstream_leak_check(request: pytest.FixtureRequest, upstream: FakeUpstream) -> AsyncIterator[None]:
    """Fails the test when the fake upstream still answers a request after it (see above)."""
    yield
    if request.node.stash.get(_call_failed, False):
        return
    deadline = time.monotonic() + LEAK_GRACE_SECONDS
    while upstream.in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    if upstream.in_flight:
        pytest.fail(
            f"leak check: the fake upstream still answers {upstream.in_flight} request(s) "
            f"{LEAK_GRACE_SECONDS:g} s after the test (an upstream response the gateway never closed)",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def leak_check(request: pytest.FixtureRequest) -> Iterator[None]:
    """Runs the gateway and upstream leak checks after every test that used those fixtures."""
    names = request.fixturenames
    if "start_gateway" in names:
        # Set up before this fixture, so torn down after it: the servers still run when we look.
        request.getfixturevalue("start_gateway")
    if "upstream" in names:
        request.getfixturevalue("upstream_leak_check")  # checked after this, gateways still running
    _started_servers.clear()
    yield
    threads = [t for t in _started_servers if t.is_alive() and t.server.started]
    _started_servers.clear()
    if request.node.stash.get(_call_failed, False):
        return  # the test failed already: its own failure is the news
    problems = []
    for thread in threads:
        leaks = wait_for_no_gateway_leaks(thread)
        if leaks:
            problems.append(
                f"gateway on port {thread.port}, {LEAK_GRACE_SECONDS:g} s after the test: "
                f"streams in hub.running {leaks.running}, in hub.http_streams {leaks.http_streams}, "
                f"tasks {leaks.tasks}, open client connections {leaks.connections} "
                f"(streams without a reader: {leaks.parked})"
            )
    _report_leaks(request, problems)
