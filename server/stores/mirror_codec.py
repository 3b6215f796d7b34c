"""The mirror's format: a stream's events as Redis stream entries, written and read back.

Entry ID ``{seq+1}-0`` holds the event of that seq; ``1-{n}`` (n >= 1) the n-th retry/failover
notice (they come between the ack, seq 0, and the first chunk). A chunk is field ``t``: its text
in UTF-8; any other event is field ``j``: its protocol JSON (protocol.codec). Explicit IDs make
writes idempotent (Redis refuses an ID that is not above the last one, so a batch sent again after
a failure adds nothing twice), give the seq back without parsing, and show a gap.

Pure: the store adds and reads the entries. A new kind of event is a new field here.
"""

from __future__ import annotations

import msgspec

from protocol.codec import encode
from protocol.messages import (
    Done,
    Error,
    Notice,
    ReasoningChunk,
    StartAck,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)
from server.streams.eventlog import Entry

TEXT = b"t"
JSON = b"j"

MirrorEntry = tuple[bytes, bytes, bytes]  # (entry ID, field, value): one XADD
Position = tuple[int, Entry | Notice]  # (seq, event) or (n, the n-th notice)

_events = msgspec.json.Decoder(
    StartAck | Notice | ReasoningChunk | ToolCallStart | ToolCallDelta | ToolCallEnd | Done | Error
)


def encode_event(seq: int, event: Entry) -> MirrorEntry:
    entry_id = b"%d-0" % (seq + 1)
    if isinstance(event, str):
        return entry_id, TEXT, event.encode()
    return entry_id, JSON, encode(event)


def encode_notice(n: int, notice: Notice) -> MirrorEntry:
    """The ``n``-th notice of the stream (from 1)."""
    return b"1-%d" % n, JSON, encode(notice)


def decode(entry_id: bytes, fields: dict[bytes, bytes]) -> Position | None:
    """What ``encode_event`` or ``encode_notice`` wrote; None when the entry's kind does not fit
    its ID (a notice at a seq, an ack past seq 0 or missing at it)."""
    ms, _, sub = entry_id.partition(b"-")
    n = int(sub)
    if n:
        notice = _events.decode(fields[JSON])
        return (n, notice) if type(notice) is Notice else None
    seq = int(ms) - 1
    text = fields.get(TEXT)
    if text is not None:
        return seq, text.decode()
    event = _events.decode(fields[JSON])
    if type(event) is Notice or (seq == 0) != (type(event) is StartAck):
        return None
    return seq, event
