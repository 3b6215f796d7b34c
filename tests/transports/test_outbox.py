"""The outbox without sockets: a fake direct writer and a fake owner stand in for the transport."""

from __future__ import annotations

import asyncio

from protocol.codec import encode
from protocol.messages import Done, Metrics, Pong, StartAck, Usage
from server.streams.eventlog import EventLog, Subscription
from server.transports.outbox import Bound, Outbox, Phase


class Direct:
    """A direct writer whose buffer can be made full."""

    def __init__(self) -> None:
        self.open = True
        self.writes: list[list[bytes]] = []

    def can_write_now(self) -> bool:
        return self.open

    def write(self, payloads: list[bytes]) -> None:
        self.writes.append(payloads)


class Owner:
    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []
        self.ended = False
        self.finished_ids: list[str] = []
        self.stalls = 0
        self.blocked = asyncio.Event()  # set: ASGI sends go through
        self.blocked.set()

    async def send_payloads(self, payloads: list[bytes]) -> None:
        await self.blocked.wait()
        self.sent.append(payloads)

    async def end_output(self) -> None:
        self.ended = True

    def finished(self, subscription: Subscription) -> None:
        self.finished_ids.append(subscription.stream_id)

    def stalled(self) -> None:
        self.stalls += 1


def _outbox(owner: Owner, direct: Direct | None, slow: float = 30.0) -> Outbox:
    return Outbox(owner, encode=encode, direct=direct, slow_client_seconds=slow)


def _log() -> EventLog:
    log = EventLog()
    log.append(StartAck(id="a", seq=0, provider="p", model="m", key="k"))
    return log


def _done(seq: int) -> Done:
    usage = Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2, estimated=False)
    metrics = Metrics("p", "m", ttft_ms=None, duration_ms=1, tokens_per_second=None, estimated_cost_usd=None)
    return Done(id="a", seq=seq, finish_reason="stop", content="hello", usage=usage, metrics=metrics)


async def _iteration() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_one_direct_write_per_loop_iteration_in_fifo_order() -> None:
    owner, direct = Owner(), Direct()
    outbox = _outbox(owner, direct)
    log = _log()
    outbox.put(encode(Pong(ts=1)))
    log.subscribe("a", outbox.notify)
    log.append("hel")
    log.append("lo")
    outbox.put(encode(Pong(ts=2)))
    await _iteration()
    [payloads] = direct.writes
    assert (
        [p[:20] for p in payloads]
        == [
            encode(Pong(ts=1))[:20],
            encode(log.entries[0])[:20],  # type: ignore[arg-type]  # the ack
            b'{"type":"chunk","id"',  # "hel" and "lo" merged into one
            encode(Pong(ts=2))[:20],
        ]
    )
    assert b'"content":"hello"' in payloads[2]
    assert b'"from_seq":1' in payloads[2]
    assert owner.sent == []


async def test_a_full_transport_moves_the_writes_to_the_pump_and_back() -> None:
    owner, direct = Owner(), Direct()
    outbox = _outbox(owner, direct)
    direct.open = False
    outbox.put(b"one")
    await _iteration()
    assert owner.sent == [[b"one"]]  # through ASGI, from the pump's own task
    direct.open = True
    outbox.put(b"two")
    await _iteration()
    assert direct.writes == [[b"two"]]
    outbox.abandon()


async def test_nothing_overtakes_a_write_in_progress() -> None:
    owner, direct = Owner(), Direct()
    outbox = _outbox(owner, direct)
    direct.open = False
    owner.blocked.clear()
    outbox.put(b"first")
    await _iteration()  # the pump is blocked writing "first"
    direct.open = True
    outbox.put(b"second")
    await _iteration()
    assert direct.writes == []  # "second" waits for the pump, behind "first"
    owner.blocked.set()
    await _iteration()
    await _iteration()
    assert owner.sent == [[b"first"], [b"second"]]
    outbox.abandon()


async def test_close_ends_the_output_after_the_terminal_event() -> None:
    owner, direct = Owner(), Direct()
    outbox = _outbox(owner, direct)
    log = _log()
    log.subscribe("a", outbox.notify)
    log.append("hi")
    log.append(_done(2))
    await _iteration()
    assert owner.finished_ids == ["a"]
    outbox.close()
    await _iteration()
    await _iteration()
    assert owner.ended
    assert outbox.phase is Phase.CLOSED
    assert b'"type":"done"' in direct.writes[0][-1]


async def test_a_client_that_stops_reading_is_dropped() -> None:
    owner, direct = Owner(), Direct()
    outbox = _outbox(owner, direct, slow=0.2)
    direct.open = False
    owner.blocked.clear()  # the write never finishes
    outbox.put(b"stuck")
    await asyncio.sleep(0.5)
    assert outbox.phase is Phase.DROPPED
    assert owner.stalls == 1
    assert owner.sent == []


async def test_a_pump_run_by_its_owner_is_not_started_twice() -> None:
    owner = Owner()
    outbox = Outbox(owner, encode=encode, direct=None, slow_client_seconds=30, owner_pumps=True)
    outbox.put(b"early")  # before the owner runs the pump: it waits for it
    await _iteration()
    assert owner.sent == []
    pump = asyncio.create_task(outbox.pump())
    await _iteration()
    assert owner.sent == [[b"early"]]
    outbox.close()
    await asyncio.wait_for(pump, 1)
    assert owner.ended


async def test_what_an_owners_pump_finds_queued_goes_out_directly_when_it_can() -> None:
    """An event stream starts its pump with the start ack already queued: the flush due this
    iteration writes it directly (cheaper than an ASGI send), and the pump waits; when the
    transport cannot take it, the flush hands it to the pump."""
    for can_write, direct_writes, sent in ((True, [[b"ack"]], []), (False, [], [[b"ack"]])):
        owner, direct = Owner(), Direct()
        direct.open = can_write
        outbox = Outbox(owner, encode=encode, direct=direct, slow_client_seconds=30, owner_pumps=True)

        async def respond(outbox: Outbox = outbox) -> None:  # as EventStreamResponse does
            outbox.put(b"ack")
            await outbox.pump()  # in the same step: the flush is still due

        pump = asyncio.create_task(respond())
        for _ in range(3):  # the flush, then the pump it woke
            await _iteration()
        assert (direct.writes, owner.sent) == (direct_writes, sent)
        outbox.close()
        await asyncio.wait_for(pump, 1)
        assert owner.ended


async def test_abandon_lets_go_of_the_owner_and_writes_nothing_more() -> None:
    owner, direct = Owner(), Direct()
    outbox = _outbox(owner, direct)
    log = _log()
    log.subscribe("a", outbox.notify)
    outbox.abandon()
    log.append("late")
    await _iteration()
    assert direct.writes == []
    assert outbox.phase is Phase.CLOSED
    assert outbox._owner is None


async def test_replies_past_the_bound_make_it_full_until_they_are_written() -> None:
    owner, direct = Owner(), Direct()
    outbox = Outbox(owner, encode=encode, direct=direct, slow_client_seconds=30, bound=Bound(2, 1000))
    direct.open = False
    owner.blocked.clear()  # the client reads nothing
    for n in range(3):
        outbox.put(b"reply %d" % n)
    assert outbox.full
    assert outbox.held == [3, 21]
    room = asyncio.create_task(outbox.room())
    await _iteration()
    assert not room.done()
    owner.blocked.set()  # the client reads: the replies go out, and with them the bound frees
    await asyncio.wait_for(room, 1)
    assert not outbox.full
    assert outbox.held == [0, 0]
    outbox.abandon()


async def test_bytes_alone_can_fill_the_bound() -> None:
    outbox = Outbox(Owner(), encode=encode, direct=None, slow_client_seconds=30, bound=Bound(100, 10))
    outbox.put(b"x" * 11)
    assert outbox.full
    outbox.abandon()


async def test_after_the_output_ended_nothing_is_held_and_nobody_waits_for_room() -> None:
    owner = Owner()
    outbox = Outbox(owner, encode=encode, direct=None, slow_client_seconds=30, bound=Bound(1, 1000))
    owner.blocked.clear()
    outbox.put(b"one")
    outbox.put(b"two")
    assert outbox.full
    outbox.abandon()  # the client went away while its replies waited
    await asyncio.wait_for(outbox.room(), 1)
    outbox.put(b"late")  # a message read before the disconnect is answered into the void
    assert not outbox.full
