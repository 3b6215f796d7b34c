"""A randomized stress test over a real gateway.

Twenty WebSocket clients run at once against one gateway (the offline ``rulebased`` provider with
a short chunk delay, and two scripted providers: one steady, one failing mid-stream). Each sends
a random interleaving of valid starts (text and binary frames, fresh and reused ids), invalid
starts (bad JSON, wrong types, invalid ids, duplicate ids, unknown provider or agent, a provider
without a key), floods past the per-connection stream limit, cancels (of running, ended and
unknown ids), pings, and some clients drop their socket mid-stream (TCP abort, TCP close without
a close frame, a frame over ``max_message_bytes``) and reconnect.

Every message the server sends is checked as it arrives; at the end, for every socket that stayed:

- replies come in the order of the client messages that asked for them (section 5.4): each
  ``start`` gets exactly one answer, its ack or a typed refusal that the client's own state at
  sending time allows (e.g. ``duplicate_stream`` only for an id it had running or pending,
  ``too_many_streams`` only when it had ``max_streams`` open), each cancel of an unknown id gets
  ``unknown_stream``, each invalid message a ``bad_message``, each ping its pong;
- every accepted stream has exactly one terminal (``done`` or an ``error`` with ``seq``) and
  nothing after it; its seq numbers are gap-free (merged chunks cover ``from_seq``..``seq``);
- its chunk text equals ``done.content``, and equals what the same request gives when run alone:
  exactly when it was not cancelled, as a prefix when it was (only after the client cancelled);
- every error carries a code of ``protocol.errors.ErrorCode``;
- the server answers a final ping.

For sockets that were dropped the same checks hold for what arrived before; an oversized frame
must be answered with close code 1009. After all clients are gone the hub must run no stream
within a few seconds (the streams of a dropped socket run on, waiting for a resume, and end by
themselves), and the autouse leak check then looks at the server's tasks.

The seed is printed and named in every failure; set TOKENWIRE_STRESS_SEED to replay one.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from protocol.errors import ErrorCode
from tests.conftest import Gateway, StartGateway
from tests.support.providers import ScriptedProvider
from tests.support.wsclient import stream_events

SEED_ENV = "TOKENWIRE_STRESS_SEED"
CLIENTS = 20
OPS_PER_CLIENT = 120
DROPPING_CLIENTS = {0, 4, 8, 12, 16}  # these drop their socket once, mid-stream, and reconnect
CHUNK_DELAY_MS = 2
MAX_MESSAGE_BYTES = 64 * 1024
CODES = {code.value for code in ErrorCode}
SERVER_TYPES = {"ready", "start", "chunk", "notice", "done", "error", "pong"}

# Requests a client picks from (without type and id). Each is also run once alone, first: the
# text of an uncancelled stream of the same request must be exactly that run's.
CATALOG: dict[str, dict[str, Any]] = {
    "prompt": {"prompt": "Why is the sky blue?"},
    "prompt-max-tokens": {"prompt": "Explain backpressure in one paragraph.", "options": {"max_tokens": 25}},
    "chat": {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Give me three tips for writing clear docs."},
        ]
    },
    "script": {
        "brief": {"topic": "Tides", "audience": "kids", "tone": "playful"},
        "plan": {"target_duration_seconds": 45, "pacing": "fast", "density": "dense"},
    },
    "unicode": {"prompt": 'ünïcödé ✓ 🎉 — “quotes”, \\ and "escapes"\n\ttabs \u2028 \x00 end'},
    "agent": {"agent": "assistant", "prompt": "How do I name variables?"},
    "stop": {"prompt": "Stop early please", "options": {"stop": ["drafter", "model"]}},
    "scripted": {"provider": "scripted", "prompt": "steady"},
    "flaky": {"provider": "flaky", "prompt": "fails after five chunks"},
    "burst": {"provider": "burst", "prompt": "all at once: merged chunks"},
}

# Starts that are refused whatever the connection's state (after the id checks): the code.
REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"provider": "mistral", "prompt": "hi"}, "unknown_provider"),
    ({"agent": "writer", "prompt": "hi"}, "unknown_agent"),
    ({"provider": "anthropic", "prompt": "hi"}, "provider_not_configured"),
]
# Starts with a valid id that do not decode: bad_message naming the id.
BAD_STARTS: list[dict[str, Any]] = [
    {"prompt": 5},
    {},
    {"prompt": "hi", "brief": {"topic": "both"}},
    {"prompt": "hi", "options": {"temperature": 3}},
    {"prompt": "hi", "options": {"max_tokens": 10**30}},
    {"messages": [{"role": "tool", "content": "x"}]},
    {"messages": [{"role": "assistant", "content": "no user"}]},
    {"prompt": "   "},
    {"prompt": "hi", "plan": {}},
    {"provider": "", "prompt": "hi"},
    {"brief": {"topic": ""}},
    {"prompt": ["not", "a", "string"]},
]
# Frames whose id cannot be read: bad_message without id.
BAD_FRAMES: list[str | bytes] = [
    "{not json",
    '{"type":"start","id":"a1","prompt":"trunc',
    "",
    "null",
    "[]",
    '"start"',
    "{}",
    '{"type":"start","id":"has space","prompt":"hi"}',
    '{"type":"start","id":"' + "a" * 65 + '","prompt":"hi"}',
    '{"type":"cancel","id":""}',
    '{"type":"bogus"}',
    '{"type":"ping","ts":[1]}',
    '{"type":"ping","ts":1e999}',
    b"\x00\x01\x02",
    b"\xff{}",
]
PING_TS: list[Any] = [None, 0, -1, 2**53, 1717171717000, 3.25, "", "ts-ü🎉", "x" * 300]


@dataclass
class Expect:
    """A client message that must be answered, and the answers allowed for it."""

    sent: int  # index of the message on its connection
    what: str
    id: str | None
    allowed: frozenset[str]  # "ack", "pong" or error codes
    request: str | None = None  # the CATALOG key of a start that may be accepted
    ts: Any = None  # a ping's ts


@dataclass
class Instance:
    """One accepted stream."""

    id: str
    request: str
    sent: int
    ack: dict[str, Any]
    expected_seq: int = 1
    text: str = ""
    terminal: dict[str, Any] | None = None


@dataclass
class Reference:
    """What a request gives when run alone."""

    ack: dict[str, Any]
    terminal: dict[str, Any]
    text: str


@dataclass
class Stats:
    accepted: int = 0
    cancelled: int = 0
    errored: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    pongs: int = 0
    dropped: int = 0
    merged_chunks: int = 0


class Session:
    """One connection: what the client sent and expects, checked against what arrives."""

    def __init__(self, name: str, seed: int, limit: int, burst: float) -> None:
        self.name, self.seed, self.limit, self.burst = name, seed, limit, burst
        self.sent = 0
        self.valid_starts_sent = 0  # starts that decode: the ones the start rate limit counts
        self.expects: deque[Expect] = deque()
        self.active: dict[str, Instance] = {}
        self.ended: list[Instance] = []
        self.known: set[str] = set()  # ids that were acked at least once
        self.cancels: dict[str, list[int]] = {}  # id -> indexes of the cancels sent for it
        self.received: list[dict[str, Any]] = []
        self.stats = Stats()

    def fail(self, problem: str) -> AssertionError:
        tail = "\n  ".join(json.dumps(m)[:300] for m in self.received[-8:])
        return AssertionError(
            f"[seed {self.seed}, {SEED_ENV}={self.seed} to replay] {self.name}: {problem}\n"
            f"  last messages received:\n  {tail}"
        )

    # ---- the client's side -------------------------------------------------------------------

    def open_count(self) -> int:
        """Streams that may be active on the server now (never fewer than there are)."""
        pending = sum(1 for e in self.expects if e.request is not None)
        return len(self.active) + pending

    def answered(self) -> bool:
        return not self.expects

    def busy(self, sid: str) -> bool:
        return sid in self.active or any(e.id == sid and e.request is not None for e in self.expects)

    def start_outcomes(self, sid: str, accepted: str | None) -> frozenset[str]:
        """What a decodable start may get, given what the client knows now (section 5.1)."""
        allowed = {"ack"} if accepted is None else {accepted}
        if self.busy(sid):
            allowed |= {"duplicate_stream", "ack"}
        if self.open_count() >= self.limit:
            allowed.add("too_many_streams")
        if self.valid_starts_sent >= self.burst:
            allowed.add("rate_limited")
        return frozenset(allowed)

    def expect(self, what: str, sid: str | None, allowed: frozenset[str], **more: Any) -> None:
        self.expects.append(Expect(self.sent, what, sid, allowed, **more))

    # ---- the server's side, checked as it arrives -------------------------------------------

    def receive(self, message: dict[str, Any]) -> None:
        self.received.append(message)
        kind = message.get("type")
        if len(self.received) == 1:
            if kind != "ready":
                raise self.fail(f"the first message is not `ready`: {message}")
            return
        if kind not in SERVER_TYPES or kind == "ready":
            raise self.fail(f"unexpected message type: {message}")
        sid = message.get("id")
        if kind == "error":
            self._check_error(message)
        if kind in ("start", "pong") or (kind == "error" and "seq" not in message):
            self._answer(message)
        elif kind == "notice":
            if sid not in self.active:
                raise self.fail(f"notice for a stream that is not running: {message}")
        else:  # chunk, done, terminal error
            instance = self.active.get(sid) if isinstance(sid, str) else None
            if instance is None:
                raise self.fail(f"{kind} for `{sid}`, which has no running stream (after its terminal?)")
            self._stream_event(instance, message)

    def _check_error(self, message: dict[str, Any]) -> None:
        if message.get("code") not in CODES:
            raise self.fail(f"error code not in ErrorCode: {message}")
        if not isinstance(message.get("message"), str) or not message["message"]:
            raise self.fail(f"error without a message: {message}")
        if not isinstance(message.get("retryable"), bool):
            raise self.fail(f"error without retryable: {message}")

    def _answer(self, message: dict[str, Any]) -> None:
        if not self.expects:
            raise self.fail(f"an answer nothing asked for: {message}")
        expect = self.expects.popleft()
        kind = message["type"]
        outcome = {"start": "ack", "pong": "pong"}.get(kind, message.get("code"))
        if outcome not in expect.allowed or (kind != "pong" and message.get("id") != expect.id):
            raise self.fail(
                f"message #{expect.sent} ({expect.what}, id {expect.id!r}) allows "
                f"{sorted(expect.allowed)}, got {message}"
            )
        if kind == "pong":
            self.stats.pongs += 1
            ts = message.get("ts")
            if expect.ts is None:
                if type(ts) is not int or abs(ts - time.time() * 1000) > 60_000:
                    raise self.fail(f"pong for a ping without ts is not the server's clock: {message}")
            elif ts != expect.ts or type(ts) is not type(expect.ts):
                raise self.fail(f"pong ts {ts!r} is not the ping's {expect.ts!r}")
        elif kind == "start":
            assert expect.id is not None
            assert expect.request is not None
            if message.get("seq") != 0:
                raise self.fail(f"ack seq is not 0: {message}")
            if expect.id in self.active:
                raise self.fail(f"ack for `{expect.id}` while its previous stream runs: {message}")
            self.active[expect.id] = Instance(expect.id, expect.request, expect.sent, message)
            self.known.add(expect.id)
            self.stats.accepted += 1
        else:
            code = message["code"]
            self.stats.refusals[code] = self.stats.refusals.get(code, 0) + 1

    def _stream_event(self, instance: Instance, message: dict[str, Any]) -> None:
        seq = message.get("seq")
        if message["type"] == "chunk":
            first = message.get("from_seq", seq)
            content = message.get("content")
            if first != instance.expected_seq or type(seq) is not int or seq < first:
                raise self.fail(
                    f"chunk of `{instance.id}` expected at seq {instance.expected_seq}: {message}"
                )
            if not isinstance(content, str) or not content:
                raise self.fail(f"chunk without text: {message}")
            if "from_seq" in message:
                self.stats.merged_chunks += 1
            instance.text += content
            instance.expected_seq = seq + 1
            return
        if seq != instance.expected_seq:
            raise self.fail(f"terminal of `{instance.id}` expected at seq {instance.expected_seq}: {message}")
        if message["type"] == "done" and message.get("content") != instance.text:
            raise self.fail(f"done.content of `{instance.id}` is not its chunks' text {instance.text!r}")
        instance.terminal = message
        del self.active[instance.id]
        self.ended.append(instance)

    # ---- after the connection ----------------------------------------------------------------

    def verify_streams(self, refs: dict[str, Reference]) -> None:
        """Each ended stream against its request run alone."""
        for instance in self.ended:
            terminal = instance.terminal
            assert terminal is not None
            ref = refs[instance.request]
            where = f"stream `{instance.id}` ({instance.request}, message #{instance.sent})"
            if (instance.ack["provider"], instance.ack["model"]) != (ref.ack["provider"], ref.ack["model"]):
                raise self.fail(f"{where}: ack {instance.ack} differs from the run alone {ref.ack}")
            if terminal["type"] == "done" and terminal["finish_reason"] == "cancelled":
                self.stats.cancelled += 1
                if not any(sent > instance.sent for sent in self.cancels.get(instance.id, [])):
                    raise self.fail(f"{where} ended `cancelled`, but no cancel was sent for it")
                if not ref.text.startswith(instance.text):
                    raise self.fail(
                        f"{where}: cancelled text {instance.text!r} is not a prefix of {ref.text!r}"
                    )
                continue
            if terminal["type"] == "error":
                self.stats.errored += 1
            if instance.text != ref.text or _outcome(terminal) != _outcome(ref.terminal):
                raise self.fail(
                    f"{where} differs from the same request run alone: "
                    f"{_outcome(terminal)} {instance.text!r} vs {_outcome(ref.terminal)} {ref.text!r}"
                )
            if terminal["type"] == "done":
                usage = terminal["usage"]
                if usage["total_tokens"] != usage["prompt_tokens"] + usage["completion_tokens"]:
                    raise self.fail(f"{where}: usage does not add up: {usage}")


def _outcome(terminal: dict[str, Any]) -> tuple[str, str]:
    return terminal["type"], terminal.get("finish_reason") or terminal["code"]


class Client:
    """One simulated client: random operations over one socket, reconnecting after a drop."""

    def __init__(self, index: int, seed: int, gateway: Gateway, refs: dict[str, Reference]) -> None:
        self.index, self.seed, self.gateway, self.refs = index, seed, gateway, refs
        self.rng = random.Random(f"{seed}:{index}")
        streaming = gateway.hub.config.streaming
        self.limit = streaming.max_streams_per_connection
        self.burst = float(getattr(streaming, "starts_burst", float("inf")))
        self.counter = 0
        self.sessions: list[Session] = []
        self.drop_at = self.rng.randrange(5, OPS_PER_CLIENT - 10) if index in DROPPING_CLIENTS else None

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.index}.{self.counter}"

    async def run(self) -> list[Session]:
        ops = 0
        while ops < OPS_PER_CLIENT:
            session = Session(
                f"client {self.index} socket {len(self.sessions)}", self.seed, self.limit, self.burst
            )
            self.sessions.append(session)
            async with connect(self.gateway.ws, max_size=None) as ws:
                reader = asyncio.create_task(self._read(ws, session))
                dropped = False
                while ops < OPS_PER_CLIENT and not dropped:
                    if reader.done():
                        await reader  # raises the failure it found
                        raise session.fail("the server closed the socket")
                    if ops == self.drop_at:
                        if not session.active:  # mid-stream: start a long one, wait for its answer
                            await self._start(ws, session, "script")
                            await self._settle(session, reader, session.answered)
                        dropped = await self._drop(ws, session, reader)
                    else:
                        await self._operation(ws, session)
                    ops += 1
                    await asyncio.sleep(self.rng.expovariate(1 / 0.003))  # interleaving, not timing
                if not dropped:
                    await self._finish(ws, session, reader)
        return self.sessions

    async def _read(self, ws: ClientConnection, session: Session) -> None:
        try:
            async for raw in ws:
                session.receive(json.loads(raw))
        except ConnectionClosed:
            pass

    async def _send(self, ws: ClientConnection, session: Session, frame: str | bytes) -> None:
        session.sent += 1
        await ws.send(frame)

    # ---- operations --------------------------------------------------------------------------

    async def _operation(self, ws: ClientConnection, session: Session) -> None:
        rng = self.rng
        op = rng.choices(
            [
                "start",
                "start-reuse",
                "start-binary",
                "duplicate",
                "bad-start",
                "bad-frame",
                "refused",
                "flood",
                "cancel-running",
                "cancel-ended",
                "cancel-unknown",
                "ping",
            ],
            weights=[30, 8, 4, 6, 5, 4, 5, 1, 10, 4, 3, 6],
        )[0]
        if op == "start-reuse":
            ended = sorted(session.known - set(session.active))
            sid = rng.choice(ended) if ended else self.new_id("s")
            await self._start(ws, session, rng.choice(sorted(CATALOG)), sid)
        elif op in ("start", "start-binary"):
            await self._start(ws, session, rng.choice(sorted(CATALOG)), binary=op == "start-binary")
        elif op == "duplicate":
            running = sorted(session.active) or sorted({e.id for e in session.expects if e.request and e.id})
            await self._start(
                ws, session, rng.choice(sorted(CATALOG)), rng.choice(running) if running else None
            )
        elif op == "bad-start":
            sid = self.new_id("bad")
            session.expect("bad start", sid, frozenset({"bad_message"}))
            await self._send(ws, session, json.dumps({"type": "start", "id": sid, **rng.choice(BAD_STARTS)}))
        elif op == "bad-frame":
            session.expect("bad frame", None, frozenset({"bad_message"}))
            await self._send(ws, session, rng.choice(BAD_FRAMES))
        elif op == "refused":
            body, code = rng.choice(REFUSED)
            sid = self.new_id("ref")
            session.expect(f"start ({code})", sid, session.start_outcomes(sid, code) - {"ack"})
            session.valid_starts_sent += 1
            await self._send(ws, session, json.dumps({"type": "start", "id": sid, **body}))
        elif op == "flood":  # past the per-connection limit: too_many_streams
            while session.open_count() < self.limit + 2:
                await self._start(ws, session, "script")
        elif op == "cancel-running" and session.active:
            await self._cancel(ws, session, rng.choice(sorted(session.active)))
        elif op == "cancel-ended" and session.known - set(session.active):
            await self._cancel(ws, session, rng.choice(sorted(session.known - set(session.active))))
        elif op.startswith("cancel"):
            sid = self.new_id("ghost")
            session.expect("cancel of an unknown id", sid, frozenset({"unknown_stream"}))
            await self._send(ws, session, json.dumps({"type": "cancel", "id": sid}))
        else:
            await self._ping(ws, session, rng.choice(PING_TS))

    async def _start(
        self,
        ws: ClientConnection,
        session: Session,
        request: str,
        sid: str | None = None,
        binary: bool = False,
    ) -> None:
        sid = sid or self.new_id("s")
        session.expect(f"start {request}", sid, session.start_outcomes(sid, None), request=request)
        session.valid_starts_sent += 1
        frame = json.dumps({"type": "start", "id": sid, **CATALOG[request]})
        await self._send(ws, session, frame.encode() if binary else frame)

    async def _cancel(self, ws: ClientConnection, session: Session, sid: str) -> None:
        session.cancels.setdefault(sid, []).append(session.sent)  # no answer: it ran on this socket
        await self._send(ws, session, json.dumps({"type": "cancel", "id": sid}))

    async def _ping(self, ws: ClientConnection, session: Session, ts: Any) -> None:
        session.expect("ping", None, frozenset({"pong"}), ts=ts)
        await self._send(
            ws, session, json.dumps({"type": "ping"} if ts is None else {"type": "ping", "ts": ts})
        )

    async def _drop(self, ws: ClientConnection, session: Session, reader: asyncio.Task[None]) -> bool:
        """Go away mid-stream; True when the socket is gone."""
        how = self.rng.choice(["abort", "close-tcp", "oversized"])
        session.name += f" (dropped: {how})"
        if how == "oversized":
            await ws.send(json.dumps({"type": "start", "id": "big", "prompt": "x" * MAX_MESSAGE_BYTES}))
        elif how == "abort":
            ws.transport.abort()  # no close frame; RST when data is unread
        else:
            ws.transport.close()  # no close frame; FIN
        async with asyncio.timeout(5):
            await reader
        if how == "oversized" and ws.close_code != 1009:
            raise session.fail(f"an oversized frame closed the socket with {ws.close_code}, not 1009")
        session.expects.clear()  # answers to what was in flight are lost with the socket
        session.verify_streams(self.refs)  # the streams that ended before are whole all the same
        return True

    async def _settle(self, session: Session, reader: asyncio.Task[None], done: Callable[[], bool]) -> None:
        """Wait, polling, until ``done()``; fails after 10 s or when the reader stopped."""
        deadline = time.monotonic() + 10
        while not done():
            if reader.done():
                await reader
                raise session.fail("the server closed the socket")
            if time.monotonic() > deadline:
                raise session.fail(
                    f"timed out waiting: running {sorted(session.active)}, "
                    f"unanswered {[(e.sent, e.what, e.id) for e in session.expects]}"
                )
            await asyncio.sleep(0.005)

    async def _finish(self, ws: ClientConnection, session: Session, reader: asyncio.Task[None]) -> None:
        """Every stream ends, every message is answered, a last ping is answered; close."""
        await self._settle(session, reader, lambda: not session.active and not session.expects)
        await self._ping(ws, session, f"final:{session.name}")
        await self._settle(session, reader, lambda: not session.expects)
        await ws.close()
        async with asyncio.timeout(5):
            await reader
        session.verify_streams(self.refs)


def stress_seed() -> int:
    value = os.environ.get(SEED_ENV)
    return int(value) if value else random.SystemRandom().randrange(2**32)


async def run_alone(gateway: Gateway) -> dict[str, Reference]:
    """Each request of the catalog run alone, on a socket of its own."""
    refs = {}
    for name, body in CATALOG.items():
        events = await stream_events(gateway.ws, "ref", **body)
        ack, terminal = events[0], events[-1]
        assert ack["type"] == "start", events
        text = "".join(e["content"] for e in events if e["type"] == "chunk")
        refs[name] = Reference(ack, terminal, text)
    assert _outcome(refs["flaky"].terminal) == ("error", "upstream_rate_limited"), refs["flaky"]
    assert all(_outcome(r.terminal)[0] == "done" for k, r in refs.items() if k != "flaky")
    return refs


async def test_random_clients_keep_every_stream_whole(start_gateway: StartGateway) -> None:
    seed = stress_seed()
    print(f"stress seed {seed} ({SEED_ENV}={seed} replays it)")
    gateway = start_gateway(
        {
            "server": {"max_message_bytes": MAX_MESSAGE_BYTES},
            "providers": {"rulebased": {"chunk_delay_ms": CHUNK_DELAY_MS}},
        },
        providers=[
            ScriptedProvider("scripted", text="ab ", count=40, delay=0.003),
            ScriptedProvider("flaky", text="cd ", count=40, delay=0.003, fail_after=5),
            ScriptedProvider("burst", text="ef ", count=30),  # no pause: chunks merge
        ],
    )
    refs = await run_alone(gateway)
    started = time.monotonic()
    clients = [Client(i, seed, gateway, refs) for i in range(CLIENTS)]
    results = await asyncio.gather(*(client.run() for client in clients))
    sessions = [session for client_sessions in results for session in client_sessions]

    deadline = time.monotonic() + 5
    while gateway.hub.running or gateway.hub.http_streams:
        assert time.monotonic() < deadline, (
            f"[seed {seed}] streams still running 5 s after every client left: "
            f"{sorted(s.id for s in gateway.hub.running)}"
        )
        await asyncio.sleep(0.01)

    total = Stats()
    for session in sessions:
        s = session.stats
        total.accepted += s.accepted
        total.cancelled += s.cancelled
        total.errored += s.errored
        total.pongs += s.pongs
        total.merged_chunks += s.merged_chunks
        for code, n in s.refusals.items():
            total.refusals[code] = total.refusals.get(code, 0) + n
    total.dropped = sum(1 for c in clients if c.drop_at is not None)
    print(f"stress seed {seed}: {time.monotonic() - started:.2f} s, {len(sessions)} sockets, {total}")
    # The mix really attacked: streams ran and were cancelled, refusals and pongs came back.
    assert total.accepted >= CLIENTS * 5, total
    assert total.pongs >= CLIENTS, total
    assert total.cancelled > 0, total
    assert {"bad_message", "unknown_stream"} <= set(total.refusals), total
    assert len(sessions) == CLIENTS + len(DROPPING_CLIENTS)


def test_catalog_requests_decode() -> None:
    """The stress test's valid requests are valid, its invalid ones are not (a guard for edits)."""
    from protocol.codec import BadMessage, decode_client_message

    for body in CATALOG.values():
        decoded = decode_client_message(json.dumps({"type": "start", "id": "x", **body}))
        assert not isinstance(decoded, BadMessage), (body, decoded)
    for body in BAD_STARTS:
        decoded = decode_client_message(json.dumps({"type": "start", "id": "x", **body}))
        assert isinstance(decoded, BadMessage), (body, decoded)
        assert decoded.id == "x", (body, decoded)
    for frame in BAD_FRAMES:
        decoded = decode_client_message(frame)
        assert isinstance(decoded, BadMessage), (frame, decoded)
        assert decoded.id is None, (frame, decoded)
