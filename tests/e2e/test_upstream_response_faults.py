"""Upstream faults in what the upstream answers, end to end: error statuses (OpenAI's and
Anthropic's exact bodies) and garbage instead of events. Every fault must end the stream with the
documented typed error, leave nothing running and no upstream connection owed a response, and
leave the client's socket serving the next stream (tests/support/fault_runs.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from providers.framing import MAX_LINE
from tests.conftest import StartGateway
from tests.support.fault_runs import (
    CHUNK_HEAD,
    ROLE,
    assert_released,
    expected_error,
    gateway_config,
    hung_up_by_gateway,
    run_fault,
    text_chunk,
    without_seq,
)
from tests.support.faulty_upstream import (
    LAST_CHUNK,
    Connection,
    FaultyUpstream,
    Script,
    chunked,
    head,
    response,
    sse_head,
)
from tests.support.process import ROOT
from tests.support.wsclient import chunk_text

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
    gw = start_gateway(gateway_config(fake.url))
    fake.reply(_rate_limited)
    events, error = await run_fault(transport, gw, fake)
    assert [e["type"] for e in events] == ["start", "error"]
    message = (
        "openai answered HTTP 429: Rate limit reached for gpt-4o-mini in organization org-abc on "
        "requests per min (RPM): Limit 3, Used 3, Requested 1."
    )
    assert without_seq(error) == expected_error("upstream_rate_limited", message, retry_after_s=7, status=429)
    assert len(fake.requests) == 2  # no retry by the gateway


async def test_429_answers_a_completion_with_429_and_retry_after(
    start_gateway: StartGateway, fake: FaultyUpstream
) -> None:
    gw = start_gateway(gateway_config(fake.url))
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
    await assert_released(gw, fake)


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
    gw = start_gateway(gateway_config(fake.url, fake.url))

    async def server_error(conn: Connection) -> None:
        await conn.send(response(status, body, headers))

    fake.reply(server_error)
    events, error = await run_fault("ws", gw, fake, provider=provider)
    assert [e["type"] for e in events] == ["start", "error"]
    assert without_seq(error) == expected_error(
        "upstream_unavailable", message, provider, status=status, **extra
    )
    expected_path = "/v1/messages" if provider == "anthropic" else "/v1/chat/completions"
    assert fake.requests[0].path == expected_path
    assert len(fake.requests) == 2  # no retry by the gateway


OPENROUTER_ERROR = (ROOT / "tests/providers/recorded/openrouter-minimax-midstream-error.sse").read_bytes()


async def test_a_mid_stream_error_with_a_numeric_code_is_not_retried(
    start_gateway: StartGateway, fake: FaultyUpstream
) -> None:
    gw = start_gateway(gateway_config(fake.url, retry_attempts=2, retry_backoff_seconds=0))

    async def token_limit(conn: Connection) -> None:  # OpenRouter's recorded bytes: code 400
        await conn.send(sse_head() + chunked(OPENROUTER_ERROR) + LAST_CHUNK)

    fake.reply(token_limit)
    events, error = await run_fault("ws", gw, fake)
    assert [e["type"] for e in events] == ["start", "error"]
    message = "openai reported an error mid-stream: Token limit reached"
    assert without_seq(error) == expected_error("upstream_bad_request", message, retryable=False, status=400)
    assert len(fake.requests) == 2  # the stream's one try, and the next stream


# ---- garbage ---------------------------------------------------------------------------------


def _garbage_then_hold(garbage: bytes) -> Script:
    async def script(conn: Connection) -> None:
        await conn.send(sse_head() + chunked(ROLE, text_chunk("Hel"), garbage))
        await conn.hold()  # the connection stays open: the gateway must hang up

    return script


async def _html_page(conn: Connection) -> None:
    page = b"<html><body>\x89PNG\r\n\x1a\n\xff\xfe captive portal: sign in</body></html>\r\n"
    await conn.send(head(200, {"content-type": "text/html", "connection": "close"}) + page)
    conn.close()


INVALID_JSON = CHUNK_HEAD.encode() + b'[{"index":0,"delta":{"content":"lo'
UTF8_IN_STRING = text_chunk("lo").replace(b'"lo"', b'"lo \xc3\x28 \xff"')
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
    gw = start_gateway(gateway_config(fake.url))
    fake.reply(script)
    events, error = await run_fault("ws", gw, fake)
    assert chunk_text(events) == "Hel"
    assert without_seq(error) == expected_error("upstream_protocol", message)
    hung_up_by_gateway(fake)


async def test_broken_chunked_framing_is_upstream_protocol(
    start_gateway: StartGateway, fake: FaultyUpstream
) -> None:
    gw = start_gateway(gateway_config(fake.url, idle_timeout_seconds=0.2))
    proceed = asyncio.Event()

    async def bad_chunk_size(conn: Connection) -> None:
        await conn.send(sse_head() + chunked(ROLE, text_chunk("Hel")))
        # Separately, so the text is delivered before the framing error is read.
        await proceed.wait()
        await conn.send(b"zz\r\nnot a chunk size\r\n")
        await conn.hold()

    fake.reply(bad_chunk_size)
    events, error = await run_fault("ws", gw, fake, gate=("Hel", proceed))
    assert chunk_text(events) == "Hel"
    assert without_seq(error) == expected_error(
        "upstream_protocol", "openai closed the connection mid-stream"
    )
    hung_up_by_gateway(fake)


async def _redirect(conn: Connection) -> None:
    location = {"location": "https://api.example.com/v1/chat/completions", "content-length": "0"}
    await conn.send(head(307, location))


PERMANENT = [
    pytest.param(
        _html_page,
        "openai answered with a web page, not its API (check its base URL)",
        {},
        id="200-text-html",
    ),
    pytest.param(_redirect, "openai answered HTTP 307: no details", {"status": 307}, id="307-redirect"),
]


@pytest.mark.parametrize(("script", "message", "extra"), PERMANENT)
async def test_a_permanent_answer_is_upstream_protocol_and_not_retried(
    start_gateway: StartGateway, fake: FaultyUpstream, script: Script, message: str, extra: dict[str, Any]
) -> None:
    gw = start_gateway(gateway_config(fake.url, retry_attempts=2, retry_backoff_seconds=0))
    fake.reply(script)
    events, error = await run_fault("ws", gw, fake)
    assert [e["type"] for e in events] == ["start", "error"]
    assert without_seq(error) == expected_error("upstream_protocol", message, retryable=False, **extra)
    assert len(fake.requests) == 2  # the stream's one try, and the next stream


async def test_an_endless_line_is_cut_at_the_decoder_bound(
    start_gateway: StartGateway, fake: FaultyUpstream
) -> None:
    gw = start_gateway(gateway_config(fake.url))
    block = chunked(b"a" * 65536)

    async def endless_line(conn: Connection) -> None:
        await conn.send(sse_head() + chunked(ROLE, text_chunk("Hel"), b"data: " + CHUNK_HEAD.encode()))
        while True:  # no line end, ever: only the gateway's bound can end this
            await conn.send(block)

    fake.reply(endless_line)
    events, error = await run_fault("ws", gw, fake)
    assert chunk_text(events) == "Hel"
    assert without_seq(error) == expected_error(
        "upstream_protocol", "openai sent an over-long line", retryable=False
    )
    hung_up_by_gateway(fake)
    # The error arriving at all shows the gateway did not wait for the line to end. It stopped
    # reading soon after the bound: the rest is socket buffers (seen up to ~7 MiB on loopback).
    sent = fake.connections[0].sent
    assert MAX_LINE < sent < 3 * MAX_LINE, sent
