"""One stream's record (``StreamResult``) and a batch of streams awaited together."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

import msgspec

from bench.scenario import TOOL_NAME, Scenario, escaped, fragments, full_text

Dialect = Literal["openai", "anthropic"]
perf = time.perf_counter

# ---- one stream's record -----------------------------------------------------------------------


class StreamResult:
    """What one stream delivered, when, and whether it was complete and in order."""

    __slots__ = (
        "_full",
        "_fullb",
        "arrivals",
        "counts",
        "ended",
        "error",
        "next_seq",
        "on_end",
        "scenario",
        "sid",
        "size",
        "t_end",
        "t_sent",
    )

    def __init__(self, sid: str, scenario: Scenario) -> None:
        self.sid = sid
        self.scenario = scenario
        self.size = scenario.size
        self._full = full_text(scenario)
        self._fullb = b""
        self.t_sent = 0.0
        self.t_end = 0.0
        self.arrivals: list[float] = []  # perf_counter() of each read that carried content
        self.counts: list[int] = []  # upstream chunks carried by that arrival
        self.next_seq = 1  # the seq of the next expected chunk (chunk i has seq i + 1)
        self.error: str | None = None
        self.ended = False
        self.on_end: Callable[[StreamResult], None] | None = None

    # -- feeding

    def chunk(self, t: float, first: int, last: int, content: str) -> None:
        """A gateway chunk covering ``first..last`` (``from_seq``..``seq``)."""
        if self.ended:
            return
        if first != self.next_seq or last < first:
            self.fail(t, f"expected seq {self.next_seq}, got {first}..{last}")
            return
        size = self.size
        if content != self._full[(first - 1) * size : last * size]:
            self.fail(t, f"wrong text in seq {first}..{last}")
            return
        self.next_seq = last + 1
        arrivals = self.arrivals
        if arrivals and arrivals[-1] == t:  # same read: one arrival
            self.counts[-1] += last - first + 1
        else:
            arrivals.append(t)
            self.counts.append(last - first + 1)

    def text(self, t: float, content: bytes) -> None:
        """A direct upstream content chunk (one upstream chunk)."""
        if self.ended:
            return
        seq = self.next_seq
        if not self._fullb:
            self._fullb = self._full.encode()
        size = self.size
        if content != self._fullb[(seq - 1) * size : seq * size]:
            self.fail(t, f"wrong text in chunk {seq - 1}: {content[:32]!r}")
            return
        self.next_seq = seq + 1
        arrivals = self.arrivals
        if arrivals and arrivals[-1] == t:
            self.counts[-1] += 1
        else:
            arrivals.append(t)
            self.counts.append(1)

    def finish(self, t: float, terminal_seq: int | None = None) -> None:
        if self.ended:
            return
        n = self.scenario.chunks
        if self.next_seq != n + 1:
            self.fail(t, f"ended after {self.next_seq - 1} of {n} chunks")
            return
        if terminal_seq is not None and terminal_seq != n + 1:
            self.fail(t, f"terminal seq {terminal_seq}, expected {n + 1}")
            return
        self._end(t)

    def fail(self, t: float, reason: str) -> None:
        if self.ended:
            return
        self.error = reason
        self._end(t)

    def _end(self, t: float) -> None:
        self.ended = True
        self.t_end = t
        if self.on_end is not None:
            self.on_end(self)

    # -- results

    @property
    def ok(self) -> bool:
        return self.ended and self.error is None

    @property
    def delivered(self) -> int:
        """Upstream chunks delivered in order."""
        return self.next_seq - 1

    @property
    def ttft(self) -> float | None:
        return self.arrivals[0] - self.t_sent if self.arrivals else None

    def gaps(self) -> list[float]:
        a = self.arrivals
        return [a[i] - a[i - 1] for i in range(1, len(a))]

    def first_indices(self) -> list[int]:
        """The index (0-based) of the first upstream chunk each arrival carried."""
        out, index = [], 0
        for count in self.counts:
            out.append(index)
            index += count
        return out

    def delays(self, written: list[float]) -> list[float]:
        """Per arrival: read time - when the upstream wrote the arrival's first chunk.

        ``written[i]`` is the upstream's write time of chunk ``i`` (same clock: CLOCK_MONOTONIC).
        """
        return [t - written[i] for t, i in zip(self.arrivals, self.first_indices(), strict=True)]


class PartsResult(StreamResult):
    """A tool-call or reasoning stream's record, checked like a text stream's: every part's text,
    its order and its count. The seqs are the gateway's (see ``bench.scenario``): for a tool call,
    ``tool_call_start`` is seq 1, fragment ``i`` seq ``i + 2``, ``tool_call_end`` ``n + 2`` and
    ``done`` ``n + 3``; reasoning delta ``i`` is seq ``i + 1`` and ``done`` ``n + 1``. An arrival
    is a read that carried a part: the call's start counts as an arrival of no fragment, so
    ``ttft`` is the time to the first part."""

    __slots__ = ("_bounds", "_wire", "call_ended", "first_seq", "terminal", "tool")

    def __init__(self, sid: str, scenario: Scenario) -> None:
        super().__init__(sid, scenario)
        self.tool = scenario.kind == "tool"
        self._full, self._wire, self._bounds = _expected(scenario.keyed(0))  # per scenario, not stream
        self.first_seq = 2 if self.tool else 1
        self.terminal = self.first_seq + scenario.chunks + self.tool
        self.call_ended = False

    def chunk(self, t: float, first: int, last: int, content: str) -> None:
        self.fail(t, f"text chunk {first}..{last} in a {self.scenario.kind} stream")

    def reasoning(self, t: float, first: int, last: int, content: str) -> None:
        """A gateway ``reasoning`` message covering ``first..last``."""
        if self.tool:
            self.fail(t, "reasoning in a tool-call stream")
        else:
            self.parts(t, first, last, content)

    def call_start(self, t: float, seq: int = 1, index: int = 0, name: str = TOOL_NAME) -> None:
        if not self.tool or seq != self.next_seq or seq != 1 or index != 0 or name != TOOL_NAME:
            self.fail(t, f"unexpected tool_call_start: seq {seq}, index {index}, name {name!r}")
            return
        self.next_seq = 2
        self._arrive(t, 0)

    def arguments(self, t: float, first: int, last: int, content: str) -> None:
        """A gateway ``tool_call_delta`` covering ``first..last``."""
        if self.tool:
            self.parts(t, first, last, content)
        else:
            self.fail(t, "tool_call_delta in a reasoning stream")

    def parts(self, t: float, first: int, last: int, content: str) -> None:
        """Fragments (or reasoning deltas) ``first..last`` by seq, merged into one message."""
        if self.ended:
            return
        if first != self.next_seq or last < first or last - self.first_seq >= self.scenario.chunks:
            self.fail(t, f"expected seq {self.next_seq}, got {first}..{last}")
            return
        bounds = self._bounds
        if content != self._full[bounds[first - self.first_seq] : bounds[last - self.first_seq + 1]]:
            self.fail(t, f"wrong text in seq {first}..{last}")
            return
        self.next_seq = last + 1
        self._arrive(t, last - first + 1)

    def direct(self, t: float, content: bytes) -> None:
        """One fragment (or reasoning delta) read from the upstream, as its JSON string carries it."""
        if self.ended:
            return
        index = self.next_seq - self.first_seq
        if index < 0 or index >= len(self._wire) or content != self._wire[index]:
            self.fail(t, f"wrong part {index}: {content[:32]!r}")
            return
        self.next_seq += 1
        self._arrive(t, 1)

    def call_end(self, t: float, seq: int, arguments: bytes, error: str | None) -> None:
        """The gateway's ``tool_call_end``: after every fragment, the whole arguments parsed."""
        if not self.tool or seq != self.next_seq or self.delivered != self.scenario.chunks:
            self.fail(t, f"tool_call_end at seq {seq} after {self.delivered} fragments")
        elif error is not None or _json_value(arguments) != _json_value(self._full):
            self.fail(t, f"tool_call_end arguments {arguments[:32]!r}, error {error!r}")
        else:
            self.call_ended = True

    def _arrive(self, t: float, count: int) -> None:
        arrivals = self.arrivals
        if arrivals and arrivals[-1] == t:  # same read: one arrival
            self.counts[-1] += count
        else:
            arrivals.append(t)
            self.counts.append(count)

    def finish(self, t: float, terminal_seq: int | None = None) -> None:
        """``terminal_seq``: the gateway's ``done`` (a direct stream has none)."""
        if self.ended:
            return
        n = self.scenario.chunks
        if self.delivered != n:
            self.fail(t, f"ended after {self.delivered} of {n} parts")
        elif terminal_seq is not None and (terminal_seq != self.terminal or self.tool != self.call_ended):
            self.fail(t, f"terminal seq {terminal_seq}, expected {self.terminal} after the call's end")
        else:
            self._end(t)

    @property
    def delivered(self) -> int:
        """Fragments (or reasoning deltas) delivered in order."""
        return max(0, self.next_seq - self.first_seq)


def _json_value(text: bytes | str) -> object:
    """The value of a JSON text; None when it is not one (never the value of valid arguments)."""
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return None


@lru_cache(maxsize=16)
def _expected(scenario: Scenario) -> tuple[str, tuple[bytes, ...], tuple[int, ...]]:
    """The parts' whole text; each part as the upstream's JSON string carries it; and where part
    ``i`` stands in the text: ``[bounds[i], bounds[i + 1])``."""
    texts = fragments(scenario)
    bounds = [0]
    for text in texts:
        bounds.append(bounds[-1] + len(text))
    return "".join(texts), tuple(escaped(text).encode() for text in texts), tuple(bounds)


def new_result(sid: str, scenario: Scenario) -> StreamResult:
    """The record a stream of ``scenario`` needs."""
    return StreamResult(sid, scenario) if scenario.kind == "text" else PartsResult(sid, scenario)


class Batch:
    """Resolves when every stream added to it has ended."""

    def __init__(self) -> None:
        self.left = 0
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.streams: list[StreamResult] = []

    def add(self, stream: StreamResult) -> StreamResult:
        self.left += 1
        self.streams.append(stream)
        stream.on_end = self._ended
        return stream

    def _ended(self, _: StreamResult) -> None:
        self.left -= 1
        if self.left == 0 and not self.future.done():
            self.future.set_result(None)

    async def wait(self, timeout: float) -> bool:
        """True when all ended in time; the others are failed with a timeout."""
        if self.left == 0:
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self.future), timeout)
            return True
        except TimeoutError:
            t = perf()
            for stream in self.streams:
                stream.fail(t, "timed out")
            return False
