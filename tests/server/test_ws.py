"""Protocol v1 over a real WebSocket against a real uvicorn server."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side
from websockets.protocol import State as ProtocolState

from server.fastpath.ws_protocol import lone_masked_text
from tests.conftest import Gateway, StartGateway
from tests.support.providers import ScriptedProvider
from tests.support.server_protocols import WS_PROTOCOLS, ws_options
from tests.support.wsclient import (
    Message,
    assert_cancelled,
    assert_gap_free,
    chunk_text,
    collect,
    recv,
    send,
    start,
)

BRIEF = {"topic": "Solar panels", "audience": "homeowners", "tone": "upbeat"}


async def test_ready_describes_server(gateway: Gateway) -> None:
    async with connect(gateway.ws) as ws:
        ready = await recv(ws)
    assert ready["type"] == "ready"
    assert ready["protocol"] == 1
    assert ready["server"]["name"] == "tokenwire"
    assert {
        "name": "rulebased",
        "streaming": "native",
        "configured": True,
        "default_model": "script",
    } in ready["providers"]
    assert ready["limits"] == {"max_streams": 16, "max_message_bytes": 1_048_576}


@WS_PROTOCOLS
async def test_three_streams_interleave_and_each_is_whole(
    start_gateway: StartGateway, ws_protocol: str
) -> None:
    gateway = start_gateway(uvicorn_options=ws_options(ws_protocol))
    async with connect(gateway.ws) as ws:
        await recv(ws)
        await start(ws, "script", brief=BRIEF, plan={"target_duration_seconds": 20})
        await start(ws, "prompt", prompt="Why is the sky blue?")
        await start(
            ws,
            "chat",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        )
        per_id, arrival = await collect(ws, {"script", "prompt", "chat"})
    for events in per_id.values():
        assert_gap_free(events)
        done = events[-1]
        assert done["type"] == "done", done
        assert done["finish_reason"] == "stop"
        assert chunk_text(events) == done["content"]
        assert done["usage"]["estimated"] is True
        assert (
            done["usage"]["total_tokens"]
            == done["usage"]["prompt_tokens"] + done["usage"]["completion_tokens"]
        )
        metrics = done["metrics"]
        assert metrics["provider"] == "rulebased"
        assert metrics["model"] == "script"
        assert metrics["estimated_cost_usd"] == 0
        assert 0 <= metrics["ttft_ms"] <= metrics["duration_ms"]
        assert metrics["tokens_per_second"] > 0
    assert "Why is the sky blue?" in per_id["prompt"][-1]["content"]
    assert "Solar panels" in per_id["script"][-1]["content"]
    chunk_ids = [m["id"] for m in arrival if m["type"] == "chunk"]
    switches = sum(1 for a, b in itertools.pairwise(chunk_ids) if a != b)
    assert switches >= 4, "chunks of the three streams should interleave"


async def test_ack_arrives_before_upstream_answers(start_gateway: StartGateway) -> None:
    slow = ScriptedProvider(first_delay=1.0, count=1)
    gw = start_gateway(providers=[slow])
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "a", provider="scripted", prompt="hi", model="m1")
        ack = await recv(ws, timeout=0.5)
    assert len(ack.pop("key")) == 32
    assert ack == {"type": "start", "id": "a", "seq": 0, "provider": "scripted", "model": "m1"}


async def test_cancel_mid_stream_stops_upstream_and_reports_text_so_far(start_gateway: StartGateway) -> None:
    upstream = ScriptedProvider(count=1000, delay=0.01, text="tok ")
    gw = start_gateway(providers=[upstream])
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "a", provider="scripted", prompt="hi")
        seen = [await recv(ws) for _ in range(4)]  # ack + 3 chunks
        await send(ws, {"type": "cancel", "id": "a"})
        per_id, _ = await collect(ws, {"a"})
    events = seen + per_id["a"]
    done = assert_cancelled(events)
    assert 3 <= len(done["content"]) // 4 < 1000
    assert done["usage"]["completion_tokens"] > 0
    assert upstream.closed == 1
    assert upstream.finished == 0


async def test_cancel_after_end_is_a_no_op_and_unknown_id_is_an_error(gateway: Gateway) -> None:
    async with connect(gateway.ws) as ws:
        await recv(ws)
        await start(ws, "a", prompt="hi")
        await collect(ws, {"a"})
        await send(ws, {"type": "cancel", "id": "a"})
        await send(ws, {"type": "ping", "ts": 7})
        assert await recv(ws) == {"type": "pong", "ts": 7}
        await send(ws, {"type": "cancel", "id": "never-seen"})
        error = await recv(ws)
    assert error["type"] == "error"
    assert error["code"] == "unknown_stream"
    assert error["id"] == "never-seen"
    assert "seq" not in error


async def test_ping_without_ts_gets_server_time(gateway: Gateway) -> None:
    async with connect(gateway.ws) as ws:
        await recv(ws)
        await send(ws, {"type": "ping"})
        pong = await recv(ws)
    assert pong["type"] == "pong"
    assert isinstance(pong["ts"], int)
    assert pong["ts"] > 1_600_000_000_000


async def _active_streams(gw: Gateway) -> int:
    async with aiohttp.ClientSession() as http, http.get(gw.http + "/healthz") as resp:
        body: dict[str, Any] = await resp.json()
    return int(body["active_streams"])


async def _wait_active(gw: Gateway, expected: int, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while await _active_streams(gw) != expected:
            await asyncio.sleep(0.02)


async def test_closing_the_socket_cancels_its_streams_upstream_after_the_grace_period(
    start_gateway: StartGateway,
) -> None:
    upstream = ScriptedProvider(count=1000, delay=0.01)
    gw = start_gateway({"resume": {"resume_grace_seconds": 0.5}}, providers=[upstream])
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "a", provider="scripted", prompt="hi")
        await start(ws, "b", provider="scripted", prompt="hi")
        await recv(ws)
        await recv(ws)
        assert await _active_streams(gw) == 2
    await asyncio.sleep(0.2)
    assert await _active_streams(gw) == 2, "a closed socket does not cancel at once: a resume may come"
    await _wait_active(gw, 0)
    assert upstream.closed == 2
    assert upstream.finished == 0


async def test_duplicate_active_id_is_refused_without_touching_the_running_stream(gateway: Gateway) -> None:
    async with connect(gateway.ws) as ws:
        await recv(ws)
        await start(ws, "a", prompt="first")
        await start(ws, "a", prompt="second")
        per_id, _ = await collect(ws, {"a"})
    refusals = [m for m in per_id["a"] if m["type"] == "error" and "seq" not in m]
    assert len(refusals) == 1
    assert refusals[0]["code"] == "duplicate_stream"
    assert refusals[0]["retryable"] is False
    events = [m for m in per_id["a"] if m not in refusals]
    assert_gap_free(events)
    assert "first" in events[-1]["content"]


async def test_id_can_be_reused_after_its_stream_ended(gateway: Gateway) -> None:
    async with connect(gateway.ws) as ws:
        await recv(ws)
        for prompt in ("one", "two"):
            await start(ws, "a", prompt=prompt)
            per_id, _ = await collect(ws, {"a"})
            assert per_id["a"][-1]["type"] == "done"
            assert prompt in per_id["a"][-1]["content"]


async def test_per_connection_stream_limit(start_gateway: StartGateway) -> None:
    gw = start_gateway(
        {"streaming": {"max_streams_per_connection": 2}, "providers": {"rulebased": {"chunk_delay_ms": 20}}}
    )
    async with connect(gw.ws) as ws:
        ready = await recv(ws)
        assert ready["limits"]["max_streams"] == 2
        for sid in ("a", "b", "c"):
            await start(ws, sid, prompt="hi")
        per_id, _ = await collect(ws, {"a", "b", "c"})
    assert per_id["c"] == [
        {
            "type": "error",
            "id": "c",
            "code": "too_many_streams",
            "message": "at most 2 streams may run on one connection",
            "retryable": True,
        }
    ]
    assert per_id["a"][-1]["type"] == per_id["b"][-1]["type"] == "done"


async def test_global_stream_limit_answers_server_busy(start_gateway: StartGateway) -> None:
    gw = start_gateway(
        {"streaming": {"max_concurrent_streams": 1}, "providers": {"rulebased": {"chunk_delay_ms": 20}}}
    )
    async with connect(gw.ws) as first, connect(gw.ws) as second:
        await recv(first)
        await recv(second)
        await start(first, "a", prompt="hi")
        assert (await recv(first))["type"] == "start"
        await start(second, "b", prompt="hi")
        busy = await recv(second)
        assert busy["code"] == "server_busy"
        assert busy["retryable"] is True
        assert "seq" not in busy
        await collect(first, {"a"})
        await _wait_active(gw, 0)
        await start(second, "b", prompt="hi")
        per_id, _ = await collect(second, {"b"})
    assert per_id["b"][-1]["type"] == "done"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"provider": "nope"}, "unknown_provider"),
        ({"agent": "nope"}, "unknown_agent"),
    ],
)
async def test_unknown_provider_and_agent_are_refused(
    gateway: Gateway, fields: dict[str, str], code: str
) -> None:
    async with connect(gateway.ws) as ws:
        await recv(ws)
        await start(ws, "a", prompt="hi", **fields)
        error = await recv(ws)
    assert error["code"] == code
    assert error["id"] == "a"
    assert "seq" not in error
    assert "nope" in error["message"]


async def test_agent_preset_supplies_system_prompt_and_provider(gateway: Gateway) -> None:
    async with connect(gateway.ws) as ws:
        await recv(ws)
        await start(ws, "a", agent="assistant", prompt="Plan my week")
        per_id, _ = await collect(ws, {"a"})
    assert per_id["a"][0]["provider"] == "rulebased"
    assert "Plan my week" in per_id["a"][-1]["content"]


async def test_first_token_timeout(start_gateway: StartGateway) -> None:
    gw = start_gateway({"streaming": {"first_token_timeout_seconds": 0.2}}, [ScriptedProvider(first_delay=5)])
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "a", provider="scripted", prompt="hi")
        per_id, _ = await collect(ws, {"a"})
    error = per_id["a"][-1]
    assert error["type"] == "error"
    assert error["seq"] == 1
    assert error["code"] == "timeout"
    assert "first token" in error["message"]
    assert error["retryable"] is True


async def test_idle_timeout(start_gateway: StartGateway) -> None:
    upstream = ScriptedProvider(count=5, delay=2)
    gw = start_gateway({"streaming": {"idle_timeout_seconds": 0.2}}, [upstream])
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "a", provider="scripted", prompt="hi")
        per_id, _ = await collect(ws, {"a"})
    events = per_id["a"]
    assert_gap_free(events)
    assert [e["type"] for e in events] == ["start", "chunk", "error"]
    assert events[-1]["code"] == "timeout"
    assert "no data from upstream" in events[-1]["message"]
    assert upstream.closed == 1


async def test_total_timeout(start_gateway: StartGateway) -> None:
    gw = start_gateway(
        {"streaming": {"stream_timeout_seconds": 0.3}}, [ScriptedProvider(count=1000, delay=0.02)]
    )
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "a", provider="scripted", prompt="hi")
        per_id, _ = await collect(ws, {"a"})
    events = per_id["a"]
    assert_gap_free(events)
    assert events[-1]["code"] == "timeout"
    assert "in total" in events[-1]["message"]
    assert 3 < len(events) < 100


async def test_provider_error_mid_stream_is_a_typed_terminal(start_gateway: StartGateway) -> None:
    gw = start_gateway(providers=[ScriptedProvider(count=10, fail_after=3)])
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "a", provider="scripted", prompt="hi")
        per_id, _ = await collect(ws, {"a"})
    events = per_id["a"]
    assert_gap_free(events)
    assert events[-1] == {
        "type": "error",
        "id": "a",
        "seq": 4,
        "code": "upstream_rate_limited",
        "message": "slow down",
        "retryable": True,
        "retry_after_s": 2.0,
        "provider": "scripted",
        "status": 429,
    }


BAD_MESSAGES: list[tuple[str | bytes, str | None, str]] = [
    ("not json", None, "not valid JSON"),
    ("[1, 2]", None, "Expected `object`"),
    ('"start"', None, "Expected `object`"),
    ('{"type": "launch", "id": "a"}', "a", "`$.type`"),
    ('{"id": "a", "prompt": "x"}', "a", "`type`"),
    ('{"type": "start", "prompt": "x"}', None, "`id`"),
    ('{"type": "start", "id": "a", "prompt": 5}', "a", "`$.prompt`"),
    (
        '{"type": "start", "id": "a", "prompt": "x", "options": {"temperature": "hot"}}',
        "a",
        "`$.options.temperature`",
    ),
    (
        '{"type": "start", "id": "a", "prompt": "x", "options": {"max_tokens": 0}}',
        "a",
        "`$.options.max_tokens`",
    ),
    ('{"type": "start", "id": "' + "a" * 65 + '", "prompt": "x"}', None, "`$.id`"),
    ('{"type": "start", "id": "bad id!", "prompt": "x"}', None, "`$.id`"),
    ('{"type": "start", "id": "a", "prompt": "x", "brief": {"topic": "t"}}', "a", "exactly one input"),
    ('{"type": "start", "id": "a"}', "a", "exactly one input"),
    (
        '{"type": "start", "id": "a", "messages": [{"role": "robot", "content": "x"}]}',
        "a",
        "`$.messages[0].role`",
    ),
    (
        '{"type": "start", "id": "a", "brief": {"topic": "t"}, "plan": {"pacing": "warp"}}',
        "a",
        "`$.plan.pacing`",
    ),
    ('{"type": "cancel"}', None, "`id`"),
    (b"\xff\xfe binary junk", None, "not valid JSON"),
]


async def test_every_bad_message_gets_a_typed_error_and_the_socket_keeps_serving(gateway: Gateway) -> None:
    async with connect(gateway.ws) as ws:
        await recv(ws)
        for raw, expected_id, fragment in BAD_MESSAGES:
            await ws.send(raw)
            error = await recv(ws)
            assert error["type"] == "error", raw
            assert error["code"] == "bad_message", raw
            assert error["retryable"] is False
            assert "seq" not in error
            assert error.get("id") == expected_id, raw
            assert fragment in error["message"], (raw, error["message"])
        await start(ws, "ok", prompt="still here?")
        per_id, _ = await collect(ws, {"ok"})
    assert per_id["ok"][-1]["type"] == "done"


async def test_unknown_fields_are_ignored(gateway: Gateway) -> None:
    async with connect(gateway.ws) as ws:
        await recv(ws)
        await send(ws, {"type": "start", "id": "a", "prompt": "hi", "future_field": {"x": 1}})
        per_id, _ = await collect(ws, {"a"})
    assert per_id["a"][-1]["type"] == "done"


async def test_oversized_frame_closes_with_1009(start_gateway: StartGateway) -> None:
    gw = start_gateway({"server": {"max_message_bytes": 2048}})
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "a", prompt="x" * 4096)
        with pytest.raises(Exception, match="1009"):
            await recv(ws)


async def test_streaming_switched_off_sends_one_chunk(start_gateway: StartGateway) -> None:
    gw = start_gateway({"streaming": {"enabled": False}})
    async with connect(gw.ws) as ws:
        await recv(ws)
        await start(ws, "a", brief=BRIEF)
        per_id, _ = await collect(ws, {"a"})
    events = per_id["a"]
    assert [e["type"] for e in events] == ["start", "chunk", "done"]
    assert events[1]["content"] == events[2]["content"]
    assert events[1]["content"].startswith("Title:")


@WS_PROTOCOLS
async def test_slow_reader_gets_merged_chunks_and_the_stream_pauses(
    start_gateway: StartGateway, ws_protocol: str
) -> None:
    total = 20_000
    upstream = ScriptedProvider(count=total, text="y" * 1000, incompressible=True)  # 20 MB, fast
    gw = start_gateway(
        {"streaming": {"buffer_size": 16384}}, [upstream], uvicorn_options=ws_options(ws_protocol)
    )
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, set before connecting
    sock.connect((gw.ws.split("/")[2].split(":")[0], int(gw.ws.split(":")[2].split("/")[0])))
    async with connect(gw.ws, sock=sock, max_queue=1, max_size=None) as ws:
        await recv(ws)
        await start(ws, "a", provider="scripted", prompt="hi")
        await asyncio.sleep(1.0)  # not reading
        (stream,) = gw.hub.running
        produced_while_stalled = stream.log.content_chars
        per_id, _ = await collect(ws, {"a"}, timeout=60)
    events = per_id["a"]
    assert_gap_free(events)
    assert events[-1]["type"] == "done"
    assert chunk_text(events) == "".join(upstream.emitted) == events[-1]["content"]
    assert any("from_seq" in e for e in events), "a slow reader should get merged chunks"
    assert produced_while_stalled < total * 1000 / 2, "upstream reading should pause for a slow reader"


def test_ready_json_is_compact() -> None:
    # The wire format is one JSON object per text frame; check the encoder emits no newlines.
    from protocol.codec import encode
    from protocol.messages import Chunk

    assert b"\n" not in encode(Chunk(id="a", seq=1, content="line\nbreak"))
    assert json.loads(encode(Chunk(id="a", seq=1, content="line\nbreak")))["content"] == "line\nbreak"


async def test_cancel_right_after_start_still_ends_the_stream(gateway: Gateway) -> None:
    async with connect(gateway.ws) as ws:
        await recv(ws)
        for i in range(10):  # start and cancel usually arrive before the stream's task first runs
            await ws.send(json.dumps({"type": "start", "id": f"s{i}", "prompt": "hi"}))
            await send(ws, {"type": "cancel", "id": f"s{i}"})
        per_id, _ = await collect(ws, {f"s{i}" for i in range(10)}, timeout=10)
    for events in per_id.values():
        assert_gap_free(events)
        assert events[-1]["type"] == "done"
        assert events[-1]["finish_reason"] == "cancelled"


class RawClient:
    """A WebSocket client on a bare socket, whose writes end where the test says: TCP may cut a
    client's frames anywhere, and the gateway reads whole lone frames on a fast path of its own
    (server.fastpath.ws_protocol)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.frames = Protocol(Side.CLIENT, state=ProtocolState.OPEN, max_size=None)
        self.pending: list[Message] = []  # read, not yet asked for

    @classmethod
    async def open(cls, gateway: Gateway) -> RawClient:
        host, port = gateway.http.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"GET /v1/ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
        client = cls(reader, writer)
        assert (await client.messages(1))[0]["type"] == "ready"
        return client

    def encode(self, *messages: Message | str) -> bytes:
        """Masked frames: a text frame per message, a ping per str (its payload)."""
        for message in messages:
            if isinstance(message, str):
                self.frames.send_ping(message.encode())
            else:
                self.frames.send_text(json.dumps(message).encode())
        return b"".join(self.frames.data_to_send())

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()
        await asyncio.sleep(0.02)  # read by the gateway on its own

    async def messages(self, count: int) -> list[Message]:
        """The next ``count`` text messages (pongs skipped)."""
        async with asyncio.timeout(10):
            while len(self.pending) < count:
                self.frames.receive_data(await self.reader.read(65536))
                for event in self.frames.events_received():
                    if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                        self.pending.append(json.loads(bytes(event.data)))
        out, self.pending = self.pending[:count], self.pending[count:]
        return out

    def close(self) -> None:
        self.writer.close()


def frame_hiding_a_frame(message: Message) -> bytes:
    """A text frame of ``message`` whose mask key makes the bytes after the key, read alone, a
    whole masked text frame: what a reader that took any read for a frame would misread."""
    payload = json.dumps(message).encode()
    hidden = len(payload) - 6  # the size the hidden frame's header claims
    assert 0 <= hidden < 126
    key = bytes((0x81 ^ payload[0], (0x80 | hidden) ^ payload[1], 0, 0))
    masked = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    assert lone_masked_text(masked, None) is not None
    return bytes((0x81, 0x80 | len(payload))) + key + masked


async def until_done(client: RawClient, ids: set[str]) -> dict[str, list[Message]]:
    per_id: dict[str, list[Message]] = {i: [] for i in ids}
    while any(not events or events[-1]["type"] != "done" for events in per_id.values()):
        [message] = await client.messages(1)
        per_id[message["id"]].append(message)
    return per_id


@WS_PROTOCOLS
async def test_client_frames_cut_anywhere_or_sent_together_are_each_read_once(
    start_gateway: StartGateway, ws_protocol: str
) -> None:
    gw = start_gateway(
        {"providers": {"rulebased": {"chunk_delay_ms": 1}}}, uvicorn_options=ws_options(ws_protocol)
    )
    client = await RawClient.open(gw)
    try:
        # After the header, after the mask key, mid-payload, one byte short: nothing is buffered
        # after the first two, yet the parser is inside the frame.
        for n, cut in enumerate((2, 6, 20, -1)):
            frame = frame_hiding_a_frame({"type": "start", "id": f"cut{n}", "prompt": "Hi"})
            await client.write(frame[:cut])
            await client.write(frame[cut:])
            assert_gap_free((await until_done(client, {f"cut{n}"}))[f"cut{n}"])
        one_write = client.encode(
            {"type": "start", "id": "a", "prompt": "Hi"}, "ping", {"type": "start", "id": "b", "prompt": "Hi"}
        )
        await client.write(one_write)
        per_id = await until_done(client, {"a", "b"})
        assert [events[-1]["finish_reason"] for events in per_id.values()] == ["stop", "stop"]
        # And a lone frame after all that is read as one still.
        await client.write(client.encode({"type": "start", "id": "last", "prompt": "Hi"}))
        assert (await until_done(client, {"last"}))["last"][-1]["type"] == "done"
    finally:
        client.close()
