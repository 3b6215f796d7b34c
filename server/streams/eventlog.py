"""A stream's events as one seq-numbered log, read by any number of subscriptions.

The log is the single source every transport encodes from: entry ``seq`` is the event with that
seq (0 = the start ack, then chunk texts and the v1.1 parts, then one terminal ``done``/``error``).
A subscription is a cursor into it; when its reader is slow, the adjacent deltas of one kind it has
not yet taken (chunk texts, reasoning, one call's argument fragments) are merged into one message,
so nothing is buffered per reader and nothing is lost or reordered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import msgspec

from protocol.messages import (
    Chunk,
    Done,
    Error,
    Notice,
    Part,
    ReasoningChunk,
    ServerMessage,
    StartAck,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)

Terminal = Done | Error
M = TypeVar("M", StartAck, Notice, Done, Error, ReasoningChunk, ToolCallStart, ToolCallDelta, ToolCallEnd)
Entry = StartAck | str | Part | Terminal  # a str entry is a chunk's text


def content_size(entry: Entry) -> int:
    """The characters an entry adds to what readers must take: text, reasoning, argument text."""
    if type(entry) is str:
        return len(entry)
    if type(entry) is ReasoningChunk:
        return len(entry.content)
    if type(entry) is ToolCallDelta:
        return len(entry.arguments_delta)
    return 0


class EventLog:
    __slots__ = ("_drained", "_subscriptions", "content_chars", "cut", "ended", "entries", "notices")

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        # Retry/failover notices carry no seq; they come only between the ack and the first chunk.
        self.notices: list[Notice] = []
        self.content_chars = 0  # characters of content appended so far (content_size)
        self.ended = False  # the terminal event is in
        self.cut = False  # ended by `cut_off`: its end is where its events stop being known
        self._subscriptions: list[Subscription] = []
        self._drained = asyncio.Event()

    def append(self, entry: Entry) -> None:
        self.entries.append(entry)
        if type(entry) is str:  # the text path first: it is the hot one
            self.content_chars += len(entry)
        elif type(entry) is Done or type(entry) is Error:
            self.ended = True
        else:
            self.content_chars += content_size(entry)
        for subscription in self._subscriptions:
            subscription.notify()

    def notice(self, notice: Notice) -> None:
        assert len(self.entries) == 1, "notices come after the ack and before any other event"
        self.notices.append(notice)
        for subscription in self._subscriptions:
            subscription.notify()

    def cut_off(self, error: Error) -> None:
        """End it with ``error`` where its events stop being known (the mirror of a stream whose
        owner died): a reader already past that point, which had later events from elsewhere,
        gets ``error`` at its own next seq instead of nothing."""
        self.cut = True
        self.append(error)

    def text(self) -> str:
        """All chunk text so far."""
        return "".join(e for e in self.entries if type(e) is str)

    def subscribe(
        self, stream_id: str, notify: Callable[[Subscription], None], after_seq: int = -1
    ) -> Subscription:
        """A reader of every event after ``after_seq`` (a resume), or of all of them."""
        subscription = Subscription(self, stream_id, notify)
        if after_seq >= 0:
            subscription.skip_to(after_seq + 1)
        self._subscriptions.append(subscription)
        # A resume after the ack, during the retries, has only the notices to take.
        if (
            len(self.entries) > subscription.next_seq
            or subscription.notices_taken < len(self.notices)
            or self.cut
        ):
            subscription.notify()
        return subscription

    @property
    def has_readers(self) -> bool:
        return bool(self._subscriptions)

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
        self._drained.set()

    def backlog(self) -> int:
        """Characters of content the slowest subscription has not taken yet."""
        subscriptions = self._subscriptions
        if len(subscriptions) == 1:  # the usual case, on the per-chunk path
            return self.content_chars - subscriptions[0].taken_chars
        if not subscriptions:
            return 0
        return self.content_chars - min(s.taken_chars for s in subscriptions)

    async def wait_backlog_below(self, limit: int) -> None:
        """Pause the producer (and so the upstream read) until slow readers catch up."""
        while self.backlog() > limit:
            self._drained.clear()
            await self._drained.wait()

    def _taken(self) -> None:
        self._drained.set()


class Subscription:
    """A reader's cursor into an EventLog, delivering under the reader's own stream id."""

    __slots__ = ("_log", "_notify", "next_seq", "notices_taken", "stream_id", "taken_chars", "terminal_taken")

    def __init__(self, log: EventLog, stream_id: str, notify: Callable[[Subscription], None]) -> None:
        self._log = log
        self._notify = notify
        self.stream_id = stream_id
        self.next_seq = 0
        self.taken_chars = 0
        self.notices_taken = 0
        self.terminal_taken = False

    @property
    def finished(self) -> bool:
        """True once the terminal event has been taken (or resumed past, unless the log is cut)."""
        log = self._log
        return log.ended and self.next_seq >= len(log.entries) and (self.terminal_taken or not log.cut)

    def skip_to(self, seq: int) -> None:
        """Start at ``seq``: the reader has every event before it (and the notices, after the first chunk)."""
        self.next_seq = seq
        self.taken_chars = sum(content_size(e) for e in self._log.entries[:seq])
        if seq > 1:
            self.notices_taken = len(self._log.notices)

    def notify(self) -> None:
        self._notify(self)

    def take(self) -> list[ServerMessage]:
        """Every event not taken yet, consecutive chunks merged into one message."""
        entries = self._log.entries
        end = len(entries)
        out: list[ServerMessage] = []
        seq = self.next_seq
        if self.notices_taken < len(self._log.notices) and end:
            if seq == 0:  # the ack goes first
                out.append(self._own(entries[0]))  # type: ignore[type-var,arg-type]  # the ack
                seq = 1
            out.extend(self._notices())
        while seq < end:
            entry = entries[seq]
            if type(entry) is str:
                first = seq
                while seq + 1 < end and type(entries[seq + 1]) is str:
                    seq += 1
                out.append(self._chunk(entries, first, seq))
            elif type(entry) is ReasoningChunk or type(entry) is ToolCallDelta:
                first = seq
                while seq + 1 < end and _joins(entry, entries[seq + 1]):
                    seq += 1
                out.append(self._merged(entries, first, seq) if seq > first else self._own(entry))  # type: ignore[type-var]
            else:
                out.append(self._own(entry))  # type: ignore[type-var,arg-type]  # not a str
            seq += 1
        if seq > self.next_seq:  # a resume may start beyond what exists yet
            self.next_seq = seq
            self.terminal_taken = self._log.ended
        elif self._log.cut and not self.terminal_taken:  # resumed past the cut: the end, at our seq
            terminal = entries[-1]
            assert type(terminal) is Error  # what cut_off ended it with
            out.append(msgspec.structs.replace(self._own(terminal), seq=seq))
            self.terminal_taken = True
        # Even with nothing out: a reader resumed beyond the end has the text it skipped.
        if self.taken_chars != self._log.content_chars:
            self.taken_chars = self._log.content_chars
            self._log._taken()
        return out

    def _notices(self) -> list[Notice]:
        notices = self._log.notices[self.notices_taken :]
        self.notices_taken += len(notices)
        return [self._own(n) for n in notices]

    def _own(self, message: M) -> M:
        """``message`` under this reader's id (a resume may name the stream anew)."""
        if message.id == self.stream_id:
            return message
        return msgspec.structs.replace(message, id=self.stream_id)

    def _merged(self, entries: list[Entry], first: int, last: int) -> ReasoningChunk | ToolCallDelta:
        """Adjacent reasoning deltas, or fragments of one call's arguments, as one message."""
        head = entries[first]
        if type(head) is ReasoningChunk:
            text = "".join(e.content for e in entries[first : last + 1])  # type: ignore[union-attr]
            return ReasoningChunk(id=self.stream_id, seq=last, content=text, from_seq=first)
        assert type(head) is ToolCallDelta
        text = "".join(e.arguments_delta for e in entries[first : last + 1])  # type: ignore[union-attr]
        return ToolCallDelta(
            id=self.stream_id, seq=last, call_id=head.call_id, arguments_delta=text, from_seq=first
        )

    def _chunk(self, entries: list[Entry], first: int, last: int) -> Chunk:
        if first == last:
            return Chunk(id=self.stream_id, seq=last, content=entries[last])  # type: ignore[arg-type]
        content = "".join(entries[first : last + 1])  # type: ignore[arg-type]
        return Chunk(id=self.stream_id, seq=last, content=content, from_seq=first)


def _joins(entry: ReasoningChunk | ToolCallDelta, following: Entry) -> bool:
    """Whether ``following`` merges with ``entry``: the same kind, and for arguments the same call."""
    if type(following) is not type(entry):
        return False
    return type(entry) is ReasoningChunk or entry.call_id == following.call_id  # type: ignore[union-attr]
