"""Start and stop the processes under test: the fake upstream and the gateway, each its own process
(and, for the ``resume`` scenario, a throw-away redis-server; for ``ai_sdk``, the AI SDK's Node
route).

The gateway runs exactly as deployed (``python -m server.cli serve``), with a config that raises
the stream limits and environment variables that point its OpenAI and Anthropic providers at the
fake upstream. Output goes to log files (a pipe nobody reads would block the process).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
# The checkout whose gateway runs: this one, or another (``--gateway-tree``), so two trees are
# compared by one harness in one sitting.
GATEWAY_TREE = REPO
GC_PROBE = Path(__file__).resolve().parent / "gcprobe"

CONFIG = """\
[server]
host = "127.0.0.1"
port = {port}

[streaming]
max_concurrent_streams = 10000
max_streams_per_connection = 64
# The bench starts streams back to back on one socket; the per-connection start rate limit
# (20/s by default) would refuse most of them.
starts_per_second = 100000
starts_burst = 100000
"""
# Ended streams stay resumable for retention_seconds (default 300): memory that fills up to a
# plateau by design. A short retention lets the soak reach that plateau within its run.
SHORT_RETENTION = """
[resume]
retention_seconds = 5
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pin(pid: int, cpus: set[int] | None) -> None:
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(pid, cpus)


class Process:
    """A child process with its log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], workdir: Path, cwd: Path = REPO
    ) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.ps = psutil.Process(self.popen.pid)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENWIRE_")}
    env["PYTHONUNBUFFERED"] = "1"
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(var, None)  # the gateway's session trusts the environment: keep localhost direct
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


async def _wait_http(port: int, path: str, proc: Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    request = f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n".encode()
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            status = await asyncio.wait_for(reader.readline(), 2)
            writer.close()
            if b" 200 " in status:
                return
        except OSError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not answer {path} within {timeout} s:\n{proc.log_tail()}")


async def _started(proc: Process, ready: Awaitable[None]) -> None:
    """Wait for ``ready``; a process that does not get there is stopped (no leftover)."""
    try:
        await ready
    except BaseException:
        proc.stop()
        raise


async def start_upstream(workdir: Path, cpus: set[int] | None) -> tuple[Process, int]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.fake_upstream", "--port", str(port)]
    proc = Process("upstream", argv, _env(), workdir)
    pin(proc.pid, cpus)
    await _started(proc, _wait_http(port, "/healthz", proc, 20))
    return proc, port


async def start_gateway(
    workdir: Path,
    upstream_port: int,
    cpus: set[int] | None,
    name: str = "gateway",
    gc_probe: bool = False,
    extra_config: str = "",
) -> tuple[Process, int]:
    """``extra_config``: more TOML sections, e.g. ``[resume]`` (the bench scenario ``resume``)."""
    port = free_port()
    config = workdir / f"{name}.toml"
    config.write_text(CONFIG.format(port=port) + extra_config)
    env = _env()
    env.update(
        {
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
            "ANTHROPIC_API_KEY": "sk-bench",
            "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{upstream_port}",
        }
    )
    if gc_probe:  # bench/gcprobe/sitecustomize.py logs the gateway's garbage collections
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(GC_PROBE), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--config", str(config)]
    proc = Process(name, argv, env, workdir, cwd=GATEWAY_TREE)
    pin(proc.pid, cpus)
    await _started(proc, _wait_http(port, "/healthz", proc, 30))
    return proc, port


AI_SDK_NODE = REPO / "tests" / "ai_sdk_node"
AI_SDK_ROUTE = Path(__file__).resolve().parent / "ai_sdk_route" / "route.mjs"


def ai_sdk_node() -> Path | None:
    """Node 22 of tests/ai_sdk_node when its pinned packages are installed (the Makefile's stamp)."""
    node = AI_SDK_NODE / "node_modules" / ".bin" / "node"
    installed = (AI_SDK_NODE / "node_modules" / ".installed").exists()
    return node if installed and node.exists() else None


async def start_ai_sdk_route(
    workdir: Path, upstream_port: int, cpus: set[int] | None, node: Path
) -> tuple[Process, int]:
    """The AI SDK's own Node route (bench/ai_sdk_route/route.mjs) in front of the fake upstream.
    Its text runs as ``--eval`` in tests/ai_sdk_node: evaluated code resolves its imports from the
    working directory (a script file would from its own), so the pinned packages are the ones used."""
    port = free_port()
    upstream = f"http://127.0.0.1:{upstream_port}/v1"
    code = AI_SDK_ROUTE.read_text()
    argv = [
        str(node),
        "--input-type=module",
        "--eval",
        code,
        "--",
        "--port",
        str(port),
        "--upstream",
        upstream,
    ]
    proc = Process("ai_sdk_route", argv, _env(), workdir, cwd=AI_SDK_NODE)
    pin(proc.pid, cpus)
    await _started(proc, _wait_http(port, "/healthz", proc, 30))
    for thread in proc.ps.threads():  # V8's helper threads may have started before the pin
        pin(thread.id, cpus)
    return proc, port


def redis_server() -> str | None:
    """The ``redis-server`` executable (``$BENCH_REDIS_SERVER``, else from ``PATH``), or None."""
    return shutil.which(os.environ.get("BENCH_REDIS_SERVER") or "redis-server")


async def start_redis(workdir: Path, cpus: set[int] | None, executable: str) -> tuple[Process, int]:
    """A throw-away redis-server on a free port: no persistence, its files in ``workdir``."""
    port = free_port()
    data = workdir / "redis"
    data.mkdir(exist_ok=True)
    argv = [
        executable,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(data),
        "--daemonize", "no",
    ]  # fmt: skip
    proc = Process("redis", argv, _env(), workdir)
    pin(proc.pid, cpus)
    await _started(proc, _wait_redis(port, proc, 10))
    return proc, port


async def _wait_redis(port: int, proc: Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"PING\r\n")
            answer = await asyncio.wait_for(reader.readline(), 2)
            writer.close()
            if answer.startswith(b"+PONG"):
                return
        except (OSError, TimeoutError):
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not answer PING within {timeout} s:\n{proc.log_tail()}")


def gc_events(proc: Process, start: float, end: float) -> list[dict[str, float]]:
    """The collections ``--gc-probe`` logged that started between ``start`` and ``end``."""
    events = []
    try:
        text = proc.log_path.read_text(errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        if not line.startswith("tokenwire-bench-gc "):
            continue
        fields = dict(part.split("=", 1) for part in line.split()[1:])
        at = float(fields["start"])
        if start <= at <= end:
            events.append(
                {
                    "at": at,
                    "generation": int(fields["gen"]),
                    "ms": float(fields["ms"]),
                    "tracked": int(fields["tracked"]),
                }
            )
    return events


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tokenwire-bench-"))
