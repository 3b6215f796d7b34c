"""``tokenwire serve [--host] [--port] [--config]``."""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import logging
import signal
import socket
import sys
from types import FrameType
from typing import Any

import uvicorn

from server.app import TokenwireApp, create_app
from server.config import Config, ConfigError, load_config
from server.edge.guard import EdgeGuard
from server.edge.log_filter import ClientFaultFilter, RedactingFilter
from server.fastpath.probe import server_protocols

log = logging.getLogger("tokenwire.shutdown")
CUT_POLL_SECONDS = 0.1  # how often the drain looks for a second Ctrl-C (uvicorn polls its own waits so)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tokenwire", description="Real-time LLM streaming gateway.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="interface to listen on (default from config: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default from config: 8000)")
    serve.add_argument("--config", help="path to tokenwire.toml (default: $TOKENWIRE_CONFIG, else none)")
    return parser


def uvicorn_config(app: TokenwireApp, config: Config, **overrides: Any) -> uvicorn.Config:
    """How the gateway runs under uvicorn (the CLI, the tests and the benchmark alike)."""
    edge = EdgeGuard(config.server, app.state.hub.metrics.connection_refused)
    settings: dict[str, Any] = {
        "host": config.server.host,
        "port": config.server.port,
        "loop": "uvloop",
        # httptools and websockets-sansio with synchronous writes and edge bounds, when this
        # uvicorn allows them
        **server_protocols(edge),
        "ws_max_size": config.server.max_message_bytes,
        # Chunks are small JSON messages: deflate costs more CPU per message than it saves.
        "ws_per_message_deflate": False,
        "lifespan": "on",
        "log_config": log_config(),
        "log_level": config.server.log_level,
        "access_log": False,  # a log line per request and socket cost 6% of CPU in profiles
        "timeout_graceful_shutdown": 5,  # after the gateway's own drain (GatewayServer)
    }
    return uvicorn.Config(app, **(settings | overrides))


def log_config() -> dict[str, Any]:
    """uvicorn's logging set-up, its lines passed through the gateway's filters
    (server.edge.log_filter)."""
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": RedactingFilter}, "client_faults": {"()": ClientFaultFilter}}
    for handler in config["handlers"].values():
        handler["filters"] = ["client_faults", "redact"]
    return config


FULL_COLLECTION_EVERY = 100  # collections of the middle generation (Python's default: 10)


def tune_garbage_collector() -> None:
    """The process's collector, set once the app has started: the process owner's job, not the
    app's, which may be embedded in a process that collects its own way.

    What exists then lives as long as the process: frozen, it is left out of every collection.
    Under load a full collection takes 20-40 ms with a few hundred streams, a stall in every
    one of them, and finds nothing to free: closed connections and ended streams leave no
    reference cycles (tests/server/test_cycles.py). So one is considered ten times less often."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


class GatewayServer(uvicorn.Server):
    """uvicorn's server, draining the gateway (server.lifecycle) before uvicorn closes connections.
    A second Ctrl-C cuts the drain short: every stream ends at once with ``shutting_down``.
    It owns the process, so it also tunes the garbage collector once the app has started."""

    def __init__(self, app: TokenwireApp, config: Config, **overrides: Any) -> None:
        super().__init__(uvicorn_config(app, config, **overrides))
        self._shutdown = app.shutdown
        self._cut = False  # a second Ctrl-C came during the drain

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        tune_garbage_collector()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            # Cut the drain, but not uvicorn's own (bounded) shutdown, as its force_exit would:
            # that skips the app's lifespan shutdown (the upstream client, the Redis store). Not
            # recorded either: uvicorn raises each recorded signal again after shutting down,
            # and a second SIGINT there interrupts the event loop mid-callback.
            self._cut = True
            return
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # take no new connections while streams finish
        drain = asyncio.ensure_future(self._shutdown.drain())
        while not drain.done() and not self._cut:
            await asyncio.wait([drain], timeout=CUT_POLL_SECONDS)
        if not drain.done():
            log.warning("second interrupt: ending every stream now, not waiting for them")
            drain.cancel()
            await self._shutdown.cut()
        await super().shutdown(sockets)


def serve(config: Config, host: str, port: int) -> None:
    app = create_app(config)  # raises ConfigError on unknown provider or agent names
    print(f"tokenwire: dashboard http://{host}:{port}/  WebSocket ws://{host}:{port}/v1/ws", flush=True)
    GatewayServer(app, config, host=host, port=port).run()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
        level = config.server.log_level.upper()
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        host = config.server.host if args.host is None else args.host
        serve(config, host, config.server.port if args.port is None else args.port)
    except ConfigError as exc:
        print(f"tokenwire: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # uvicorn raises Ctrl-C again once it has shut down gracefully
        return 130  # 128 + SIGINT, as a shell reports it
    return 0


if __name__ == "__main__":
    sys.exit(main())
