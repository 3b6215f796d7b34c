"""Resumable streams: where a stream's events are kept so a client can come back for them.

A ``Source`` is what a transport reads: a ``Stream`` running here, or (with the Redis store) a
stream running on another instance, mirrored into a local EventLog. A ``ResumeStore`` keeps every
stream findable by its key while it runs and for ``retention_seconds`` after it ended, admits
streams against the gateway-wide limit, and routes a cancel to the stream's owner.

The memory store (server.stores.memory) serves one instance; server.stores.redis shares
streams between instances.
"""

from __future__ import annotations

from typing import Protocol

from server.streams.eventlog import EventLog

ENTRY_OVERHEAD = 64  # bytes counted per event besides its text, for the retention bounds


class Source(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def log(self) -> EventLog: ...

    @property
    def ended(self) -> bool: ...

    def cancel(self) -> None: ...


class ResumeStore(Protocol):
    # Whether its calls may wait on another server (Redis): a transport then keeps them off the
    # path that reads its client's other messages.
    remote: bool

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def admit(self, key: str) -> bool:
        """Take a slot of ``max_concurrent_streams`` for a new stream (False: the gateway is full)."""
        ...

    def started(self, stream: Source) -> None:
        """A stream runs here (its log is appended to in this process): make it findable, and
        mirror its events for a shared store."""
        ...

    def ended(self, stream: Source) -> None:
        """A stream of ours ended: free its slot; keep its events for the retention window."""
        ...

    async def find(self, key: str) -> Source | None:
        """The stream of ``key``, running or within its retention window, or None."""
        ...

    async def cancel(self, key: str) -> bool:
        """Cancel the stream of ``key`` wherever it runs; False when no such stream runs."""
        ...

    async def read_elsewhere(self, key: str) -> bool:
        """Whether a client reads the stream through another instance."""
        ...

    async def bind_chat(self, chat_id: str, key: str, message_id: str) -> None:
        """The AI SDK chat ``chat_id`` now streams the stream of ``key``, answering as message
        ``message_id`` (a newer stream of the chat replaces an older binding)."""
        ...

    async def active_chat(self, chat_id: str) -> tuple[Source, str] | None:
        """The chat's stream and message id while that stream runs, else None."""
        ...


def stream_bytes(log: EventLog) -> int:
    return log.content_chars + ENTRY_OVERHEAD * len(log.entries)
