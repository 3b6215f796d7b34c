"""SIGTERM: running streams get a grace period, the rest end with `shutting_down`, sockets close 1001."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.process import free_port, tokenwire, wait_healthy
from tests.support.sseclient import read_events
from tests.support.wsclient import Message, recv, start

GRACE = 1.0
CONFIG = f"""
[server]
shutdown_grace_seconds = {GRACE}
[providers.rulebased]
chunk_delay_ms = 100
"""


async def _until_closed(ws: ClientConnection) -> tuple[list[Message], int | None]:
    """Every message until the socket closes, and the close code the server sent."""
    messages: list[Message] = []
    try:
        while True:
            messages.append(await recv(ws, timeout=GRACE + 10))
    except ConnectionClosed as closed:
        return messages, None if closed.rcvd is None else closed.rcvd.code


def _serve(tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    """A gateway process with CONFIG, and its host:port."""
    config = tmp_path / "tokenwire.toml"
    config.write_text(CONFIG)
    port = free_port()
    return tokenwire("serve", "--port", str(port), "--config", str(config)), f"127.0.0.1:{port}"


async def test_sigterm_drains_streams_then_closes(tmp_path: Path) -> None:
    process, base = _serve(tmp_path)
    try:
        await wait_healthy(base)
        async with connect(f"ws://{base}/v1/ws") as ws, aiohttp.ClientSession() as http:
            await recv(ws)
            await start(ws, "short", prompt="hi", options={"max_tokens": 3})
            await start(ws, "long", prompt="tell me everything", options={"max_tokens": 2000})
            body = {"prompt": "long", "options": {"max_tokens": 2000}}
            sse = await http.post(f"http://{base}/v1/streams", json=body)
            assert sse.status == 200
            await asyncio.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            await start(ws, "late", prompt="hi")  # no new streams once draining
            with pytest.raises(aiohttp.ClientConnectionError):  # and no new connections
                async with http.get(f"http://{base}/healthz"):
                    pass
            messages, close_code = await _until_closed(ws)
            sse_events = (await read_events(sse)).events
        process.wait(GRACE + 10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    by_id: dict[str, list[Message]] = {}
    for message in messages:
        by_id.setdefault(message["id"], []).append(message)
    assert by_id["short"][-1]["type"] == "done"
    assert by_id["short"][-1]["finish_reason"] != "cancelled"
    long_end = by_id["long"][-1]
    assert long_end["type"] == "error"
    assert long_end["code"] == "shutting_down"
    assert long_end["retryable"] is True
    assert "seq" in long_end
    (late,) = by_id["late"]
    assert late["code"] == "shutting_down"
    assert "seq" not in late
    assert close_code == 1001
    assert sse_events[-1].event == "error"
    assert sse_events[-1].data["code"] == "shutting_down"
    assert process.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it is done


async def test_a_second_interrupt_cuts_the_drain_short(tmp_path: Path) -> None:
    config = tmp_path / "tokenwire.toml"
    config.write_text(CONFIG.replace(f"= {GRACE}", "= 30"))
    port = free_port()
    process = tokenwire("serve", "--port", str(port), "--config", str(config))
    base = f"127.0.0.1:{port}"
    try:
        await wait_healthy(base)
        async with connect(f"ws://{base}/v1/ws") as ws:
            await recv(ws)
            await start(ws, "long", prompt="tell me everything", options={"max_tokens": 2000})
            await asyncio.sleep(0.3)
            process.send_signal(signal.SIGINT)
            await asyncio.sleep(1.0)
            assert process.poll() is None, "the first interrupt drains: the stream may run on for 30 s"
            cut = time.monotonic()
            process.send_signal(signal.SIGINT)
            messages, close_code = await _until_closed(ws)
        process.wait(10)
        assert time.monotonic() - cut < 5
        assert process.stdout is not None
        output = process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    end = messages[-1]
    assert end["type"] == "error"
    assert end["code"] == "shutting_down"  # cut, yet still told, with its seq
    assert "seq" in end
    assert close_code == 1001
    assert "second interrupt: ending every stream now" in output
    assert "Application shutdown complete" in output  # the app still closes its clients
    assert "Traceback" not in output
    assert process.returncode == 130  # quietly, as a shell reports Ctrl-C


async def test_sigterm_ends_ai_sdk_websocket_chats_then_closes(tmp_path: Path) -> None:
    process, base = _serve(tmp_path)

    def send(rid: str, max_tokens: int) -> str:
        message = {"id": "u", "role": "user", "parts": [{"type": "text", "text": "tell me everything"}]}
        body = {"options": {"max_tokens": max_tokens}}
        frame = {
            "type": "send",
            "requestId": rid,
            "id": rid,
            "trigger": "submit-message",
            "messages": [message],
        }
        return json.dumps({**frame, "headers": {}, "body": body})

    try:
        await wait_healthy(base)
        async with connect(f"ws://{base}/v1/ui/ws") as ws:
            await ws.send(send("long", 2000))
            await asyncio.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            await ws.send(send("late", 3))
            frames, close_code = await _until_closed(ws)
        process.wait(GRACE + 10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    long = [f for f in frames if f["requestId"] == "long"]
    assert long[-1] == {"type": "end", "requestId": "long"}
    assert long[-2]["chunk"]["type"] == "error"
    assert long[-2]["chunk"]["errorText"].startswith("shutting_down: ")
    late = [f for f in frames if f["requestId"] == "late"]
    assert late == [{"type": "error", "requestId": "late", "errorText": late[0]["errorText"]}]
    assert late[0]["errorText"].startswith("shutting_down: ")
    assert close_code == 1001
