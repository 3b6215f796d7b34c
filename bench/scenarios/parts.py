"""The ``tool_call`` and ``reasoning`` scenarios: streams of v1.1 parts instead of text.

Each measures, against direct in the same run, what ``ttft`` and ``throughput`` measure for text:
the time to the first part (``tool_call_start`` / the first ``reasoning`` message through the
gateway; the call's first event / the first reasoning delta read straight from the upstream) and
the relay throughput of argument fragments / reasoning deltas with no pacing.
"""

from __future__ import annotations

from typing import Any

from bench.harness import Bench
from bench.scenario import Kind, Scenario
from bench.scenarios.throughput import relay_throughput
from bench.scenarios.ttft import first_arrival


async def scenario_tool_call(b: Bench) -> dict[str, Any]:
    """One tool call per stream, its arguments in fragments."""
    return await _parts(b, "tool", "tool_call")


async def scenario_reasoning(b: Bench) -> dict[str, Any]:
    """Reasoning deltas, no answer text."""
    return await _parts(b, "reasoning", "reasoning")


async def _parts(b: Bench, kind: Kind, name: str) -> dict[str, Any]:
    s = b.settings
    first = Scenario(chunks=2, size=8, pacing_ms=2, kind=kind)
    relay = Scenario(chunks=s.thr_chunks, size=8, pacing_ms=0, kind=kind)
    return {
        "first_part": await first_arrival(
            b, first, s.parts_samples, s.parts_samples_anthropic, s.parts_rounds, f"{name} first part"
        ),
        "throughput": await relay_throughput(b, relay, f"{name} throughput"),
    }
