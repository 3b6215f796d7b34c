"""Protocol v1.1 parts through a real gateway: WebSocket, SSE, resume, cancel, completions."""

from __future__ import annotations

import asyncio

import aiohttp
from websockets.asyncio.client import connect

from providers.base import (
    Finish,
    ProviderState,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from tests.conftest import Gateway, StartGateway
from tests.support.providers import PartsProvider
from tests.support.sseclient import read_events
from tests.support.wsclient import (
    assert_seq_covers,
    collect,
    joined,
    recv,
    send,
    start,
    stream_events,
)

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = [{"name": "get_weather", "parameters": WEATHER}]
V1_DONE = {"type", "id", "seq", "finish_reason", "content", "usage", "metrics"}

THINK_THEN_CALL: list[StreamEvent] = [
    ReasoningDelta("The user wants "),
    ReasoningDelta("the weather."),
    TextDelta("Let me look."),
    ToolCallStart(0, "call_1", "get_weather"),
    ToolCallDelta("call_1", '{"city": '),
    ToolCallDelta("call_1", '"Paris"}'),
    ToolCallEnd("call_1", "get_weather", {"city": "Paris"}),
    ProviderState("sig-1"),
    Usage(12, 30, reasoning_tokens=9, cached_tokens=4),
    Finish("stop"),  # as Gemini and Ollama report a call: the gateway says tool_calls
]


async def test_a_v1_client_gets_exactly_the_v1_messages(start_gateway: StartGateway) -> None:
    gw = start_gateway(providers=[PartsProvider(THINK_THEN_CALL)])
    events = await stream_events(gw.ws, provider="parts", prompt="weather in Paris?")
    assert [e["type"] for e in events] == ["start", "chunk", "done"]
    assert_seq_covers(events)
    done = events[-1]
    assert set(done) == V1_DONE
    assert done["finish_reason"] == "stop"  # no tools asked for: no calls to run
    assert done["content"] == "Let me look."
    # token details are additive usage fields, for every client
    assert done["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 30,
        "total_tokens": 42,
        "estimated": False,
        "reasoning_tokens": 9,
        "cached_tokens": 4,
    }


async def test_parts_over_the_websocket(start_gateway: StartGateway) -> None:
    provider = PartsProvider(THINK_THEN_CALL)
    gw = start_gateway(providers=[provider])
    events = await stream_events(
        gw.ws, provider="parts", prompt="weather in Paris?", tools=TOOLS, reasoning={"effort": "low"}
    )
    assert_seq_covers(events)
    assert joined(events) == [
        {"type": "reasoning", "content": "The user wants the weather."},
        {"type": "chunk", "content": "Let me look."},
        {"type": "tool_call_start", "call_id": "call_1", "name": "get_weather", "index": 0},
        {"type": "tool_call_delta", "call_id": "call_1", "arguments_delta": '{"city": "Paris"}'},
        {"type": "tool_call_end", "call_id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}},
    ]
    done = events[-1]
    assert done["finish_reason"] == "tool_calls"
    assert done["tool_calls"] == [
        {"call_id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    ]
    assert done["reasoning"] == "The user wants the weather."
    assert done["provider_state"] == "sig-1"
    assert "object" not in done
    assert "object_error" not in done
    request = provider.requests[0]
    assert request.tools is not None
    assert request.tools[0].name == "get_weather"
    assert request.reasoning is not None
    assert request.reasoning.effort == "low"


async def test_invalid_arguments_reach_the_client_as_arguments_error(start_gateway: StartGateway) -> None:
    events: list[StreamEvent] = [
        ToolCallStart(0, "c", "get_weather"),
        ToolCallDelta("c", '{"city": '),
        ToolCallEnd("c", "get_weather", None, "the arguments are not valid JSON: truncated"),
        Finish("tool_calls"),
    ]
    gw = start_gateway(providers=[PartsProvider(events)])
    out = await stream_events(gw.ws, provider="parts", prompt="hi", tools=TOOLS)
    end = next(e for e in out if e["type"] == "tool_call_end")
    assert end["arguments"] is None
    assert end["arguments_error"].startswith("the arguments are not valid JSON")
    assert out[-1]["tool_calls"] == [
        {"call_id": "c", "name": "get_weather", "arguments": None, "arguments_error": end["arguments_error"]}
    ]


async def test_a_slow_reader_gets_adjacent_parts_merged_and_resumes_mid_parts(
    start_gateway: StartGateway,
) -> None:
    many: list[StreamEvent] = [ReasoningDelta(f"r{i} ") for i in range(50)]
    many += [ToolCallStart(0, "a", "get_weather"), *[ToolCallDelta("a", "x") for _ in range(50)]]
    many += [ToolCallStart(1, "b", "get_weather"), *[ToolCallDelta("b", "y") for _ in range(50)]]
    many += [ToolCallEnd("a", "get_weather", None, "bad"), ToolCallEnd("b", "get_weather", None, "bad")]
    many.append(Finish("tool_calls"))
    gw = start_gateway({"resume": {"resume_grace_seconds": 5}}, providers=[PartsProvider(many, delay=0.002)])
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "s", provider="parts", prompt="hi", tools=TOOLS, reasoning={})
        ack = await recv(ws)
        first = await recv(ws)
    await asyncio.sleep(0.2)  # the first socket is gone mid-stream; events pile up meanwhile
    async with connect(gw.ws) as ws:
        await recv(ws)
        await send(ws, {"type": "resume", "key": ack["key"], "after_seq": first["seq"]})
        per_id, _ = await collect(ws, {"s"})
    events = [ack, first, *per_id["s"]]
    assert_seq_covers(events)
    assert any("from_seq" in e for e in events), "the resumed reader was behind: its backlog is merged"
    for event in events:
        if event["type"] == "tool_call_delta":
            assert set(event["arguments_delta"]) == ({"x"} if event["call_id"] == "a" else {"y"})
    assert "".join(e["content"] for e in events if e["type"] == "reasoning") == "".join(
        f"r{i} " for i in range(50)
    )


async def test_sse_carries_parts_with_seq_ids_and_resumes_from_last_event_id(
    start_gateway: StartGateway,
) -> None:
    grace = {"resume": {"resume_grace_seconds": 5}}
    gw = start_gateway(grace, providers=[PartsProvider(THINK_THEN_CALL, delay=0.01)])
    body = {"provider": "parts", "prompt": "hi", "tools": TOOLS, "reasoning": {}}
    async with aiohttp.ClientSession() as http:
        async with http.post(gw.http + "/v1/streams", json=body) as resp:
            assert resp.status == 200
            head = (await read_events(resp, until={"tool_call_start"})).events
        key, last = head[0].data["key"], head[-1].id
        assert last is not None
        async with http.get(f"{gw.http}/v1/streams/{key}", headers={"Last-Event-ID": last}) as resp:
            tail = (await read_events(resp)).events
    events = head + tail
    assert [e.event for e in events] == [e.data["type"] for e in events]
    assert [e.id for e in events] == [str(e.data["seq"]) for e in events]
    assert_seq_covers([e.data for e in events])
    assert events[-1].data["tool_calls"][0]["arguments"] == {"city": "Paris"}


async def test_cancel_counts_the_reasoning_in_the_estimated_usage(start_gateway: StartGateway) -> None:
    thinking: list[StreamEvent] = [ReasoningDelta("x" * 400) for _ in range(1000)]
    gw = start_gateway(providers=[PartsProvider(thinking, delay=0.005)])
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "s", provider="parts", prompt="hi")  # reasoning not asked for: not forwarded
        await recv(ws)
        while not _reasoned(gw):
            await send(ws, {"type": "ping"})
            await recv(ws)
        await send(ws, {"type": "cancel", "id": "s"})
        per_id, _ = await collect(ws, {"s"})
    done = per_id["s"][-1]
    assert [e["type"] for e in per_id["s"]] == ["done"]
    assert done["finish_reason"] == "cancelled"
    usage = done["usage"]
    assert usage["estimated"] is True
    assert usage["reasoning_tokens"] >= 100  # at least one 400-character delta came
    assert usage["completion_tokens"] == usage["reasoning_tokens"]


def _reasoned(gw: Gateway) -> bool:
    """Whether the running stream has received any reasoning yet."""
    streams = list(gw.hub.running)
    return bool(streams) and streams[0]._turn.reasoning_chars > 0


async def test_structured_output_is_parsed_and_checked_in_done(start_gateway: StartGateway) -> None:
    answers: dict[str, list[StreamEvent]] = {
        "good": [TextDelta('{"city": '), TextDelta('"Paris"}'), Finish("stop")],
        "wrong": [TextDelta('{"town": "Paris"}'), Finish("stop")],
        "cut": [TextDelta('{"city": "Par'), Finish("length")],
    }
    providers = [PartsProvider(events, name=name) for name, events in answers.items()]
    gw = start_gateway(providers=providers)
    schema = {"type": "json_schema", "name": "place", "schema": WEATHER}
    done = {}
    for name in answers:
        events = await stream_events(gw.ws, provider=name, prompt="hi", response_format=schema)
        done[name] = events[-1]
    assert done["good"]["object"] == {"city": "Paris"}
    assert "object_error" not in done["good"]
    assert "object" not in done["wrong"]
    assert done["wrong"]["object_error"] == (
        "the output does not match the schema at $: 'city' is a required property"
    )
    assert done["wrong"]["content"] == '{"town": "Paris"}'
    assert done["cut"]["object_error"].startswith("the output is not valid JSON")
    json_only = await stream_events(gw.ws, provider="wrong", prompt="hi", response_format={"type": "json"})
    assert json_only[-1]["object"] == {"town": "Paris"}


async def test_completions_answer_the_fields_of_done(start_gateway: StartGateway) -> None:
    gw = start_gateway(providers=[PartsProvider(THINK_THEN_CALL)])
    body = {"provider": "parts", "prompt": "hi", "tools": TOOLS, "reasoning": {}}
    async with aiohttp.ClientSession() as http, http.post(gw.http + "/v1/completions", json=body) as resp:
        assert resp.status == 200
        answer = await resp.json()
    assert answer["finish_reason"] == "tool_calls"
    assert answer["tool_calls"] == [
        {"call_id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    ]
    assert answer["reasoning"] == "The user wants the weather."
    assert answer["provider_state"] == "sig-1"
    assert "type" not in answer
    assert "seq" not in answer


async def test_streaming_switched_off_still_carries_the_parts(start_gateway: StartGateway) -> None:
    gw = start_gateway({"streaming": {"enabled": False}}, providers=[PartsProvider(THINK_THEN_CALL)])
    events = await stream_events(gw.ws, provider="parts", prompt="hi", tools=TOOLS)
    assert [e["type"] for e in joined(events)] == [
        "tool_call_start",
        "tool_call_delta",
        "tool_call_end",
        "chunk",
    ]
    assert events[-1]["tool_calls"][0]["arguments"] == {"city": "Paris"}


async def test_what_a_provider_cannot_take_is_refused_before_the_ack(start_gateway: StartGateway) -> None:
    refusing = PartsProvider(THINK_THEN_CALL, refuse="image URLs: it takes only inline images")
    gw = start_gateway(providers=[refusing])
    events = await stream_events(gw.ws, provider="parts", prompt="hi")
    assert events == [
        {
            "type": "error",
            "id": "a",
            "code": "unsupported_input",
            "message": "provider `parts` cannot take this request: image URLs: it takes only inline images",
            "retryable": False,
        }
    ]
    assert refusing.requests == []
    async with (
        aiohttp.ClientSession() as http,
        http.post(gw.http + "/v1/streams", json={"provider": "parts", "prompt": "hi"}) as resp,
    ):
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "unsupported_input"
