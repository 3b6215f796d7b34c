"""What the gateway's protocols offer a transport in the scope: a synchronous write."""

from __future__ import annotations

from typing import Protocol


class DirectWriter(Protocol):
    def can_write_now(self) -> bool:
        """Whether a write would go out now: open, and the transport below its high-water mark."""
        ...

    def write(self, payloads: list[bytes]) -> None:
        """Write the payloads, each one message of the transport; only when ``can_write_now()``."""
        ...
