"""EventLog and Subscription without a socket: events in, the messages a reader takes out."""

from __future__ import annotations

import asyncio

import pytest

from protocol.errors import ErrorCode
from protocol.messages import (
    Chunk,
    Error,
    Notice,
    Part,
    ReasoningChunk,
    ServerMessage,
    StartAck,
    ToolCallDelta,
    ToolCallStart,
)
from server.streams.eventlog import EventLog, Subscription


def ack(sid: str = "s") -> StartAck:
    return StartAck(id=sid, seq=0, provider="p", model="m", key="k")


ACK = ack()


def notice(attempt: int, sid: str = "s") -> Notice:
    return Notice(
        id=sid,
        code="retrying",
        message=f"p failed; try {attempt}",
        provider="p",
        model="m",
        attempt=attempt,
        reason=ErrorCode.UPSTREAM_UNAVAILABLE,
        delay_s=0.25,
    )


def error(seq: int, sid: str = "s") -> Error:
    return Error(id=sid, seq=seq, code=ErrorCode.UPSTREAM_PROTOCOL, message="cut", retryable=True)


def chunk(seq: int, content: str, from_seq: int | None = None, sid: str = "s") -> Chunk:
    return Chunk(id=sid, seq=seq, content=content, from_seq=from_seq)


def started(*texts: str, notices: int = 0) -> EventLog:
    """A log with the ack, ``notices`` notices, then one chunk per text."""
    log = EventLog()
    log.append(ACK)
    for n in range(notices):
        log.notice(notice(n + 2))
    for text in texts:
        log.append(text)
    return log


class Reader:
    """A subscription and the times it was told there is something to take."""

    def __init__(self, log: EventLog, sid: str = "s", after_seq: int = -1) -> None:
        self.notified = 0
        self.subscription = log.subscribe(sid, self._notify, after_seq)

    def _notify(self, _: Subscription) -> None:
        self.notified += 1

    def take(self) -> list[ServerMessage]:
        return self.subscription.take()


# ---- chunks and merging ------------------------------------------------------------------------


def test_a_reader_that_keeps_up_gets_each_chunk_on_its_own() -> None:
    log = EventLog()
    reader = Reader(log)
    log.append(ACK)
    assert reader.take() == [ACK]
    log.append("Hel")
    assert reader.take() == [chunk(1, "Hel")]
    log.append("lo")
    assert reader.take() == [chunk(2, "lo")]
    log.append(error(3))
    assert reader.take() == [error(3)]
    assert reader.notified == 4
    assert reader.subscription.finished


def test_a_slow_readers_waiting_chunks_are_merged_into_one() -> None:
    log = started("a", "b", "c")
    reader = Reader(log)
    assert reader.take() == [ACK, chunk(3, "abc", from_seq=1)]
    log.append("d")
    log.append("e")
    assert reader.take() == [chunk(5, "de", from_seq=4)]
    assert reader.take() == []


def test_merging_stops_at_the_terminal_event() -> None:
    log = started("a", "b")
    log.append(error(3))
    assert Reader(log).take() == [ACK, chunk(2, "ab", from_seq=1), error(3)]


def test_merged_chunks_cover_every_seq_once_and_the_whole_text() -> None:
    log = started()
    reader = Reader(log)
    taken = reader.take()
    for i, text in enumerate(["The ", "sky ", "is ", "blue ", "because ", "of ", "Rayleigh."]):
        log.append(text)
        if i % 3 == 2:  # the reader comes by only now and then
            taken += reader.take()
    log.append(error(8))
    taken += reader.take()
    chunks = [m for m in taken if type(m) is Chunk]
    covered = [s for c in chunks for s in range(c.from_seq or c.seq, c.seq + 1)]
    assert covered == list(range(1, 8))
    assert "".join(c.content for c in chunks) == log.text() == "The sky is blue because of Rayleigh."


# ---- resume starting points ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after_seq", "expected"),
    [
        (-1, [ACK, chunk(3, "abc", from_seq=1), error(4)]),
        (0, [chunk(3, "abc", from_seq=1), error(4)]),
        (1, [chunk(3, "bc", from_seq=2), error(4)]),
        (2, [chunk(3, "c"), error(4)]),
        (3, [error(4)]),
    ],
)
def test_a_resume_replays_every_event_after_its_seq(after_seq: int, expected: list[ServerMessage]) -> None:
    log = started("a", "b", "c")
    log.append(error(4))
    reader = Reader(log, after_seq=after_seq)
    assert reader.notified == 1  # told at once: there is a replay to take
    assert reader.take() == expected
    assert reader.subscription.finished


def test_a_resume_at_the_end_of_an_ended_stream_has_nothing_to_take() -> None:
    log = started("a")
    log.append(error(2))
    reader = Reader(log, after_seq=2)
    assert reader.notified == 0
    assert reader.take() == []
    assert reader.subscription.finished


def test_a_resume_at_the_end_of_a_running_stream_goes_on_live() -> None:
    log = started("a", "b")
    reader = Reader(log, after_seq=2)
    assert (reader.notified, reader.take()) == (0, [])
    log.append("c")
    assert reader.take() == [chunk(3, "c")]


def test_a_resume_beyond_the_end_starts_when_the_log_gets_there() -> None:
    log = started("a")
    reader = Reader(log, after_seq=3)
    assert reader.notified == 0
    log.append("b")
    log.append("c")
    assert reader.take() == []  # seq 2 and 3: the reader has them
    log.append("d")
    log.append(error(5))
    assert reader.take() == [chunk(4, "d"), error(5)]


# ---- notices -------------------------------------------------------------------------------------


def test_notices_come_between_the_ack_and_the_first_chunk() -> None:
    log = EventLog()
    reader = Reader(log)
    log.append(ACK)
    log.notice(notice(2))
    assert reader.take() == [ACK, notice(2)]
    log.notice(notice(3))
    log.append("a")
    assert reader.take() == [notice(3), chunk(1, "a")]
    assert reader.notified == 4


def test_a_late_reader_gets_the_notices_after_the_ack() -> None:
    log = started("a", "b", notices=2)
    assert Reader(log).take() == [ACK, notice(2), notice(3), chunk(2, "ab", from_seq=1)]


def test_a_late_reader_during_the_retries_gets_the_ack_and_the_notices() -> None:
    log = started(notices=1)
    reader = Reader(log)
    assert reader.notified == 1
    assert reader.take() == [ACK, notice(2)]


def test_a_resume_after_the_ack_replays_the_notices_before_the_first_chunk() -> None:
    log = started("a", "b", notices=2)
    assert Reader(log, after_seq=0).take() == [notice(2), notice(3), chunk(2, "ab", from_seq=1)]


def test_a_resume_after_the_ack_during_the_retries_is_told_of_the_notices() -> None:
    log = started(notices=2)
    reader = Reader(log, after_seq=0)
    assert reader.notified == 1
    assert reader.take() == [notice(2), notice(3)]


def test_a_resume_after_a_chunk_gets_no_notices() -> None:
    log = started("a", "b", notices=2)
    assert Reader(log, after_seq=1).take() == [chunk(2, "b")]


# ---- backlog and backpressure --------------------------------------------------------------------


def test_the_backlog_is_the_text_the_slowest_reader_has_not_taken() -> None:
    log = EventLog()
    assert log.backlog() == 0
    fast, slow = Reader(log), Reader(log)
    log.append(ACK)
    log.append("abc")
    fast.take()
    log.append("de")
    assert log.backlog() == 5
    slow.take()
    assert log.backlog() == 2  # now the other one is the slowest
    fast.take()
    assert log.backlog() == 0


def test_a_resume_counts_the_text_before_its_seq_as_taken() -> None:
    log = started("ab", "cd", "ef")
    Reader(log, after_seq=2)
    assert log.backlog() == len("ef")


async def test_a_reader_resumed_beyond_the_end_does_not_hold_the_stream_back() -> None:
    log = started("a")
    reader = Reader(log, after_seq=3)
    log.append("bb")
    log.append("cc")  # seq 2 and 3: the reader said it has them
    waiting = asyncio.create_task(log.wait_backlog_below(3))
    await asyncio.sleep(0)
    assert reader.take() == []
    await asyncio.wait_for(waiting, 1)
    assert log.backlog() == 0


async def test_waiting_for_the_backlog_ends_when_the_reader_takes() -> None:
    log = started()
    reader = Reader(log)
    log.append("x" * 10)
    waiting = asyncio.create_task(log.wait_backlog_below(5))
    await asyncio.sleep(0)
    assert not waiting.done()
    reader.take()
    await asyncio.wait_for(waiting, 1)
    assert log.backlog() == 0


async def test_waiting_for_the_backlog_goes_on_while_it_is_still_too_long() -> None:
    log = started()
    reader = Reader(log)
    log.append("x" * 10)
    waiting = asyncio.create_task(log.wait_backlog_below(5))
    await asyncio.sleep(0)
    reader.take()
    log.append("y" * 10)  # more text before the waiter runs: still behind
    await asyncio.sleep(0)
    assert not waiting.done()
    reader.take()
    await asyncio.wait_for(waiting, 1)


async def test_waiting_for_the_backlog_ends_when_the_slow_reader_leaves() -> None:
    log = started()
    reader = Reader(log)
    log.append("x" * 10)
    waiting = asyncio.create_task(log.wait_backlog_below(5))
    await asyncio.sleep(0)
    log.unsubscribe(reader.subscription)
    await asyncio.wait_for(waiting, 1)


async def test_no_wait_when_the_backlog_is_below_the_limit() -> None:
    log = started("x" * 5)
    Reader(log)
    await asyncio.wait_for(log.wait_backlog_below(5), 1)


# ---- ids and unsubscribing -----------------------------------------------------------------------


def test_a_reader_under_a_new_id_gets_every_message_under_that_id() -> None:
    log = started("a", "b", notices=1)
    log.append(error(3))
    taken = Reader(log, sid="resumed").take()
    assert taken == [
        ack("resumed"),
        notice(2, "resumed"),
        chunk(2, "ab", from_seq=1, sid="resumed"),
        error(3, "resumed"),
    ]


def test_a_reader_under_the_streams_id_gets_the_logged_messages_themselves() -> None:
    log = started(notices=1)
    ack, first_notice = Reader(log).take()
    assert ack is log.entries[0]
    assert first_notice is log.notices[0]


def test_an_unsubscribed_reader_is_no_longer_told_nor_waited_for() -> None:
    log = started()
    reader, other = Reader(log), Reader(log)
    log.unsubscribe(reader.subscription)
    log.append("abc")
    assert (reader.notified, other.notified) == (1, 2)
    assert log.backlog() == 3  # only the other reader counts
    log.unsubscribe(other.subscription)
    log.unsubscribe(other.subscription)  # twice: harmless
    assert not log.has_readers
    assert log.backlog() == 0


def test_adjacent_parts_of_one_kind_merge_for_a_slow_reader() -> None:
    log = EventLog()
    log.append(ACK)
    parts: list[Part] = [
        ReasoningChunk(id="s", seq=1, content="a"),
        ReasoningChunk(id="s", seq=2, content="b"),
        ToolCallStart(id="s", seq=3, call_id="c1", name="f", index=0),
        ToolCallDelta(id="s", seq=4, call_id="c1", arguments_delta='{"x"'),
        ToolCallDelta(id="s", seq=5, call_id="c1", arguments_delta=": 1}"),
        ToolCallStart(id="s", seq=6, call_id="c2", name="f", index=1),
        ToolCallDelta(id="s", seq=7, call_id="c2", arguments_delta="{}"),
        ToolCallDelta(id="s", seq=8, call_id="c1", arguments_delta=""),
    ]
    for part in parts:
        log.append(part)
    log.append("text")
    reader = log.subscribe("r", lambda _: None)
    assert reader.take() == [
        StartAck(id="r", seq=0, provider="p", model="m", key="k"),
        ReasoningChunk(id="r", seq=2, content="ab", from_seq=1),
        ToolCallStart(id="r", seq=3, call_id="c1", name="f", index=0),
        ToolCallDelta(id="r", seq=5, call_id="c1", arguments_delta='{"x": 1}', from_seq=4),
        ToolCallStart(id="r", seq=6, call_id="c2", name="f", index=1),
        ToolCallDelta(id="r", seq=7, call_id="c2", arguments_delta="{}"),  # another call's: not joined
        ToolCallDelta(id="r", seq=8, call_id="c1", arguments_delta=""),
        Chunk(id="r", seq=9, content="text"),
    ]
    assert log.content_chars == len("ab") + len('{"x": 1}{}') + len("text")
    assert log.backlog() == 0


def test_a_resume_inside_the_parts_counts_what_it_skipped() -> None:
    log = EventLog()
    log.append(ACK)
    log.append(ReasoningChunk(id="s", seq=1, content="abc"))
    log.append(ToolCallDelta(id="s", seq=2, call_id="c", arguments_delta="{}"))
    reader = log.subscribe("s", lambda _: None, after_seq=1)
    assert log.backlog() == 2
    assert reader.take() == [ToolCallDelta(id="s", seq=2, call_id="c", arguments_delta="{}")]
    assert log.backlog() == 0
