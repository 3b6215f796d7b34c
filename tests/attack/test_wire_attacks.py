"""Hostile frames and bodies over the wire, against a real gateway.

A client message that is not valid must be refused with ``bad_message`` while the socket and its
other streams go on (protocol section 2.4), and an HTTP body that is not valid must be answered
400 ``bad_message`` (section 11.2). The inputs here are the ones the decoder property tests found
msgspec raising other errors for (deep nesting, invalid UTF-8 inside a string). The leak
check of tests/conftest.py runs after each of them: a connection that dies must not leave streams
or tasks behind.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect

from tests.conftest import Gateway
from tests.support.hostile import deep
from tests.support.wsclient import (
    Message,
    assert_gap_free,
    chunk_text,
    is_terminal,
    recv,
    send,
    start,
    stream_events,
)

DEPTH = 5_000  # 10 kB of brackets: far below max_message_bytes

WS_FRAMES: dict[str, str | bytes] = {
    "deep-nesting-in-an-unknown-field": ('{"type":"ping","ts":1,"x":' + deep(DEPTH) + "}"),
    "deep-nesting-as-the-id": ('{"type":"cancel","id":' + deep(DEPTH) + "}"),
    "invalid-utf8-in-a-binary-frame": (b'{"type":"start","id":"b","prompt":"\xff"}'),
}


@pytest.mark.parametrize(
    "name",
    sorted(WS_FRAMES),
)
async def test_hostile_frame_is_refused_and_the_socket_goes_on(gateway: Gateway, name: str) -> None:
    frame = WS_FRAMES[name]
    alone = await stream_events(gateway.ws, "a", prompt="Why is the sky blue?")
    async with connect(gateway.ws) as ws:
        await recv(ws)
        await start(ws, "a", prompt="Why is the sky blue?")
        assert (await recv(ws))["type"] == "start"
        await ws.send(frame)
        await send(ws, {"type": "ping", "ts": "after"})
        events: list[Message] = []
        replies: list[Message] = []
        while not (events and is_terminal(events[-1])) or not any(r["type"] == "pong" for r in replies):
            message = await recv(ws, timeout=5)
            (events if message.get("id") == "a" and "seq" in message else replies).append(message)
    refusals = [r for r in replies if r["type"] == "error"]
    assert [r["code"] for r in refusals] == ["bad_message"], replies
    assert replies[-1] == {"type": "pong", "ts": "after"}
    assert_gap_free([alone[0], *events])
    assert chunk_text(events) == chunk_text(alone)


HTTP_BODIES: dict[str, tuple[str, bytes]] = {
    "streams-deep-nesting": ("/v1/streams", b'{"prompt":"hi","x":' + deep(DEPTH).encode() + b"}"),
    "completions-deep-nesting": ("/v1/completions", b'{"prompt":' + deep(DEPTH).encode() + b"}"),
    "scripts-deep-nesting": (
        "/api/scripts/generate-stream",
        b'{"brief":{"topic":"t"},"x":' + deep(DEPTH).encode() + b"}",
    ),
    "agent-chat-deep-nesting": (
        "/api/agents/assistant/chat/stream",
        b'{"prompt":"hi","x":' + deep(DEPTH).encode() + b"}",
    ),
    "streams-invalid-utf8": ("/v1/streams", b'{"prompt":"\xff"}'),
    "completions-invalid-utf8": ("/v1/completions", b'{"id":"\xc3","prompt":"hi"}'),
    "scripts-invalid-utf8": ("/api/scripts/generate-stream", b'{"brief":{"topic":"\x80"}}'),
    "agent-chat-invalid-utf8": ("/api/agents/assistant/chat/stream", b'{"prompt":"\xed\xa0\x80"}'),
}


@pytest.mark.parametrize(
    "name",
    sorted(HTTP_BODIES),
)
async def test_hostile_body_is_a_400(gateway: Gateway, name: str) -> None:
    path, body = HTTP_BODIES[name]
    connector = aiohttp.TCPConnector(force_close=True)  # a 500 may leave the connection unusable
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.post(gateway.http + path, data=body, headers={"content-type": "application/json"}) as resp,
    ):
        status, text = resp.status, await resp.text()
    assert status == 400, (status, text)
    payload: Any = json.loads(text)
    assert payload["error"]["code"] == "bad_message"
    assert payload["error"]["retryable"] is False
