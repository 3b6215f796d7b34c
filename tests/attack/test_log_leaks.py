"""No secret reaches the log of a real `tokenwire serve` process, at INFO or at DEBUG: not the
gateway token (sent as a query parameter by browsers, as a header by servers), not a wrong
token, not a provider key, not a prompt; and a refused WebSocket handshake is logged as refused.
"""

from __future__ import annotations

import signal

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


@pytest.mark.parametrize("level", ["info", "debug"])
async def test_no_secret_reaches_the_log(level: str) -> None:
    port = free_port()
    env = {
        "TOKENWIRE_SERVER__AUTH_TOKENS": f'["{TOKEN}"]',
        "TOKENWIRE_SERVER__LOG_LEVEL": level,
        "TOKENWIRE_PROVIDERS__RULEBASED__CHUNK_DELAY_MS": "0",
        "OPENAI_API_KEY": PROVIDER_KEY,
    }
    process = tokenwire("serve", "--port", str(port), env=env)
    try:
        await wait_healthy(f"127.0.0.1:{port}")
        await use_the_gateway(f"127.0.0.1:{port}")
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
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
