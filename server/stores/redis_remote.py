"""A stream running on another instance, read from its Redis mirror (server.stores.mirror_codec)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from protocol.errors import ErrorCode
from protocol.messages import Error, Notice, StartAck
from server.stores.mirror_codec import decode
from server.streams.eventlog import EventLog

LOST_MESSAGE = "the instance running the stream is gone; start it again"
MISSING_MESSAGE = "events of the stream are missing from the store; start it again"


class RemoteStream:
    """A stream running on another instance, read from its Redis mirror (a ``Source``)."""

    def __init__(
        self, cancel: Callable[[str], None], key: str, owner: str, events: EventLog, last_id: bytes
    ) -> None:
        ack = events.entries[0]
        assert type(ack) is StartAck
        self._cancel = cancel  # asks the owner, through the store
        self._key = key
        self._id = ack.id
        self._log = events
        self.owner = owner
        self.provider = ack.provider
        self.last_id = last_id  # the last Redis entry taken
        now = asyncio.get_running_loop().time()
        self.heard = now  # when events last came
        self.wanted = now  # when a reader last had it

    @property
    def id(self) -> str:
        return self._id

    @property
    def key(self) -> str:
        return self._key

    @property
    def log(self) -> EventLog:
        return self._log

    @property
    def ended(self) -> bool:
        return self._log.ended

    def cancel(self) -> None:
        """Ask the owner to cancel it (asynchronously: its ``done`` comes back through the mirror)."""
        if not self.ended:
            self._cancel(self._key)

    def take(self, items: list[Any]) -> bool:
        """Append the mirror's entries ``items``; False (and the stream lost) when some are missing."""
        for entry_id, fields in items:
            if not apply_entry(self._log, entry_id, fields):
                self.lose(MISSING_MESSAGE)
                return False
            self.last_id = entry_id
        return True

    def lose(self, message: str = LOST_MESSAGE) -> None:
        """End it here with a retryable ``stream_lost``: its owner or its mirror is gone."""
        if not self.ended:
            self._log.cut_off(
                Error(
                    id=self._id,
                    seq=len(self._log.entries),
                    code=ErrorCode.STREAM_LOST,
                    message=message,
                    retryable=True,
                    provider=self.provider,
                )
            )


def apply_entry(events: EventLog, entry_id: bytes, fields: dict[bytes, bytes]) -> bool:
    """Append one mirror entry to ``events``; False when it does not follow (events are missing)."""
    if events.ended:
        return False
    decoded = decode(entry_id, fields)
    if decoded is None:
        return False
    position, event = decoded
    if isinstance(event, Notice):
        if len(events.entries) != 1:
            return False
        events.notice(event)
        return True
    if position != len(events.entries):
        return False
    events.append(event)
    return True
