"""Structured logs: one ``tokenwire.stream`` JSON line per ended stream, one ``tokenwire.access``
line per HTTP request, never message content, tokens or keys."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode

from server.edge.log_filter import ACCEPTED, RedactingFilter, redact, refusing_handshake
from tests.conftest import Gateway, StartGateway
from tests.support.providers import ScriptedProvider
from tests.support.sseclient import read_events
from tests.support.wsclient import collect, recv, send, start, stream_events

PROMPT = "PROMPT-SENTINEL-2718"
OUTPUT = "OUT-SENTINEL"
STREAM_FIELDS = {
    "event",
    "stream_id",
    "transport",
    "provider",
    "model",
    "outcome",
    "code",
    "finish_reason",
    "ttft_ms",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
}


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="tokenwire")
    return caplog


def lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[dict[str, Any]]:
    parsed = []
    for record in caplog.records:
        # tokenwire.stream also has plain-text lines (retry notices): ours are JSON objects.
        if record.name == logger and record.levelno == logging.INFO and record.getMessage()[:1] == "{":
            line = json.loads(record.getMessage())
            assert isinstance(line, dict)
            parsed.append(line)
    return parsed


async def until_logged(caplog: pytest.LogCaptureFixture, logger: str, count: int) -> list[dict[str, Any]]:
    async with asyncio.timeout(5):
        while len(found := lines(caplog, logger)) < count:
            await asyncio.sleep(0.01)
    return found


def assert_no_content(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    for record in caplog.records:
        for text in texts:
            assert text not in record.getMessage(), record.getMessage()


async def test_one_stream_line_per_ended_stream(
    start_gateway: StartGateway, logs: pytest.LogCaptureFixture
) -> None:
    gw = start_gateway(
        providers=[
            ScriptedProvider("ok", text=OUTPUT, count=3),
            ScriptedProvider("slow", text=OUTPUT, count=1000, delay=0.01),
            ScriptedProvider("failing", text=OUTPUT, count=5, fail_after=2),
        ]
    )
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "s-ok", provider="ok", model="m-1", prompt=PROMPT)
        await start(ws, "s-fail", provider="failing", prompt=PROMPT)
        await start(ws, "s-slow", provider="slow", messages=[{"role": "user", "content": PROMPT}])
        await collect(ws, {"s-ok", "s-fail"})
        await send(ws, {"type": "cancel", "id": "s-slow"})
        await collect(ws, {"s-slow"})
    found = {line["stream_id"]: line for line in await until_logged(logs, "tokenwire.stream", 3)}
    await asyncio.sleep(0.05)
    assert len(lines(logs, "tokenwire.stream")) == 3  # exactly one each

    ok = found["s-ok"]
    assert set(ok) >= STREAM_FIELDS
    assert ok["event"] == "stream_end"
    assert (ok["transport"], ok["provider"], ok["model"]) == ("ws", "ok", "m-1")
    assert (ok["outcome"], ok["code"], ok["finish_reason"]) == ("done", None, "stop")
    assert (ok["prompt_tokens"], ok["completion_tokens"]) == (3, 3)
    assert ok["ttft_ms"] > 0
    assert ok["duration_ms"] >= ok["ttft_ms"]

    failed = found["s-fail"]
    assert (failed["outcome"], failed["code"], failed["finish_reason"]) == (
        "error",
        "upstream_rate_limited",
        None,
    )
    assert failed["upstream_status"] == 429
    assert failed["retryable"] is True
    assert failed["duration_ms"] > 0

    cancelled = found["s-slow"]
    assert (cancelled["outcome"], cancelled["code"], cancelled["finish_reason"]) == (
        "cancelled",
        None,
        "cancelled",
    )
    assert cancelled["model"] == "scripted-1"

    assert_no_content(logs, PROMPT, OUTPUT)


async def test_http_streams_are_logged_with_their_transport(
    gateway: Gateway, logs: pytest.LogCaptureFixture
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(gateway.http + "/v1/streams", json={"id": "h1", "prompt": PROMPT}) as resp:
            await read_events(resp)
        async with http.post(gateway.http + "/v1/completions", json={"id": "h2", "prompt": PROMPT}) as resp:
            assert resp.status == 200
    found = {line["stream_id"]: line for line in await until_logged(logs, "tokenwire.stream", 2)}
    assert found["h1"]["transport"] == found["h2"]["transport"] == "http"
    assert found["h1"]["provider"] == "rulebased"
    assert found["h1"]["outcome"] == "done"
    assert_no_content(logs, PROMPT)


async def test_access_log_has_method_path_status_duration(
    start_gateway: StartGateway, logs: pytest.LogCaptureFixture
) -> None:
    gw = start_gateway({"server": {"auth_tokens": ["secret-token-1"]}})
    async with aiohttp.ClientSession() as http:
        async with http.get(gw.http + "/healthz", params={"q": "x"}) as resp:
            assert resp.status == 200
        async with http.post(gw.http + "/v1/streams", json={"prompt": PROMPT}) as resp:
            assert resp.status == 401
        async with http.post(
            gw.http + "/v1/streams", params={"token": "secret-token-1"}, json={"prompt": PROMPT}
        ) as resp:
            assert resp.status == 200
            await read_events(resp)
        async with http.get(gw.http + "/nowhere") as resp:
            assert resp.status == 404
    found = await until_logged(logs, "tokenwire.access", 4)
    assert [(a["method"], a["path"], a["status"]) for a in found] == [
        ("GET", "/healthz", 200),
        ("POST", "/v1/streams", 401),
        ("POST", "/v1/streams", 200),
        ("GET", "/nowhere", 404),
    ]
    assert all(set(a) == {"method", "path", "status", "duration_ms"} for a in found)
    assert all(a["duration_ms"] >= 0 for a in found)
    assert_no_content(logs, "secret-token-1", PROMPT, "q=x")


async def test_websockets_are_not_access_logged(gateway: Gateway, logs: pytest.LogCaptureFixture) -> None:
    await stream_events(gateway.ws, prompt="hi")
    await until_logged(logs, "tokenwire.stream", 1)
    assert lines(logs, "tokenwire.access") == []


async def test_nothing_is_logged_when_info_is_off(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tokenwire")
    await stream_events(gateway.ws, prompt="hi")
    async with aiohttp.ClientSession() as http, http.get(gateway.http + "/healthz") as resp:
        assert resp.status == 200
    assert [r for r in caplog.records if r.name.startswith("tokenwire")] == []


@pytest.mark.parametrize(
    ("line", "logged"),
    [
        (
            '1.2.3.4:5 - "WebSocket /v1/ws?token=t0k" [accepted]',
            '1.2.3.4:5 - "WebSocket /v1/ws?[redacted]" [accepted]',
        ),
        ("< GET /v1/ws?a=1&token=t0k HTTP/1.1", "< GET /v1/ws?[redacted] HTTP/1.1"),
        ("< Authorization: Bearer t0k", "< Authorization: [redacted]"),
        ("< x-api-key: t0k", "< x-api-key: [redacted]"),
        ("< host: gw:8000", "< host: gw:8000"),
        ("what? nothing to hide", "what? nothing to hide"),
    ],
)
def test_query_strings_and_credentials_are_redacted(line: str, logged: str) -> None:
    assert redact(line) == logged


def filtered(msg: str, *args: object) -> str:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, msg, args, None)
    assert RedactingFilter().filter(record)
    return record.getMessage()


def test_a_frame_is_logged_by_kind_and_size_and_a_refused_handshake_as_refused() -> None:
    assert filtered("< %s", Frame(Opcode.TEXT, PROMPT.encode())) == f"< TEXT [{len(PROMPT)} bytes]"
    assert filtered(ACCEPTED, "1.2.3.4:5", "/v1/ws") == '1.2.3.4:5 - "WebSocket /v1/ws" [accepted]'
    with refusing_handshake(1008, "a valid API token is required"):
        line = filtered(ACCEPTED, "1.2.3.4:5", "/v1/ws?token=x")
    assert (
        line
        == '1.2.3.4:5 - "WebSocket /v1/ws?[redacted]" [refused: closed with 1008, a valid API token is required]'
    )
