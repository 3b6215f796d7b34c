"""What waits to go out on one connection, for every transport: the one write path.

Streams append to their logs and notify the outbox; replies to the client are queued beside
them, in one FIFO, so a reply never overtakes the events its client's earlier messages caused.
The outbox flushes once per event-loop iteration: it takes from each ready subscription whatever
has accumulated (a slow reader's chunks merged) and writes everything of the iteration at once.

Two ways out:
- the direct writer (server.fastpath), a synchronous write to the transport, when the server
  offers one and its buffer is below the high-water mark;
- otherwise the pump, a coroutine that writes through ASGI sends and waits for each to drain,
  so a slow reader never makes the server buffer a message per chunk.
The pump is started in a task of its own only when needed (most WebSockets never need it), or
run by the owner in its own task (an event stream's response).

A client whose write has blocked for ``slow_client_seconds`` has stopped reading: the outbox
gives up on it (``Phase.DROPPED``), cancels the blocked write and tells the owner.

What the connection's own messages (replies, keep-alives) hold while they wait is bounded, in
count and bytes (``Bound``): past it the outbox is ``full`` and its owner stops reading the
client until there is ``room()``, so a client that sends but does not read cannot grow the
gateway's memory. (The streams' events wait in their logs, bounded by the streams' buffers.)
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from protocol.messages import ServerMessage
from server.config import Config
from server.fastpath.writer import DirectWriter
from server.streams.eventlog import Subscription

log = logging.getLogger("tokenwire.outbox")


@dataclass(frozen=True, slots=True)
class Bound:
    messages: int  # replies waiting or being written
    bytes: int  # their encoded size


# For an owner that reads nothing from its client, so has no replies to bound (an event stream's
# response queues a keep-alive comment per interval at most).
UNBOUNDED = Bound(messages=2**31, bytes=2**62)


def outbox_bound(config: Config) -> Bound:
    return Bound(config.server.max_queued_messages, config.server.max_queued_bytes)


class Phase(enum.Enum):
    OPEN = "open"  # taking messages
    CLOSING = "closing"  # writes what is queued, then ends the connection's output
    CLOSED = "closed"  # ended, or abandoned: the client went away
    DROPPED = "dropped"  # given up on a client that stopped reading


class Owner(Protocol):
    """The transport an outbox writes for."""

    async def send_payloads(self, payloads: list[bytes]) -> None:
        """Write through ASGI (it may block on a slow client)."""
        ...

    async def end_output(self) -> None:
        """Everything queued is out: the close frame, the response's last body."""
        ...

    def finished(self, subscription: Subscription) -> None:
        """The subscription has handed over its terminal event."""
        ...

    def stalled(self) -> None:
        """The client was given up on: it stopped reading."""
        ...


class Outbox:
    """One connection's output, for ``owner``. With ``owner_pumps`` the owner awaits ``pump()``."""

    __slots__ = (
        "_bound",
        "_direct",
        "_encode",
        "_events",
        "_flush_scheduled",
        "_loop",
        "_owner",
        "_owner_pumps",
        "_pump_task",
        "_pump_writing",
        "_queue",
        "_queued",
        "_room",
        "_slow_client_seconds",
        "_task",
        "_wake",
        "_watchdog",
        "_writing_since",
        "held",
        "phase",
        "writes",
    )

    def __init__(
        self,
        owner: Owner,
        *,
        encode: Callable[[ServerMessage], bytes],
        direct: DirectWriter | None,
        slow_client_seconds: float,
        bound: Bound = UNBOUNDED,
        owner_pumps: bool = False,
        events: Callable[[Subscription], Iterable[bytes]] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._owner: Owner | None = owner  # let go of once abandoned: it holds this outbox
        self._encode = encode
        # A frame format of another shape than one message per event (the AI SDK's, with a
        # per-reader encoder and sequence) takes each subscription's events itself.
        self._events = events
        self._direct = direct
        self._slow_client_seconds = slow_client_seconds
        self._owner_pumps = owner_pumps  # the owner runs ``pump()``: never start a task for it
        self._queue: deque[bytes | Subscription] = deque()  # encoded replies and ready subscriptions
        self._queued: set[Subscription] = set()  # subscriptions already in the queue
        self._flush_scheduled = False
        self._wake = asyncio.Event()  # wakes the pump
        self._pump_writing = False  # the pump is between taking payloads and writing them
        self._pump_task: asyncio.Task[object] | None = None  # the task running the pump
        self._task: asyncio.Task[None] | None = None  # the pump's own task, when the outbox made it
        self._watchdog: asyncio.TimerHandle | None = None
        self._writing_since: float | None = None  # when the pump's write in progress began
        self.phase = Phase.OPEN
        self.writes = 0  # writes so far, either way
        self._bound = bound
        self.held = [0, 0]  # replies queued or being written: [count, bytes]
        self._room = asyncio.Event()  # set while not full
        self._room.set()

    # ---- in -----------------------------------------------------------------------------------

    def put(self, payload: bytes) -> None:
        """An encoded message of the connection's own (a reply, a keep-alive)."""
        if self._ended():
            return  # nothing more goes out: holding it would only fill the bound for good
        self._queue.append(payload)
        self.held[0] += 1
        self.held[1] += len(payload)
        if self.full:
            self._room.clear()
        self._schedule_flush()

    @property
    def full(self) -> bool:
        """The connection's own messages waiting are past the bound: read nothing more from the
        client until there is room."""
        held, bound = self.held, self._bound
        return (held[0] > bound.messages or held[1] > bound.bytes) and not self._ended()

    async def room(self) -> None:
        """Until the messages waiting are within the bound again (or the output ended)."""
        await self._room.wait()

    def _written(self, replies: list[int]) -> None:
        """Replies taken by ``_take`` are out: their place under the bound is free."""
        self.held[0] -= replies[0]
        self.held[1] -= replies[1]
        if not self.full:
            self._room.set()

    def notify(self, subscription: Subscription) -> None:
        """A subscription's callback: it has events to take."""
        if subscription not in self._queued and not self._ended():
            self._queued.add(subscription)
            self._queue.append(subscription)
            self._schedule_flush()

    def close(self) -> None:
        """Write what is queued, then end the output."""
        if self.phase is Phase.OPEN:
            self.phase = Phase.CLOSING
            self._wake_pump()

    def abandon(self) -> None:
        """The client is gone: write nothing more, and let go of the owner and the subscriptions
        (each pair would otherwise be a reference cycle, waiting for a full collection)."""
        if self.phase in (Phase.OPEN, Phase.CLOSING):
            self.phase = Phase.CLOSED
        if self._task is not None:
            self._task.cancel()
        self._wake.set()
        self._stop_watchdog()
        self._owner = self._direct = self._events = None
        self._queue.clear()
        self._queued.clear()
        self._room.set()  # nothing more is written: nobody waits for room

    # ---- the direct path, once per loop iteration ---------------------------------------------

    def _schedule_flush(self) -> None:
        """Flush once the event loop has run what is ready now: every stream whose upstream data
        arrived together then goes out in one write."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._pump_writing or not self._queue:
            return  # the pump takes what is queued, in order
        direct = self._direct
        if direct is None or self.phase is not Phase.OPEN or not direct.can_write_now():
            self._wake_pump()
            return
        replies = [0, 0]
        payloads = self._take(replies)
        if payloads:
            direct.write(payloads)
            self.writes += 1
        if replies[0]:
            self._written(replies)

    def _take(self, replies: list[int]) -> list[bytes]:
        """Every payload queued, in order; finished subscriptions are reported on the way, and
        the replies among them counted into ``replies`` ([count, bytes])."""
        queue, encode, owner, events, payloads = self._queue, self._encode, self._owner, self._events, []
        while queue:
            item = queue.popleft()
            if type(item) is bytes:
                payloads.append(item)
                replies[0] += 1
                replies[1] += len(item)
                continue
            subscription: Subscription = item  # type: ignore[assignment]  # not bytes
            self._queued.discard(subscription)  # new events from here on queue it again, at the back
            if events is None:
                payloads.extend(map(encode, subscription.take()))
            else:
                payloads.extend(events(subscription))
            if subscription.finished and owner is not None:
                owner.finished(subscription)
        return payloads

    # ---- the pump: ASGI sends -----------------------------------------------------------------

    def _ended(self) -> bool:
        return self.phase is Phase.CLOSED or self.phase is Phase.DROPPED

    def _wake_pump(self) -> None:
        if self._ended():
            return
        if self._task is None and self._pump_task is None and not self._owner_pumps:
            self._task = self._loop.create_task(self.pump(), name="outbox-pump")
        self._wake.set()

    async def pump(self) -> None:
        """Write through ASGI until the output ends, is abandoned, or the client is dropped."""
        self._pump_task = asyncio.current_task()
        self._watchdog = self._loop.call_later(self._slow_client_seconds / 4, self._watch_writes)
        try:
            await self._pump()
        except asyncio.CancelledError:
            if self.phase is not Phase.DROPPED:
                raise
            self._pump_task.uncancel()  # type: ignore[union-attr]  # ours: the blocked write is abandoned
        except (OSError, RuntimeError) as exc:  # uvicorn's ClientDisconnected is an OSError
            log.debug("write failed: %r", exc)  # the owner sees the disconnect
            self.phase = Phase.CLOSED
            self._room.set()  # an owner waiting for room goes back to reading: the disconnect
        finally:
            self._stop_watchdog()
            self._pump_task = None

    async def _pump(self) -> None:
        while True:
            if self._ended():
                return
            if self._queue:
                if not self._flush_scheduled:
                    await self._write_queued()
                    continue
                # A flush is due this iteration: it writes directly when it can (the cheaper
                # way), else wakes the pump. (While CLOSING, it always wakes the pump.)
            elif self.phase is Phase.CLOSING:
                self.phase = Phase.CLOSED
                assert self._owner is not None  # let go of only once abandoned (CLOSED)
                await self._owner.end_output()
                return
            self._wake.clear()
            await self._wake.wait()

    async def _write_queued(self) -> None:
        self._pump_writing = True  # a flush in the meantime would overtake these payloads
        try:
            replies = [0, 0]
            payloads = self._take(replies)
            if payloads:
                assert self._owner is not None  # let go of only once abandoned (CLOSED)
                self._writing_since = self._loop.time()  # a write that blocks: the client is not reading
                await self._owner.send_payloads(payloads)
                self._writing_since = None
                self.writes += 1
            if replies[0]:
                self._written(replies)
        finally:
            self._pump_writing = False

    # ---- clients that stop reading ------------------------------------------------------------

    def _watch_writes(self) -> None:
        since = self._writing_since
        if since is not None and self._loop.time() - since >= self._slow_client_seconds:
            self._drop()
        else:
            self._watchdog = self._loop.call_later(self._slow_client_seconds / 4, self._watch_writes)

    def _drop(self) -> None:
        self.phase = Phase.DROPPED
        self._watchdog = None
        self._room.set()
        if self._pump_task is not None:
            self._pump_task.cancel()  # the write cannot finish: cancelling it is the only way out
        if self._owner is not None:
            self._owner.stalled()

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
