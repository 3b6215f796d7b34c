"""Upstream faults end to end: a real gateway, a raw-TCP fake upstream speaking OpenAI's (and,
for its own status, Anthropic's) exact bytes, and one fault per test. Every fault must end the
stream with the documented typed error, leave no stream running in the hub and no upstream
connection owed a response (the gateway hangs up when it stops reading early), and leave the
client's socket serving the next stream."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect

from providers.framing import MAX_LINE
from tests.conftest import Gateway, StartGateway
from tests.support.faulty_upstream import (
    LAST_CHUNK,
    SSE,
    Connection,
    FaultyUpstream,
    Script,
    chunked,
    head,
    response,
    sse_head,
)
from tests.support.sseclient import read_events
from tests.support.wsclient import Message, assert_gap_free, chunk_text, collect, recv, send, start

OPENAI_KEY = "sk-test-faults-0123456789"
ANTHROPIC_KEY = "sk-ant-api03-faults-0123456789"

# ---- OpenAI's bytes (provider-wire-formats.md §2.3) ------------------------------------------

_CHUNK_HEAD = (
    '{"id":"chatcmpl-7Qx","object":"chat.completion.chunk","created":1767225600,'
    '"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_9a8b7c","choices":'
)


def _data(choices: str, usage: str = "null") -> bytes:
    return f'data: {_CHUNK_HEAD}{choices},"usage":{usage},"obfuscation":"Kq"}}\n\n'.encode()


def _text(value: str) -> bytes:
    delta = json.dumps({"content": value}, ensure_ascii=False, separators=(",", ":"))
    return _data(f'[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":null}}]')


ROLE = _data(
    '[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]'
)
FINISH = _data('[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]')
USAGE = _data("[]", '{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}')
DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"


async def _good_stream(conn: Connection) -> None:
    await conn.send(
        sse_head() + chunked(ROLE, _text("Fine"), _text(", thanks"), FINISH, USAGE, DONE) + LAST_CHUNK
    )


# ---- gateway and upstream --------------------------------------------------------------------


def _config(openai_url: str, anthropic_url: str | None = None, **streaming: float) -> dict[str, Any]:
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


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---- running one stream into a fault ---------------------------------------------------------

Gate = tuple[str, asyncio.Event]  # (text the client must have seen, event that lets the fault go on)


async def _assert_released(gw: Gateway, fake: FaultyUpstream | None) -> None:
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
        await _assert_released(gw, fake)
        # The same socket serves on: a ping, then the next stream.
        await send(ws, {"type": "ping", "ts": "after-fault"})
        assert await recv(ws) == {"type": "pong", "ts": "after-fault"}
        if fake is not None:
            fake.reply(_good_stream)
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
        await _assert_released(gw, fake)
        # The gateway serves on (on this session's kept-alive connection when it is reused).
        if fake is not None:
            fake.reply(_good_stream)
        next_body = {"provider": "openai" if fake else "rulebased", "prompt": "again"}
        async with http.post(gw.http + "/v1/completions", json=next_body) as resp:
            assert resp.status == 200
            done = await resp.json()
    _check_next(done, fake)
    return [e.data for e in events]


async def _run(
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


def _expected(code: str, message: str, provider: str = "openai", **extra: Any) -> Message:
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


def _without_seq(error: Message) -> Message:
    return {k: v for k, v in error.items() if k != "seq"}


def _hung_up_by_gateway(fake: FaultyUpstream) -> None:
    """The connection that carried the faulty stream was closed by the gateway, not by us."""
    assert fake.connections[0].closed.is_set()
    assert fake.connections[0].closed_by == "gateway"


# ---- no answer at all ------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["ws", "sse"])
async def test_connection_refused_is_upstream_unavailable(
    start_gateway: StartGateway, transport: str
) -> None:
    gw = start_gateway(_config(f"http://127.0.0.1:{_closed_port()}"))
    events, error = await _run(transport, gw, None)
    assert [e["type"] for e in events] == ["start", "error"]
    assert _without_seq(error) == _expected("upstream_unavailable", "could not connect to openai")


async def test_a_key_with_a_line_break_is_a_configuration_error_not_sent(
    start_gateway: StartGateway, fake: FaultyUpstream
) -> None:
    config = _config(fake.url)
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
    assert _without_seq(error) == {**_expected("provider_not_configured", message), "retryable": False}
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
    gw = start_gateway(_config(fake.url))
    fake.reply(script)
    events, error = await _run("ws", gw, fake)
    assert [e["type"] for e in events] == ["start", "error"]
    assert _without_seq(error) == _expected("upstream_unavailable", "openai failed before answering")
    assert fake.requests[0].path == "/v1/chat/completions"
    assert len(fake.requests) == 2  # the fault (no retry), then the next stream


# ---- the stream breaks off -------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["ws", "sse"])
async def test_reset_mid_stream_delivers_the_text_then_upstream_protocol(
    start_gateway: StartGateway, fake: FaultyUpstream, transport: str
) -> None:
    gw = start_gateway(_config(fake.url))
    proceed = asyncio.Event()

    async def reset_after_hello(conn: Connection) -> None:
        await conn.send(sse_head() + chunked(ROLE, _text("Hello")))
        await proceed.wait()  # the client has the text: now cut the connection with a RST
        conn.reset()

    fake.reply(reset_after_hello)
    events, error = await _run(transport, gw, fake, gate=("Hello", proceed))
    assert chunk_text(events) == "Hello"
    # Documented: a stream "cut off before its end signal" is upstream_protocol (retryable, no status).
    assert _without_seq(error) == _expected("upstream_protocol", "openai closed the connection mid-stream")
    assert fake.connections[0].closed_by == "upstream"


async def _close_delimited(conn: Connection) -> None:
    # No content-length, not chunked: the body ends at EOF, so EOF is a clean HTTP end.
    await conn.send(head(200, {**SSE, "connection": "close"}) + ROLE + _text("Hel") + _text("lo"))
    conn.close()


async def _chunked_end_without_done(conn: Connection) -> None:
    await conn.send(sse_head() + chunked(ROLE, _text("Hel"), _text("lo")) + LAST_CHUNK)


async def _finish_and_usage_without_done(conn: Connection) -> None:
    await conn.send(sse_head() + chunked(ROLE, _text("Hel"), _text("lo"), FINISH, USAGE) + LAST_CHUNK)


async def _short_content_length(conn: Connection) -> None:
    body = ROLE + _text("Hel") + _text("lo")
    await conn.send(head(200, {**SSE, "content-length": str(len(body) + 4096)}) + body)
    conn.close()


async def _fin_inside_a_chunk(conn: Connection) -> None:
    await conn.send(sse_head() + chunked(ROLE, _text("Hel"), _text("lo")) + b"400\r\ndata: {")
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
    gw = start_gateway(_config(fake.url))
    fake.reply(script)
    events, error = await _run("ws", gw, fake)
    assert chunk_text(events) == "Hello"
    assert _without_seq(error) == _expected("upstream_protocol", message)


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
    gw = start_gateway(_config(fake.url, idle_timeout_seconds=0.2))

    async def stall(conn: Connection) -> None:
        await conn.send(sse_head() + chunked(ROLE, _text("Hello")))
        # Comment lines are not data: they must not keep a stalled generation alive.
        await (_keepalives_until_gone(conn) if comments else conn.hold())

    fake.reply(stall)
    events, error = await _run(transport, gw, fake)
    assert chunk_text(events) == "Hello"
    assert _without_seq(error) == _expected("timeout", "no data from upstream for 0.2 s")
    _hung_up_by_gateway(fake)


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
    gw = start_gateway(_config(fake.url, first_token_timeout_seconds=0.2))
    fake.reply(script)
    events, error = await _run("ws", gw, fake)
    assert [e["type"] for e in events] == ["start", "error"]
    assert _without_seq(error) == _expected("timeout", "no first token within 0.2 s")
    _hung_up_by_gateway(fake)


async def test_total_timeout_cuts_a_slow_but_steady_stream(
    start_gateway: StartGateway, fake: FaultyUpstream
) -> None:
    gw = start_gateway(_config(fake.url, stream_timeout_seconds=0.5, idle_timeout_seconds=0.3))

    async def trickle(conn: Connection) -> None:
        await conn.send(sse_head() + chunked(ROLE))
        while True:  # every gap is shorter than the idle timeout
            await conn.send(chunked(_text("tick ")))
            await asyncio.sleep(0.1)

    fake.reply(trickle)
    began = time.monotonic()
    events, error = await _run("ws", gw, fake)
    assert time.monotonic() - began >= 0.5
    assert chunk_text(events).count("tick ") >= 3
    assert _without_seq(error) == _expected("timeout", "stream exceeded 0.5 s in total")
    _hung_up_by_gateway(fake)


# ---- error statuses --------------------------------------------------------------------------

RATE_LIMIT_BODY = (
    b'{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-abc on requests per min (RPM): '
    b'Limit 3, Used 3, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}'
)
RATE_LIMIT_HEADERS = {
    "retry-after": "7",
    "x-ratelimit-limit-requests": "3",
    "x-ratelimit-remaining-requests": "0",
    "x-ratelimit-reset-requests": "20s",
}


async def _rate_limited(conn: Connection) -> None:
    await conn.send(response(429, RATE_LIMIT_BODY, RATE_LIMIT_HEADERS))


@pytest.mark.parametrize("transport", ["ws", "sse"])
async def test_429_is_upstream_rate_limited_with_retry_after(
    start_gateway: StartGateway, fake: FaultyUpstream, transport: str
) -> None:
    gw = start_gateway(_config(fake.url))
    fake.reply(_rate_limited)
    events, error = await _run(transport, gw, fake)
    assert [e["type"] for e in events] == ["start", "error"]
    message = (
        "openai answered HTTP 429: Rate limit reached for gpt-4o-mini in organization org-abc on "
        "requests per min (RPM): Limit 3, Used 3, Requested 1."
    )
    assert _without_seq(error) == _expected("upstream_rate_limited", message, retry_after_s=7, status=429)
    assert len(fake.requests) == 2  # no retry by the gateway


async def test_429_answers_a_completion_with_429_and_retry_after(
    start_gateway: StartGateway, fake: FaultyUpstream
) -> None:
    gw = start_gateway(_config(fake.url))
    fake.reply(_rate_limited)
    async with (
        aiohttp.ClientSession() as http,
        http.post(gw.http + "/v1/completions", json={"provider": "openai", "prompt": "hi"}) as resp,
    ):
        assert resp.status == 429
        assert resp.headers["retry-after"] == "7"
        error = (await resp.json())["error"]
    assert error["code"] == "upstream_rate_limited"
    assert error["retry_after_s"] == 7
    assert error["retryable"] is True
    await _assert_released(gw, fake)


NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize(
    ("provider", "status", "body", "headers", "message", "extra"),
    [
        (
            "openai",
            500,
            b'{"error":{"message":"The server had an error while processing your request. Sorry about that!",'
            b'"type":"server_error","param":null,"code":null}}',
            {},
            "openai answered HTTP 500: The server had an error while processing your request. Sorry about that!",
            {},
        ),
        ("openai", 502, NGINX_502, {"content-type": "text/html"}, "openai answered HTTP 502: no details", {}),
        (
            "openai",
            503,
            b'{"error":{"message":"The engine is currently overloaded, please try again later.",'
            b'"type":"server_error","param":null,"code":null}}',
            {"retry-after": "2"},
            "openai answered HTTP 503: The engine is currently overloaded, please try again later.",
            {"retry_after_s": 2},
        ),
        (
            "anthropic",
            529,
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011Abc"}',
            {"request-id": "req_011Abc"},
            "anthropic answered HTTP 529: Overloaded",
            {},
        ),
    ],
    ids=["openai-500", "openai-502-html", "openai-503", "anthropic-529"],
)
async def test_server_errors_are_upstream_unavailable_with_status(
    start_gateway: StartGateway,
    fake: FaultyUpstream,
    provider: str,
    status: int,
    body: bytes,
    headers: dict[str, str],
    message: str,
    extra: dict[str, Any],
) -> None:
    gw = start_gateway(_config(fake.url, fake.url))

    async def server_error(conn: Connection) -> None:
        await conn.send(response(status, body, headers))

    fake.reply(server_error)
    events, error = await _run("ws", gw, fake, provider=provider)
    assert [e["type"] for e in events] == ["start", "error"]
    assert _without_seq(error) == _expected("upstream_unavailable", message, provider, status=status, **extra)
    expected_path = "/v1/messages" if provider == "anthropic" else "/v1/chat/completions"
    assert fake.requests[0].path == expected_path
    assert len(fake.requests) == 2  # no retry by the gateway


# ---- garbage ---------------------------------------------------------------------------------


def _garbage_then_hold(garbage: bytes) -> Script:
    async def script(conn: Connection) -> None:
        await conn.send(sse_head() + chunked(ROLE, _text("Hel"), garbage))
        await conn.hold()  # the connection stays open: the gateway must hang up

    return script


async def _html_page(conn: Connection) -> None:
    page = b"<html><body>\x89PNG\r\n\x1a\n\xff\xfe captive portal: sign in</body></html>\r\n"
    await conn.send(head(200, {"content-type": "text/html", "connection": "close"}) + page)
    conn.close()


INVALID_JSON = _CHUNK_HEAD.encode() + b'[{"index":0,"delta":{"content":"lo'
UTF8_IN_STRING = _text("lo").replace(b'"lo"', b'"lo \xc3\x28 \xff"')
GARBAGE = [
    pytest.param(
        _garbage_then_hold(b"data: " + INVALID_JSON + b"\n\n"),
        "openai sent malformed JSON",
        id="invalid-json",
    ),
    pytest.param(
        _garbage_then_hold(b'data: ["lo"]\n\n'), "openai sent malformed JSON", id="json-not-a-chunk"
    ),
    pytest.param(
        _garbage_then_hold(b"data: \x00\xff\xfe\x89 binary \xc3\x28\n\n"),
        "openai sent malformed JSON",
        id="non-utf8-data",
    ),
    pytest.param(
        _garbage_then_hold(UTF8_IN_STRING),
        "openai sent malformed JSON",
        id="non-utf8-in-json-string",
    ),
]


@pytest.mark.parametrize(("script", "message"), GARBAGE)
async def test_garbage_mid_stream_is_upstream_protocol(
    start_gateway: StartGateway, fake: FaultyUpstream, script: Script, message: str
) -> None:
    gw = start_gateway(_config(fake.url))
    fake.reply(script)
    events, error = await _run("ws", gw, fake)
    assert chunk_text(events) == "Hel"
    assert _without_seq(error) == _expected("upstream_protocol", message)
    _hung_up_by_gateway(fake)


async def test_broken_chunked_framing_is_upstream_protocol(
    start_gateway: StartGateway, fake: FaultyUpstream
) -> None:
    gw = start_gateway(_config(fake.url, idle_timeout_seconds=0.2))
    proceed = asyncio.Event()

    async def bad_chunk_size(conn: Connection) -> None:
        await conn.send(sse_head() + chunked(ROLE, _text("Hel")))
        # Separately, so the text is delivered before the framing error is read.
        await proceed.wait()
        await conn.send(b"zz\r\nnot a chunk size\r\n")
        await conn.hold()

    fake.reply(bad_chunk_size)
    events, error = await _run("ws", gw, fake, gate=("Hel", proceed))
    assert chunk_text(events) == "Hel"
    assert _without_seq(error) == _expected("upstream_protocol", "openai closed the connection mid-stream")
    _hung_up_by_gateway(fake)


async def test_a_page_of_junk_instead_of_events_is_upstream_protocol(
    start_gateway: StartGateway, fake: FaultyUpstream
) -> None:
    gw = start_gateway(_config(fake.url))
    fake.reply(_html_page)
    events, error = await _run("ws", gw, fake)
    assert [e["type"] for e in events] == ["start", "error"]
    assert _without_seq(error) == _expected("upstream_protocol", "openai stream ended before [DONE]")


async def test_an_endless_line_is_cut_at_the_decoder_bound(
    start_gateway: StartGateway, fake: FaultyUpstream
) -> None:
    gw = start_gateway(_config(fake.url))
    block = chunked(b"a" * 65536)

    async def endless_line(conn: Connection) -> None:
        await conn.send(sse_head() + chunked(ROLE, _text("Hel"), b"data: " + _CHUNK_HEAD.encode()))
        while True:  # no line end, ever: only the gateway's bound can end this
            await conn.send(block)

    fake.reply(endless_line)
    events, error = await _run("ws", gw, fake)
    assert chunk_text(events) == "Hel"
    assert _without_seq(error) == _expected("upstream_protocol", "openai sent an over-long line")
    _hung_up_by_gateway(fake)
    # The error arriving at all shows the gateway did not wait for the line to end. It stopped
    # reading soon after the bound: the rest is socket buffers (seen up to ~7 MiB on loopback).
    sent = fake.connections[0].sent
    assert MAX_LINE < sent < 3 * MAX_LINE, sent
