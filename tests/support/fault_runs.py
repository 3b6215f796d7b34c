"""Running one stream into an upstream fault, for the upstream-fault suites (tests/e2e).

A real gateway, a raw-TCP fake upstream (tests/support/faulty_upstream.py) speaking OpenAI's exact
bytes, one stream over WebSocket or SSE into the fault: its events, checked gap-free, and its
terminal error. Each run also checks that the fault left no stream in the hub and no upstream
connection owed a response, and that the client's socket (or session) serves the next stream.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from websockets.asyncio.client import connect

from tests.conftest import Gateway
from tests.support.faulty_upstream import (
    LAST_CHUNK,
    Connection,
    FaultyUpstream,
    chunked,
    sse_head,
)
from tests.support.sseclient import read_events
from tests.support.wsclient import Message, assert_gap_free, chunk_text, collect, recv, send, start

OPENAI_KEY = "sk-test-faults-0123456789"
ANTHROPIC_KEY = "sk-ant-api03-faults-0123456789"

# ---- OpenAI's bytes (provider-wire-formats.md §2.3) ------------------------------------------

CHUNK_HEAD = (
    '{"id":"chatcmpl-7Qx","object":"chat.completion.chunk","created":1767225600,'
    '"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_9a8b7c","choices":'
)


def sse_data(choices: str, usage: str = "null") -> bytes:
    return f'data: {CHUNK_HEAD}{choices},"usage":{usage},"obfuscation":"Kq"}}\n\n'.encode()


def text_chunk(value: str) -> bytes:
    delta = json.dumps({"content": value}, ensure_ascii=False, separators=(",", ":"))
    return sse_data(f'[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":null}}]')


ROLE = sse_data(
    '[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]'
)
FINISH = sse_data('[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]')
USAGE = sse_data("[]", '{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}')
DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"


async def good_stream(conn: Connection) -> None:
    await conn.send(
        sse_head()
        + chunked(ROLE, text_chunk("Fine"), text_chunk(", thanks"), FINISH, USAGE, DONE)
        + LAST_CHUNK
    )


# ---- gateway and upstream --------------------------------------------------------------------


def gateway_config(openai_url: str, anthropic_url: str | None = None, **streaming: float) -> dict[str, Any]:
    # One attempt per stream: these tests count upstream requests, and a retry before the first
    # token would turn each fault into a different one (the retries have tests of their own).
    settings: dict[str, Any] = {"retry_attempts": 0, **streaming}
    providers: dict[str, Any] = {
        "rulebased": {"chunk_delay_ms": 0},
        "openai": {"base_url": openai_url + "/v1", "api_key": OPENAI_KEY},
    }
    if anthropic_url is not None:
        providers["anthropic"] = {"base_url": anthropic_url, "api_key": ANTHROPIC_KEY}
    return {"streaming": settings, "providers": providers}


# ---- running one stream into a fault ---------------------------------------------------------

Gate = tuple[str, asyncio.Event]  # (text the client must have seen, event that lets the fault go on)


async def assert_released(gw: Gateway, fake: FaultyUpstream | None) -> None:
    """No stream left in the hub; every upstream connection closed or idle with nothing owed."""
    async with asyncio.timeout(2):
        while gw.hub.running or gw.hub.http_streams:
            await asyncio.sleep(0.01)
    if fake is not None:
        await fake.wait_released()


def _check_next(done: Message, fake: FaultyUpstream | None) -> None:
    if fake is None:
        assert done["content"].startswith('You asked: "again"'), done
    else:
        assert done["content"] == "Fine, thanks", done


async def _ws_fault(
    gw: Gateway, fake: FaultyUpstream | None, provider: str, gate: Gate | None
) -> list[Message]:
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "f", provider=provider, prompt="hi")
        events: list[Message] = []
        if gate is not None:
            text, proceed = gate
            while chunk_text(events) != text:
                events.append(await recv(ws))
            proceed.set()
        per_id, _ = await collect(ws, {"f"})
        events += per_id["f"]
        await assert_released(gw, fake)
        # The same socket serves on: a ping, then the next stream.
        await send(ws, {"type": "ping", "ts": "after-fault"})
        assert await recv(ws) == {"type": "pong", "ts": "after-fault"}
        if fake is not None:
            fake.reply(good_stream)
        await start(ws, "next", provider="openai" if fake else "rulebased", prompt="again")
        per_id, _ = await collect(ws, {"next"})
    done = per_id["next"][-1]
    assert done["type"] == "done", done
    _check_next(done, fake)
    return events


async def _sse_fault(
    gw: Gateway, fake: FaultyUpstream | None, provider: str, gate: Gate | None
) -> list[Message]:
    async with aiohttp.ClientSession() as http:
        body = {"id": "f", "provider": provider, "prompt": "hi"}
        async with http.post(gw.http + "/v1/streams", json=body) as resp:
            assert resp.status == 200
            events = []
            if gate is not None:
                text, proceed = gate
                events = (await read_events(resp, until={"chunk"})).events
                assert events[-1].data["content"] == text
                proceed.set()
            events += (await read_events(resp)).events
        assert all(e.event == e.data["type"] for e in events)
        await assert_released(gw, fake)
        # The gateway serves on (on this session's kept-alive connection when it is reused).
        if fake is not None:
            fake.reply(good_stream)
        next_body = {"provider": "openai" if fake else "rulebased", "prompt": "again"}
        async with http.post(gw.http + "/v1/completions", json=next_body) as resp:
            assert resp.status == 200
            done = await resp.json()
    _check_next(done, fake)
    return [e.data for e in events]


async def run_fault(
    transport: str,
    gw: Gateway,
    fake: FaultyUpstream | None,
    *,
    provider: str = "openai",
    gate: Gate | None = None,
) -> tuple[list[Message], Message]:
    """One stream into the fault: its events (checked gap-free) and its terminal error."""
    run = _ws_fault if transport == "ws" else _sse_fault
    events = await run(gw, fake, provider, gate)
    assert_gap_free(events)
    error = events[-1]
    assert error["type"] == "error", error
    return events, error


def expected_error(code: str, message: str, provider: str = "openai", **extra: Any) -> Message:
    """The terminal error without its seq (checked by assert_gap_free); absent fields must be absent."""
    return {
        "type": "error",
        "id": "f",
        "code": code,
        "message": message,
        "retryable": True,
        "provider": provider,
        **extra,
    }


def without_seq(error: Message) -> Message:
    return {k: v for k, v in error.items() if k != "seq"}


def hung_up_by_gateway(fake: FaultyUpstream) -> None:
    """The connection that carried the faulty stream was closed by the gateway, not by us."""
    assert fake.connections[0].closed.is_set()
    assert fake.connections[0].closed_by == "gateway"
