"""The resume store of one instance: streams by key, in memory."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from server.config import Config
from server.stores.base import Source, stream_bytes


class EndedStream:
    """What an ended stream keeps for its retention window: its events, by id and key. The
    Stream itself (task, provider, request, timers) is let go: thousands of ended streams are
    kept at once, and every object they hold lengthens each full garbage collection."""

    __slots__ = ("id", "key", "log")

    ended = True

    def __init__(self, stream: Source) -> None:
        self.id = stream.id
        self.key = stream.key
        self.log = stream.log

    def cancel(self) -> None:
        """It ended: nothing to stop."""


class MemoryStore:
    """One instance: running streams by key, and ended ones until they expire or are evicted
    (oldest first) to keep ``max_total_bytes``."""

    remote = False  # every call answers at once

    def __init__(self, config: Config) -> None:
        self._resume = config.resume
        self._max_streams = config.streaming.max_concurrent_streams
        self._running: dict[str, Source] = {}
        # key -> (stream, expiry, bytes), in the order they ended: expiries rise along it.
        self._kept: OrderedDict[str, tuple[EndedStream, float, int]] = OrderedDict()
        self._kept_bytes = 0
        # AI SDK chats: chat id -> (stream key, message id), and stream key -> chat id. Only
        # running streams are bound, so the index never outgrows them.
        self._chats: dict[str, tuple[str, str]] = {}
        self._chat_of: dict[str, str] = {}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self._kept.clear()
        self._kept_bytes = 0

    async def admit(self, key: str) -> bool:
        return len(self._running) < self._max_streams

    def started(self, stream: Source) -> None:
        self._running[stream.key] = stream

    def ended(self, stream: Source) -> None:
        self._running.pop(stream.key, None)
        self._unbind(stream.key)
        size = stream_bytes(stream.log)
        if size > self._resume.max_stream_bytes or self._resume.retention_seconds <= 0:
            return
        now = asyncio.get_running_loop().time()
        self._prune(now)
        self._kept[stream.key] = (EndedStream(stream), now + self._resume.retention_seconds, size)
        self._kept_bytes += size
        while self._kept_bytes > self._resume.max_total_bytes:
            self._drop(next(iter(self._kept)))

    async def find(self, key: str) -> Source | None:
        stream = self._running.get(key)
        if stream is not None:
            return stream
        self._prune(asyncio.get_running_loop().time())
        kept = self._kept.get(key)
        return None if kept is None else kept[0]

    async def cancel(self, key: str) -> bool:
        stream = self._running.get(key)
        if stream is None:
            return False
        stream.cancel()
        return True

    async def read_elsewhere(self, key: str) -> bool:
        return False

    async def bind_chat(self, chat_id: str, key: str, message_id: str) -> None:
        self.bind_local(chat_id, key, message_id)

    def bind_local(self, chat_id: str, key: str, message_id: str) -> None:
        stream = self._running.get(key)
        if stream is None or stream.ended:
            return  # it ended already: there is nothing to resume
        earlier = self._chats.get(chat_id)
        if earlier is not None:
            self._chat_of.pop(earlier[0], None)
        self._unbind(key)  # a stream serves one chat
        self._chats[chat_id] = (key, message_id)
        self._chat_of[key] = chat_id

    async def active_chat(self, chat_id: str) -> tuple[Source, str] | None:
        bound = self._chats.get(chat_id)
        if bound is None:
            return None
        stream = self._running.get(bound[0])
        return None if stream is None or stream.ended else (stream, bound[1])

    def _unbind(self, key: str) -> None:
        chat_id = self._chat_of.pop(key, None)
        if chat_id is not None:
            del self._chats[chat_id]

    def _prune(self, now: float) -> None:
        while self._kept and next(iter(self._kept.values()))[1] <= now:
            self._drop(next(iter(self._kept)))

    def _drop(self, key: str) -> None:
        _, _, size = self._kept.pop(key)
        self._kept_bytes -= size
