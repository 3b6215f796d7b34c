"""The client's own event-loop lag."""

from __future__ import annotations

import asyncio
import contextlib

from bench.clients.record import perf


class LagMonitor:
    """How late a 5 ms ticker of the client's loop runs: if the client is the bottleneck, this grows."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            due = perf() + self.interval
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, perf() - due))

    async def stop(self) -> float:
        """The largest lag seen, in seconds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return max(self.lags, default=0.0)
