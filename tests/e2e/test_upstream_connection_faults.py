"""Upstream faults of the connection, end to end: no answer at all, a stream that breaks off,
and one that stalls into a timeout. Every fault must end the stream with the documented typed
error, leave no stream running in the hub and no upstream connection owed a response (the
gateway hangs up when it stops reading early), and leave the client's socket serving the next
stream (tests/support/fault_runs.py)."""

from __future__ import annotations

import asyncio
import time

import pytest
from websockets.asyncio.client import connect

from tests.conftest import StartGateway
from tests.support.fault_runs import (
    FINISH,
    KEEPALIVE,
    OPENAI_KEY,
    ROLE,
    USAGE,
    expected_error,
    gateway_config,
    good_stream,
    hung_up_by_gateway,
    run_fault,
    text_chunk,
    without_seq,
)
from tests.support.faulty_upstream import (
    LAST_CHUNK,
    SSE,
    Connection,
    FaultyUpstream,
    Script,
    chunked,
    head,
    sse_head,
)
from tests.support.process import free_port
from tests.support.wsclient import chunk_text, collect, recv, start

# ---- no answer at all ------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["ws", "sse"])
async def test_connection_refused_is_upstream_unavailable(
    start_gateway: StartGateway, transport: str
) -> None:
    gw = start_gateway(gateway_config(f"http://127.0.0.1:{free_port()}"))
    events, error = await run_fault(transport, gw, None)
    assert [e["type"] for e in events] == ["start", "error"]
    assert without_seq(error) == expected_error("upstream_unavailable", "could not connect to openai")


async def test_a_key_with_a_line_break_is_a_configuration_error_not_sent(
    start_gateway: StartGateway, fake: FaultyUpstream
) -> None:
    config = gateway_config(fake.url)
    config["providers"]["openai"]["api_key"] = OPENAI_KEY + "\n"  # read from a file, newline and all
    gw = start_gateway(config)
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "f", provider="openai", prompt="hi")
        per_id, _ = await collect(ws, {"f"})
    events = per_id["f"]
    error = events[-1]
    assert [e["type"] for e in events] == ["start", "error"]
    message = "provider `openai` is misconfigured: the request header 'authorization' contains a line break"
    assert without_seq(error) == {**expected_error("provider_not_configured", message), "retryable": False}
    assert fake.requests == []  # nothing reached the provider
    assert OPENAI_KEY not in str(events)


async def _close_at_once(conn: Connection) -> None:
    conn.close()


async def _reset_at_once(conn: Connection) -> None:
    conn.reset()


async def _not_http(conn: Connection) -> None:
    await conn.send(b"SSH-2.0-OpenSSH_9.6\r\n\x00\xff\xfe junk\r\n\r\n")
    conn.close()


@pytest.mark.parametrize(
    "script", [_close_at_once, _reset_at_once, _not_http], ids=["fin", "rst", "not-http"]
)
async def test_connection_lost_before_the_status_line_is_upstream_unavailable(
    start_gateway: StartGateway, fake: FaultyUpstream, script: Script
) -> None:
    gw = start_gateway(gateway_config(fake.url))
    fake.reply(script)
    events, error = await run_fault("ws", gw, fake)
    assert [e["type"] for e in events] == ["start", "error"]
    assert without_seq(error) == expected_error("upstream_unavailable", "openai failed before answering")
    assert fake.requests[0].path == "/v1/chat/completions"
    assert len(fake.requests) == 2  # the fault (no retry), then the next stream


async def test_a_kept_alive_connection_closed_as_the_request_arrives_costs_no_retry(
    start_gateway: StartGateway, fake: FaultyUpstream
) -> None:
    gw = start_gateway(gateway_config(fake.url))  # retry_attempts = 0: a retry would fail it
    fake.reply(good_stream, _close_at_once, good_stream)
    async with connect(gw.ws) as ws:
        await recv(ws)
        for sid in ("first", "second"):
            await start(ws, sid, provider="openai", prompt="hi")
            per_id, _ = await collect(ws, {sid})
            events = per_id[sid]
            assert "notice" not in [e["type"] for e in events]  # no retry, and no backoff
            assert events[-1]["type"] == "done"
            assert events[-1]["content"] == "Fine, thanks"
    assert [len(conn.requests) for conn in fake.connections] == [2, 1]  # the second sent again


# ---- the stream breaks off -------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["ws", "sse"])
async def test_reset_mid_stream_delivers_the_text_then_upstream_protocol(
    start_gateway: StartGateway, fake: FaultyUpstream, transport: str
) -> None:
    gw = start_gateway(gateway_config(fake.url))
    proceed = asyncio.Event()

    async def reset_after_hello(conn: Connection) -> None:
        await conn.send(sse_head() + chunked(ROLE, text_chunk("Hello")))
        await proceed.wait()  # the client has the text: now cut the connection with a RST
        conn.reset()

    fake.reply(reset_after_hello)
    events, error = await run_fault(transport, gw, fake, gate=("Hello", proceed))
    assert chunk_text(events) == "Hello"
    # Documented: a stream "cut off before its end signal" is upstream_protocol (retryable, no status).
    assert without_seq(error) == expected_error(
        "upstream_protocol", "openai closed the connection mid-stream"
    )
    assert fake.connections[0].closed_by == "upstream"


async def _close_delimited(conn: Connection) -> None:
    # No content-length, not chunked: the body ends at EOF, so EOF is a clean HTTP end.
    await conn.send(head(200, {**SSE, "connection": "close"}) + ROLE + text_chunk("Hel") + text_chunk("lo"))
    conn.close()


async def _chunked_end_without_done(conn: Connection) -> None:
    await conn.send(sse_head() + chunked(ROLE, text_chunk("Hel"), text_chunk("lo")) + LAST_CHUNK)


async def _finish_and_usage_without_done(conn: Connection) -> None:
    await conn.send(
        sse_head() + chunked(ROLE, text_chunk("Hel"), text_chunk("lo"), FINISH, USAGE) + LAST_CHUNK
    )


async def _short_content_length(conn: Connection) -> None:
    body = ROLE + text_chunk("Hel") + text_chunk("lo")
    await conn.send(head(200, {**SSE, "content-length": str(len(body) + 4096)}) + body)
    conn.close()


async def _fin_inside_a_chunk(conn: Connection) -> None:
    await conn.send(sse_head() + chunked(ROLE, text_chunk("Hel"), text_chunk("lo")) + b"400\r\ndata: {")
    conn.close()


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (_close_delimited, "openai stream ended before [DONE]"),
        (_chunked_end_without_done, "openai stream ended before [DONE]"),
        (_finish_and_usage_without_done, "openai stream ended before [DONE]"),
        (_short_content_length, "openai closed the connection mid-stream"),
        (_fin_inside_a_chunk, "openai closed the connection mid-stream"),
    ],
    ids=["close-delimited", "chunked", "finish-and-usage", "short-content-length", "fin-in-chunk"],
)
async def test_truncated_stream_is_upstream_protocol(
    start_gateway: StartGateway, fake: FaultyUpstream, script: Script, message: str
) -> None:
    gw = start_gateway(gateway_config(fake.url))
    fake.reply(script)
    events, error = await run_fault("ws", gw, fake)
    assert chunk_text(events) == "Hello"
    assert without_seq(error) == expected_error("upstream_protocol", message)


# ---- timeouts --------------------------------------------------------------------------------


async def _keepalives_until_gone(conn: Connection) -> None:
    while True:
        await asyncio.sleep(0.05)
        await conn.send(chunked(KEEPALIVE))


@pytest.mark.parametrize(
    ("transport", "comments"),
    [("ws", False), ("ws", True), ("sse", False)],
    ids=["ws", "ws-keepalives", "sse"],
)
async def test_stalled_stream_times_out_and_the_gateway_hangs_up(
    start_gateway: StartGateway, fake: FaultyUpstream, transport: str, comments: bool
) -> None:
    gw = start_gateway(gateway_config(fake.url, idle_timeout_seconds=0.2))

    async def stall(conn: Connection) -> None:
        await conn.send(sse_head() + chunked(ROLE, text_chunk("Hello")))
        # Comment lines are not data: they must not keep a stalled generation alive.
        await (_keepalives_until_gone(conn) if comments else conn.hold())

    fake.reply(stall)
    events, error = await run_fault(transport, gw, fake)
    assert chunk_text(events) == "Hello"
    assert without_seq(error) == expected_error("timeout", "no data from upstream for 0.2 s")
    hung_up_by_gateway(fake)


async def _silent(conn: Connection) -> None:
    await conn.hold()


async def _headers_only(conn: Connection) -> None:
    await conn.send(sse_head())
    await conn.hold()


async def _keepalives_only(conn: Connection) -> None:
    await conn.send(sse_head())
    await _keepalives_until_gone(conn)


async def _role_chunk_only(conn: Connection) -> None:
    await conn.send(sse_head() + chunked(ROLE))
    await conn.hold()


@pytest.mark.parametrize(
    "script",
    [_silent, _headers_only, _keepalives_only, _role_chunk_only],
    ids=["no-status-line", "headers-only", "keepalives-only", "role-chunk-only"],
)
async def test_slow_first_token_times_out_and_the_gateway_hangs_up(
    start_gateway: StartGateway, fake: FaultyUpstream, script: Script
) -> None:
    gw = start_gateway(gateway_config(fake.url, first_token_timeout_seconds=0.2))
    fake.reply(script)
    events, error = await run_fault("ws", gw, fake)
    assert [e["type"] for e in events] == ["start", "error"]
    assert without_seq(error) == expected_error("timeout", "no first token within 0.2 s")
    hung_up_by_gateway(fake)


async def test_total_timeout_cuts_a_slow_but_steady_stream(
    start_gateway: StartGateway, fake: FaultyUpstream
) -> None:
    gw = start_gateway(gateway_config(fake.url, stream_timeout_seconds=0.5, idle_timeout_seconds=0.3))

    async def trickle(conn: Connection) -> None:
        await conn.send(sse_head() + chunked(ROLE))
        while True:  # every gap is shorter than the idle timeout
            await conn.send(chunked(text_chunk("tick ")))
            await asyncio.sleep(0.1)

    fake.reply(trickle)
    began = time.monotonic()
    events, error = await run_fault("ws", gw, fake)
    assert time.monotonic() - began >= 0.5
    assert chunk_text(events).count("tick ") >= 3
    assert without_seq(error) == expected_error("timeout", "stream exceeded 0.5 s in total")
    hung_up_by_gateway(fake)
