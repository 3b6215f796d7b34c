"""The three timeouts of a stream (protocol 6): which one comes first, and when.

Pure: the times are arguments, on whatever clock the caller uses, so the stream can keep one
timer and re-arm it lazily, and tests can drive it with a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Deadline = Literal["total", "first_token", "idle"]


@dataclass(frozen=True, slots=True)
class Deadlines:
    total: float  # seconds from acceptance, never paused
    first_token: float  # seconds from acceptance until the first text
    idle: float  # seconds between upstream events after the first text

    def next(
        self,
        accepted_at: float,
        first_token_at: float | None,
        last_event_at: float,
        *,
        waiting_for_reader: bool,
    ) -> tuple[float, Deadline]:
        """When the stream times out if nothing happens meanwhile, and which timeout that is.
        Waiting for a slow reader is not upstream idling: only the total timeout runs then."""
        total = accepted_at + self.total
        if waiting_for_reader:
            return total, "total"
        if first_token_at is None:
            first = accepted_at + self.first_token
            return (first, "first_token") if first < total else (total, "total")
        idle = last_event_at + self.idle
        return (idle, "idle") if idle < total else (total, "total")

    def message(self, which: Deadline) -> str:
        """The timeout error's message."""
        if which == "first_token":
            return f"no first token within {self.first_token:g} s"
        if which == "idle":
            return f"no data from upstream for {self.idle:g} s"
        return f"stream exceeded {self.total:g} s in total"
