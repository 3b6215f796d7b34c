"""Which measuring client costs the least CPU per message: ``python -m bench.client_cost``.

The same gateway WebSocket traffic (N streams of 20 ms-paced chunks on N/8 sockets) is read by
the bench's bare-protocol client, by the ``websockets`` asyncio client and by aiohttp's WebSocket
client; the direct SSE traffic by the bench's HTTP client and by aiohttp's streaming response.
Each reader decodes every message with msgspec, so the difference is the transport's cost. The
figure is the bench process's CPU time (``time.process_time``) divided by messages read.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import msgspec
from websockets.asyncio.client import connect

from bench import gateway as procs
from bench.clients import Batch, HttpConnection, StreamResult, WsConnection, direct_request, gateway_body
from bench.scenario import Scenario

HOST = "127.0.0.1"


class _Message(msgspec.Struct):
    type: str
    id: str | None = None
    seq: int | None = None


_decode = msgspec.json.Decoder(_Message).decode


async def _bare_ws(port: int, scenario: Scenario, streams: int) -> int:
    sockets = [await WsConnection.open(HOST, port) for _ in range(streams // 8)]
    batch = Batch()
    for i in range(streams):
        stream = batch.add(StreamResult(f"b{i}", scenario))
        sockets[i // 8].start(stream, gateway_body(stream.sid, "openai", scenario, ws=True))
    await batch.wait(60)
    for ws in sockets:
        ws.close()
    return sum(ws.messages for ws in sockets)


async def _websockets(port: int, scenario: Scenario, streams: int) -> int:
    async def one(k: int) -> int:
        count = 0
        async with connect(f"ws://{HOST}:{port}/v1/ws", compression=None) as ws:
            await ws.recv()  # ready
            for i in range(8):
                await ws.send(gateway_body(f"w{k}-{i}", "openai", scenario, ws=True).decode())
            ended = 0
            while ended < 8:
                message = _decode(await ws.recv(decode=False))
                count += 1
                if message.type in ("done", "error"):
                    ended += 1
        return count

    return sum(await asyncio.gather(*(one(k) for k in range(streams // 8))))


async def _aiohttp_ws(port: int, scenario: Scenario, streams: int) -> int:
    async with aiohttp.ClientSession() as session:

        async def one(k: int) -> int:
            count = 0
            async with session.ws_connect(f"http://{HOST}:{port}/v1/ws", compress=0) as ws:
                await ws.receive()  # ready
                for i in range(8):
                    await ws.send_str(gateway_body(f"a{k}-{i}", "openai", scenario, ws=True).decode())
                ended = 0
                while ended < 8:
                    frame = await ws.receive()
                    message = _decode(frame.data)
                    count += 1
                    if message.type in ("done", "error"):
                        ended += 1
            return count

        return sum(await asyncio.gather(*(one(k) for k in range(streams // 8))))


async def _bare_http(port: int, scenario: Scenario, streams: int) -> int:
    conns = [await HttpConnection.open(HOST, port) for _ in range(streams)]
    batch = Batch()
    for i, conn in enumerate(conns):
        stream = batch.add(StreamResult(f"h{i}", scenario))
        conn.request(stream, direct_request("openai", scenario, f"{HOST}:{port}"), "openai")
    await batch.wait(60)
    for conn in conns:
        conn.close()
    return streams * (scenario.chunks + 4)  # role, content, finish, usage, [DONE]


async def _aiohttp_http(port: int, scenario: Scenario, streams: int) -> int:
    body = direct_request("openai", scenario, "x").partition(b"\r\n\r\n")[2]
    async with aiohttp.ClientSession() as session:

        async def one() -> int:
            count = 0
            async with session.post(
                f"http://{HOST}:{port}/v1/chat/completions",
                data=body,
                headers={"content-type": "application/json"},
            ) as response:
                async for line in response.content:
                    if line.startswith(b"data: "):
                        count += 1
                        if not line.startswith(b"data: [DONE]"):
                            msgspec.json.decode(line[6:])
            return count

        return sum(await asyncio.gather(*(one() for _ in range(streams))))


async def _measure(
    name: str, run: Callable[[int, Scenario, int], Awaitable[int]], port: int, streams: int
) -> dict[str, float]:
    scenario = Scenario(chunks=100, size=8, pacing_ms=20)
    await run(port, Scenario(chunks=5, size=8, pacing_ms=1), 8)  # warm-up
    cpu0 = time.process_time()
    messages = await run(port, scenario, streams)
    cpu = time.process_time() - cpu0
    result = {"messages": messages, "cpu_s": round(cpu, 3), "us_per_message": round(cpu / messages * 1e6, 2)}
    print(f"{name:28} {messages:7} messages  {cpu:6.2f} s CPU  {result['us_per_message']:6.2f} µs/message")
    return result


async def main_async(streams: int) -> dict[str, dict[str, float]]:
    workdir = procs.workdir()
    upstream, up_port = await procs.start_upstream(workdir, None)
    gateway, gw_port = await procs.start_gateway(workdir, up_port, None)
    out: dict[str, dict[str, float]] = {}
    try:
        out["bench WebSocket client"] = await _measure("bench WebSocket client", _bare_ws, gw_port, streams)
        out["websockets client"] = await _measure("websockets client", _websockets, gw_port, streams)
        out["aiohttp ws client"] = await _measure("aiohttp ws client", _aiohttp_ws, gw_port, streams)
        out["bench HTTP client (direct)"] = await _measure(
            "bench HTTP client (direct)", _bare_http, up_port, streams
        )
        out["aiohttp HTTP client (direct)"] = await _measure(
            "aiohttp HTTP client (direct)", _aiohttp_http, up_port, streams
        )
    finally:
        gateway.stop()
        upstream.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.client_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=128, help="streams (a multiple of 8)")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main_async(args.streams))
    return 0


if __name__ == "__main__":
    sys.exit(main())
