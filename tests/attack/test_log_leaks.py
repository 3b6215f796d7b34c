"""What reaches the log of a real `tokenwire serve` process, at INFO and at DEBUG.

No secret: not the gateway token (sent as a query parameter by browsers, as a header by
servers), not a wrong token, not a provider key, not a prompt; a refused WebSocket handshake is
logged as refused. And a client's malformed input is one warning line, never a traceback.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from tests.support.process import free_port, tokenwire, wait_healthy
from tests.support.wsclient import collect, recv, start

TOKEN = "tw-secret-token-5521"
WRONG = "tw-wrong-token-7734"
PROVIDER_KEY = "sk-canary-provider-key-9083"
PROMPT = "PROMPT-SENTINEL-4417"


async def use_the_gateway(base: str) -> None:
    """A browser's WebSocket, a server's SSE stream, a token in an HTTP query, a wrong token."""
    async with connect(f"ws://{base}/v1/ws?token={TOKEN}") as ws:
        await recv(ws)  # ready
        await start(ws, "a", prompt=PROMPT)
        await collect(ws, {"a"})
    with pytest.raises(ConnectionClosedError) as refused:
        async with connect(f"ws://{base}/v1/ws?token={WRONG}") as ws:
            await recv(ws)
    assert refused.value.rcvd is not None
    assert refused.value.rcvd.code == 1008
    bearer = {"authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://{base}/v1/streams", json={"prompt": PROMPT}, headers=bearer) as sse:
            assert sse.status == 200
            await sse.read()
        async with http.get(f"http://{base}/v1/models?token={TOKEN}") as models:
            assert models.status == 200
        async with http.get(f"http://{base}/v1/models?token={WRONG}") as wrong:
            assert wrong.status == 401


async def served_log(env: dict[str, str], use: Callable[[str], Awaitable[None]]) -> str:
    """The output of a `tokenwire serve` with ``env``, used by ``use``, then interrupted."""
    port = free_port()
    process = tokenwire("serve", "--port", str(port), env=env)
    try:
        await wait_healthy(f"127.0.0.1:{port}")
        await use(f"127.0.0.1:{port}")
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    return output


@pytest.mark.parametrize("level", ["info", "debug"])
async def test_no_secret_reaches_the_log(level: str) -> None:
    env = {
        "TOKENWIRE_SERVER__AUTH_TOKENS": f'["{TOKEN}"]',
        "TOKENWIRE_SERVER__LOG_LEVEL": level,
        "TOKENWIRE_PROVIDERS__RULEBASED__CHUNK_DELAY_MS": "0",
        "OPENAI_API_KEY": PROVIDER_KEY,
    }
    output = await served_log(env, use_the_gateway)
    for secret in (TOKEN, WRONG, PROVIDER_KEY, PROMPT):
        assert secret not in output, [line for line in output.splitlines() if secret in line]
    handshakes = [line for line in output.splitlines() if '"WebSocket /v1/ws' in line]
    assert len(handshakes) == 2, output
    assert handshakes[0].endswith('"WebSocket /v1/ws?[redacted]" [accepted]')
    assert handshakes[1].endswith(
        '"WebSocket /v1/ws?[redacted]" [refused: closed with 1008, a valid API token is required]'
    )
    if level == "debug":
        assert "DEBUG:    < GET /v1/ws?[redacted] HTTP/1.1" in output
        assert "DEBUG:    < TEXT [" in output  # frames are logged, by kind and size


async def test_a_websocket_over_the_connection_limit_is_logged_as_refused() -> None:
    async def one_too_many(base: str) -> None:
        async with connect(f"ws://{base}/v1/ws") as first:
            await recv(first)
            async with connect(f"ws://{base}/v1/ws") as second:
                with pytest.raises(ConnectionClosedError, match="1013"):
                    await recv(second)

    output = await served_log({"TOKENWIRE_SERVER__MAX_CONNECTIONS": "1"}, one_too_many)
    handshakes = [line for line in output.splitlines() if '"WebSocket /v1/ws' in line]
    assert handshakes[0].endswith('"WebSocket /v1/ws" [accepted]')
    assert handshakes[1].endswith('"WebSocket /v1/ws" [refused: closed with 1013, too many connections]')


HANDSHAKE = (
    b"GET /v1/ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


def exchange(base: str, *writes: bytes) -> bytes:
    """Send each of ``writes`` on one connection; what came back to the last, in 0.3 s."""
    host, port = base.split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.settimeout(0.3)
        for data in writes:
            sock.sendall(data)
            answer = b""
            try:
                while chunk := sock.recv(65536):
                    answer += chunk
            except TimeoutError:
                pass
    return answer


async def send_malformed_input(base: str) -> None:
    invalid_utf8_text = bytes((0x81, 0x82, 0, 0, 0, 0, 0xFF, 0xFE))  # masked with 0
    closed = await asyncio.to_thread(exchange, base, HANDSHAKE + b"\r\n", invalid_utf8_text)
    assert closed.startswith(b"\x88\x02\x03\xef")  # close 1007
    for oversized in (b"X-Long: " + b"a" * 9000 + b"\r\n", b"".join(b"X-%d: a\r\n" % i for i in range(120))):
        answer = await asyncio.to_thread(exchange, base, HANDSHAKE + oversized + b"\r\n")
        assert answer.startswith(b"HTTP/1.1 431 ")


@pytest.mark.parametrize("level", ["info", "debug"])
async def test_malformed_input_is_one_warning_line_without_a_traceback(level: str) -> None:
    output = await served_log({"TOKENWIRE_SERVER__LOG_LEVEL": level}, send_malformed_input)
    assert "Traceback" not in output, output
    assert output.count("WARNING:  closed a WebSocket with 1007: invalid UTF-8 in a text frame") == 1, output
    assert output.count("WARNING tokenwire.edge: closed a connection from 127.0.0.1: request head") == 1, (
        output
    )
