"""The bounds the gateway's server protocols (server.fastpath) put on a connection before the app
sees a request, and the report of each connection they close for one.

These closes happen below ASGI, where there is no request to log or count. Each is counted in
``tokenwire_connections_refused_total{reason}`` and logged as a warning on ``tokenwire.edge``:
at most one line per reason every LOG_EVERY_SECONDS, with the number left unlogged since, so an
attack that makes thousands of them a second does not flood the log.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from server.config import ServerConfig

log = logging.getLogger("tokenwire.edge")
LOG_EVERY_SECONDS = 10.0

# reason (the metric's label) -> what the log line says of it
REASONS = {
    "head_too_large": "request head or one of its lines too large, answered 431 (414 for a URL)",
    "head_timeout": "no complete request head within head_timeout_seconds",
    "too_many_connections": "max_open_connections are open, answered 503",
    "control_frames": "WebSocket ping or pong frames past their budget, closed with 1008",
}


class EdgeGuard:
    """One server's edge bounds (``config``) and its report of the connections closed for them."""

    def __init__(self, config: ServerConfig, count: Callable[[str], None] = lambda _: None) -> None:
        self.config = config
        self._count = count
        self._logged_at: dict[str, float] = {}
        self._unlogged: Counter[str] = Counter()

    def closed(self, reason: str, client: tuple[str, int] | None) -> None:
        """Count and (rate-limited) log a connection closed for ``reason``, one of REASONS."""
        self._count(reason)
        now = time.monotonic()
        if now - self._logged_at.get(reason, -LOG_EVERY_SECONDS) < LOG_EVERY_SECONDS:
            self._unlogged[reason] += 1
            return
        self._logged_at[reason] = now
        unlogged = self._unlogged.pop(reason, 0)
        since = f" ({unlogged} more since the last such line)" if unlogged else ""
        log.warning("closed a connection from %s: %s%s", client[0] if client else "?", REASONS[reason], since)
