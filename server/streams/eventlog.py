"""A stream's events as one seq-numbered log, read by any number of subscriptions.

The log is the single source every transport encodes from: entry ``seq`` is the event with that
seq (0 = the start ack, then chunk texts, then one terminal ``done``/``error``). A subscription is
a cursor into it; when its reader is slow, the chunks it has not yet taken are merged into one
message, so nothing is buffered per reader and nothing is lost or reordered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import msgspec

from protocol.messages import Chunk, Done, Error, Notice, ServerMessage, StartAck

Terminal = Done | Error
M = TypeVar("M", StartAck, Notice, Done, Error)
Entry = StartAck | str | Terminal  # a str entry is a chunk's text


class EventLog:
    __slots__ = ("_drained", "_subscriptions", "cut", "ended", "entries", "notices", "text_chars")

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        # Retry/failover notices carry no seq; they come only between the ack and the first chunk.
        self.notices: list[Notice] = []
        self.text_chars = 0  # characters of chunk text appended so far
        self.ended = False  # the terminal event is in
        self.cut = False  # ended by `cut_off`: its end is where its events stop being known
        self._subscriptions: list[Subscription] = []
        self._drained = asyncio.Event()

    def append(self, entry: Entry) -> None:
        self.entries.append(entry)
        if type(entry) is str:
            self.text_chars += len(entry)
        elif type(entry) is Done or type(entry) is Error:
            self.ended = True
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
        """Characters of text the slowest subscription has not taken yet."""
        subscriptions = self._subscriptions
        if len(subscriptions) == 1:  # the usual case, on the per-chunk path
            return self.text_chars - subscriptions[0].taken_chars
        if not subscriptions:
            return 0
        return self.text_chars - min(s.taken_chars for s in subscriptions)

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
        self.taken_chars = sum(len(e) for e in self._log.entries[:seq] if type(e) is str)
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
        if self.taken_chars != self._log.text_chars:
            self.taken_chars = self._log.text_chars
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

    def _chunk(self, entries: list[Entry], first: int, last: int) -> Chunk:
        if first == last:
            return Chunk(id=self.stream_id, seq=last, content=entries[last])  # type: ignore[arg-type]
        content = "".join(entries[first : last + 1])  # type: ignore[arg-type]
        return Chunk(id=self.stream_id, seq=last, content=content, from_seq=first)
