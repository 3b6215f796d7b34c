"""Fault injection (``options.fault``) through a real gateway: each fault ends the stream the way
the real failure would, over WebSocket and HTTP; config agents carry faults; bad faults are
refused with their path; a cancel stops a stalled or delayed stream at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from websockets.asyncio.client import connect

from protocol.messages import Fault, Options, StreamRequest
from providers.offline.rulebased import RuleBasedProvider
from providers.registry import ProviderRegistry
from server.config import Config, ConfigError, load_config
from server.streams.resolve import Resolved, resolve
from tests.conftest import Gateway, StartGateway
from tests.support.sseclient import read_events
from tests.support.wsclient import (
    assert_cancelled,
    assert_gap_free,
    chunk_text,
    collect,
    recv,
    send,
    start,
    stream_events,
)

PROMPT = "Why is the sky blue?"


def faulty_gateway(start_gateway: StartGateway, **streaming: Any) -> Gateway:
    """rulebased pacing 5 ms between chunks; no retries, so a fault's error reaches the client."""
    return start_gateway(
        {
            "providers": {"rulebased": {"chunk_delay_ms": 5}},
            "streaming": {"retry_attempts": 0, **streaming},
        }
    )


# ---- each fault over WebSocket ---------------------------------------------------------------

ERRORS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (
        {},
        {
            "code": "upstream_unavailable",
            "message": "rulebased answered HTTP 503: injected fault (error_after_chunks = 2)",
            "retryable": True,
            "status": 503,
        },
    ),
    (
        {"error_code": "upstream_rate_limited", "retry_after_s": 1.5},
        {
            "code": "upstream_rate_limited",
            "message": "rulebased answered HTTP 429: injected fault (error_after_chunks = 2)",
            "retryable": True,
            "retry_after_s": 1.5,
            "status": 429,
        },
    ),
    (
        {"error_code": "upstream_auth"},
        {
            "code": "upstream_auth",
            "message": "rulebased answered HTTP 401: injected fault (error_after_chunks = 2)",
            "retryable": False,
            "status": 401,
        },
    ),
    (
        {"error_code": "upstream_bad_request"},
        {
            "code": "upstream_bad_request",
            "message": "rulebased answered HTTP 400: injected fault (error_after_chunks = 2)",
            "retryable": False,
            "status": 400,
        },
    ),
    (
        {"error_code": "upstream_protocol"},
        {
            "code": "upstream_protocol",
            "message": "rulebased sent malformed data: injected fault (error_after_chunks = 2)",
            "retryable": True,
        },
    ),
    (
        {"error_code": "timeout"},
        {
            "code": "timeout",
            "message": "rulebased timed out: injected fault (error_after_chunks = 2)",
            "retryable": True,
        },
    ),
]


@pytest.mark.parametrize(("fields", "expected"), ERRORS, ids=[e["code"] for _, e in ERRORS])
async def test_error_after_chunks_gives_two_chunks_then_the_typed_error(
    start_gateway: StartGateway, fields: dict[str, Any], expected: dict[str, Any]
) -> None:
    gw = faulty_gateway(start_gateway)
    fault = {"error_after_chunks": 2, **fields}
    events = await stream_events(gw.ws, "a", prompt=PROMPT, options={"fault": fault})
    assert_gap_free(events)
    assert events[0]["provider"] == "rulebased"
    assert events[-2]["seq"] == 2  # chunks 1 and 2 (possibly merged into one message)
    assert chunk_text(events).startswith('You asked: "Why')
    assert events[-1] == {"type": "error", "id": "a", "seq": 3, "provider": "rulebased", **expected}


async def test_error_before_the_first_chunk(start_gateway: StartGateway) -> None:
    gw = faulty_gateway(start_gateway)
    fault = {"error_after_chunks": 0, "error_code": "upstream_auth"}
    events = await stream_events(gw.ws, "a", prompt=PROMPT, options={"fault": fault})
    assert [e["type"] for e in events] == ["start", "error"]
    assert events[-1]["seq"] == 1
    assert events[-1]["code"] == "upstream_auth"


async def test_truncate_is_reported_like_a_cut_upstream_stream(start_gateway: StartGateway) -> None:
    gw = faulty_gateway(start_gateway)
    events = await stream_events(gw.ws, "a", prompt=PROMPT, options={"fault": {"truncate_after_chunks": 3}})
    assert_gap_free(events)
    # As the HTTP providers report a stream that ends before its terminal marker, e.g.
    # "openai stream ended before [DONE]": no status, retryable.
    assert events[-1] == {
        "type": "error",
        "id": "a",
        "seq": 4,
        "code": "upstream_protocol",
        "message": "rulebased stream ended before its end signal",
        "retryable": True,
        "provider": "rulebased",
    }


async def test_stall_ends_with_the_idle_timeout(start_gateway: StartGateway) -> None:
    gw = faulty_gateway(start_gateway, idle_timeout_seconds=0.3)
    began = time.monotonic()
    events = await stream_events(gw.ws, "a", prompt=PROMPT, options={"fault": {"stall_after_chunks": 2}})
    assert time.monotonic() - began < 5
    assert_gap_free(events)
    assert events[-1] == {
        "type": "error",
        "id": "a",
        "seq": 3,
        "code": "timeout",
        "message": "no data from upstream for 0.3 s",
        "retryable": True,
        "provider": "rulebased",
    }


async def test_stall_before_the_first_chunk_ends_with_the_first_token_timeout(
    start_gateway: StartGateway,
) -> None:
    gw = faulty_gateway(start_gateway, first_token_timeout_seconds=0.3)
    events = await stream_events(gw.ws, "a", prompt=PROMPT, options={"fault": {"stall_after_chunks": 0}})
    assert [e["type"] for e in events] == ["start", "error"]
    assert events[-1]["code"] == "timeout"
    assert events[-1]["message"] == "no first token within 0.3 s"


async def test_first_token_delay_over_the_first_token_timeout(start_gateway: StartGateway) -> None:
    gw = faulty_gateway(start_gateway, first_token_timeout_seconds=0.2)
    began = time.monotonic()
    fault = {"first_token_delay_ms": 600_000}
    events = await stream_events(gw.ws, "a", prompt=PROMPT, options={"fault": fault})
    assert time.monotonic() - began < 5
    assert [e["type"] for e in events] == ["start", "error"]
    assert events[-1] == {
        "type": "error",
        "id": "a",
        "seq": 1,
        "code": "timeout",
        "message": "no first token within 0.2 s",
        "retryable": True,
        "provider": "rulebased",
    }


async def test_first_token_delay_within_the_timeout_only_delays(start_gateway: StartGateway) -> None:
    gw = faulty_gateway(start_gateway)
    events = await stream_events(gw.ws, "a", prompt=PROMPT, options={"fault": {"first_token_delay_ms": 300}})
    assert_gap_free(events)
    done = events[-1]
    assert done["type"] == "done"
    assert done["finish_reason"] == "stop"
    assert done["metrics"]["ttft_ms"] >= 290
    plain = await stream_events(gw.ws, "b", prompt=PROMPT)
    assert plain[-1]["content"] == done["content"]


# ---- cancel ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "before_cancel"),
    [({"stall_after_chunks": 2}, 2), ({"first_token_delay_ms": 600_000}, 0)],
    ids=["stall", "first_token_delay"],
)
async def test_cancel_stops_a_stalled_or_delayed_stream_at_once(
    gateway: Gateway, fault: dict[str, Any], before_cancel: int
) -> None:
    async with connect(gateway.ws) as ws:
        await recv(ws)
        await start(ws, "a", prompt=PROMPT, options={"fault": fault})
        seen = [await recv(ws)]
        while seen[-1]["seq"] < before_cancel:
            seen.append(await recv(ws))
        await asyncio.sleep(0.2)  # well into the stall or the delay
        began = time.monotonic()
        await send(ws, {"type": "cancel", "id": "a"})
        per_id, _ = await collect(ws, {"a"}, timeout=2)
        elapsed = time.monotonic() - began
        assert await _active_streams(gateway) == 0
    events = seen + per_id["a"]
    done = assert_cancelled(events)
    assert done["seq"] == before_cancel + 1
    assert elapsed < 1


async def _active_streams(gw: Gateway) -> int:
    async with aiohttp.ClientSession() as http, http.get(gw.http + "/healthz") as resp:
        body: dict[str, Any] = await resp.json()
    return int(body["active_streams"])


# ---- bad faults ------------------------------------------------------------------------------

BAD_FAULTS: list[tuple[Any, str]] = [
    ({"stall_after": 2}, "Object contains unknown field `stall_after` - at `$.options.fault`"),
    ({"error_after_chunks": -1}, "Expected `int` >= 0 - at `$.options.fault.error_after_chunks`"),
    ({"stall_after_chunks": 100_001}, "at `$.options.fault.stall_after_chunks`"),
    ({"first_token_delay_ms": -5}, "at `$.options.fault.first_token_delay_ms`"),
    ({"error_after_chunks": 1, "error_code": "internal"}, "at `$.options.fault.error_code`"),
    ({"error_after_chunks": 1, "retry_after_s": 3601}, "at `$.options.fault.retry_after_s`"),
    ({"truncate_after_chunks": "3"}, "at `$.options.fault.truncate_after_chunks`"),
    ({"stall_after_chunks": 1, "truncate_after_chunks": 1}, "may be set - at `$.options.fault`"),
    ({"error_code": "upstream_auth"}, "`error_code` goes with `error_after_chunks` - at `$.options.fault`"),
    ("boom", "Expected `object | null`, got `str` - at `$.options.fault`"),
]


async def test_bad_faults_are_refused_with_their_path(gateway: Gateway) -> None:
    async with connect(gateway.ws) as ws:
        await recv(ws)
        for fault, fragment in BAD_FAULTS:
            await start(ws, "a", prompt=PROMPT, options={"fault": fault})
            error = await recv(ws)
            assert error["type"] == "error", fault
            assert error["code"] == "bad_message", fault
            assert error["id"] == "a"
            assert "seq" not in error
            assert error["retryable"] is False
            assert fragment in error["message"], (fault, error["message"])
        await start(ws, "ok", prompt=PROMPT, options={"fault": None})
        per_id, _ = await collect(ws, {"ok"})
    assert per_id["ok"][-1]["type"] == "done"


async def test_bad_fault_over_http_is_a_400(gateway: Gateway) -> None:
    body = {"prompt": PROMPT, "options": {"fault": {"error_after_chunks": -1}}}
    async with (
        aiohttp.ClientSession() as http,
        http.post(gateway.http + "/v1/completions", json=body) as resp,
    ):
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["code"] == "bad_message"
    assert "`$.options.fault.error_after_chunks`" in error["message"]


# ---- HTTP ------------------------------------------------------------------------------------


async def test_fault_over_sse(start_gateway: StartGateway) -> None:
    gw = faulty_gateway(start_gateway)
    body = {"id": "s1", "prompt": PROMPT, "options": {"fault": {"truncate_after_chunks": 2}}}
    async with aiohttp.ClientSession() as http, http.post(gw.http + "/v1/streams", json=body) as resp:
        assert resp.status == 200
        transcript = await read_events(resp)
    events = transcript.events
    assert events[0].event == "start"
    assert {e.event for e in events[1:-1]} == {"chunk"}
    assert events[-2].data["seq"] == 2
    assert events[-1].event == "error"
    assert events[-1].id == "3"
    assert events[-1].data["code"] == "upstream_protocol"
    assert events[-1].data["seq"] == 3


async def test_completions_with_a_rate_limit_fault_is_a_429_with_retry_after(
    start_gateway: StartGateway,
) -> None:
    gw = faulty_gateway(start_gateway)
    fault = {"error_after_chunks": 0, "error_code": "upstream_rate_limited", "retry_after_s": 2}
    body = {"prompt": PROMPT, "options": {"fault": fault}}
    async with aiohttp.ClientSession() as http, http.post(gw.http + "/v1/completions", json=body) as resp:
        assert resp.status == 429
        assert resp.headers["retry-after"] == "2"
        error = (await resp.json())["error"]
    assert error == {
        "code": "upstream_rate_limited",
        "message": "rulebased answered HTTP 429: injected fault (error_after_chunks = 0)",
        "retryable": True,
        "retry_after_s": 2.0,
    }


async def test_streaming_switched_off_still_acts_out_the_fault(start_gateway: StartGateway) -> None:
    gw = start_gateway({"streaming": {"enabled": False, "retry_attempts": 0}})
    fault = {"error_after_chunks": 3, "error_code": "upstream_bad_request"}
    events = await stream_events(gw.ws, "a", prompt=PROMPT, options={"fault": fault})
    assert [e["type"] for e in events] == ["start", "error"]
    assert events[-1]["code"] == "upstream_bad_request"
    assert events[-1]["status"] == 400


# ---- agents carry faults ---------------------------------------------------------------------

FLAKY = {
    "provider": "rulebased",
    "options": {"max_tokens": 50, "fault": {"error_after_chunks": 1, "error_code": "upstream_auth"}},
}


async def test_a_config_agent_carries_a_fault_and_a_request_can_replace_it(
    start_gateway: StartGateway,
) -> None:
    gw = start_gateway(
        {
            "providers": {"rulebased": {"chunk_delay_ms": 5}},
            "streaming": {"retry_attempts": 0},
            "agents": {"flaky": FLAKY},
        }
    )
    events = await stream_events(gw.ws, "a", agent="flaky", prompt=PROMPT)
    assert_gap_free(events)
    assert events[-1]["seq"] == 2
    assert events[-1]["code"] == "upstream_auth"
    # The request's fault replaces the agent's as a whole; `{}` switches it off.
    cleared = await stream_events(gw.ws, "b", agent="flaky", prompt=PROMPT, options={"fault": {}})
    assert cleared[-1]["type"] == "done"
    assert cleared[-1]["finish_reason"] == "length"  # the agent's other options still apply
    other = {"fault": {"truncate_after_chunks": 2}}
    replaced = await stream_events(gw.ws, "c", agent="flaky", prompt=PROMPT, options=other)
    assert replaced[-1]["seq"] == 3
    assert replaced[-1]["code"] == "upstream_protocol"


def test_config_file_faults_are_checked(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[agents.flaky]\noptions = { fault = { stall_after_chunks = 3 } }\n")
    assert load_config(str(good), {}).agents["flaky"].options.fault == Fault(stall_after_chunks=3)
    typo = tmp_path / "typo.toml"
    typo.write_text("[agents.flaky]\noptions = { fault = { stall_after = 3 } }\n")
    with pytest.raises(ConfigError, match=r"agents\.flaky\.options\.fault\.stall_after"):
        load_config(str(typo), {})
    negative = tmp_path / "negative.toml"
    negative.write_text("[agents.flaky]\noptions = { fault = { error_after_chunks = -1 } }\n")
    with pytest.raises(ConfigError, match=r"agents\.flaky\.options\.fault\.error_after_chunks"):
        load_config(str(negative), {})


# ---- resolve ---------------------------------------------------------------------------------


def _resolve(request: dict[str, Any], agents: dict[str, Any] | None = None) -> Resolved:
    config = msgspec.convert({"agents": agents} if agents else {}, Config)
    registry = ProviderRegistry([RuleBasedProvider(sleep=asyncio.sleep)])
    resolved = resolve(msgspec.convert(request, StreamRequest), config, registry)
    assert isinstance(resolved, Resolved)
    return resolved


def test_resolve_moves_the_fault_out_of_the_options() -> None:
    fault = {"truncate_after_chunks": 1}
    resolved = _resolve({"prompt": "x", "options": {"temperature": 0.5, "fault": fault}})
    assert resolved.request.fault == Fault(truncate_after_chunks=1)
    assert resolved.request.options == Options(temperature=0.5)
    assert _resolve({"prompt": "x"}).request.fault is None


def test_resolve_takes_the_agents_fault_unless_the_request_sets_one() -> None:
    agents = {"flaky": FLAKY}
    inherited = _resolve({"agent": "flaky", "prompt": "x"}, agents).request
    assert inherited.fault == Fault(error_after_chunks=1, error_code="upstream_auth")
    assert inherited.options == Options(max_tokens=50)
    same = _resolve({"agent": "flaky", "prompt": "x", "options": {"fault": None, "top_p": 0.5}}, agents)
    assert same.request.fault == inherited.fault
    replaced = _resolve(
        {"agent": "flaky", "prompt": "x", "options": {"fault": {"stall_after_chunks": 4}}}, agents
    )
    assert replaced.request.fault == Fault(stall_after_chunks=4)  # not merged with the agent's
    assert replaced.request.options == Options(max_tokens=50)
