"""The ``ttft`` scenario: time to first token at concurrency 1."""

from __future__ import annotations

from typing import Any

from bench.clients import StreamResult, perf
from bench.harness import DIALECTS, KEYS, TRANSPORTS, Bench, cpu_delta, distinct_errors, log, ms, rotate
from bench.scenario import Scenario
from bench.stats import summary
from bench.streams import Sequential


async def scenario_ttft(b: Bench) -> dict[str, Any]:
    """Time to first token at concurrency 1: request written -> first content read.

    The upstream's record splits it in two legs: request written -> request read by the
    upstream, and first chunk written by the upstream -> read by the client.
    """
    s = b.settings
    scenario = Scenario(chunks=2, size=8, pacing_ms=2)
    return await first_arrival(b, scenario, s.ttft_samples, s.ttft_samples_anthropic, s.ttft_rounds, "ttft")


async def first_arrival(
    b: Bench, scenario: Scenario, samples_openai: int, samples_anthropic: int, rounds: int, name: str
) -> dict[str, Any]:
    """Request written -> first content (or part) read, at concurrency 1, per transport and
    format: ``samples_*`` streams each of ``scenario`` after the warm-up, in ``rounds`` rounds
    whose order of transports rotates."""
    s = b.settings
    seq = Sequential(b, parts=scenario.kind != "text")
    await seq.open()
    for _ in range(s.warmup):
        for transport in TRANSPORTS:
            for dialect in DIALECTS:
                await seq.run(transport, dialect, scenario)
    samples: dict[str, list[float]] = {}
    legs: dict[str, tuple[list[float], list[float]]] = {}
    failed: dict[str, list[StreamResult]] = {}
    cpu0, t0 = b.cpu(), perf()
    per_round = max(1, samples_openai // rounds)
    per_round_a = max(1, samples_anthropic // rounds)
    for r in range(rounds):
        measured: list[tuple[str, StreamResult]] = []
        for transport in rotate(TRANSPORTS, r):
            for dialect, count in zip(DIALECTS, (per_round, per_round_a), strict=True):
                key = f"{transport}/{dialect}"
                for _ in range(count):
                    stream = await seq.run(transport, dialect, scenario.keyed(next(KEYS)))
                    if stream.ok and stream.ttft is not None:
                        samples.setdefault(key, []).append(stream.ttft)
                        measured.append((key, stream))
                    else:
                        failed.setdefault(key, []).append(stream)
        sends = await b.sends()
        for key, stream in measured:
            written = sends.get(str(stream.scenario.key))
            if written and len(written) >= 2:
                request, response = legs.setdefault(key, ([], []))
                request.append(written[0] - stream.t_sent)
                response.append(stream.arrivals[0] - written[1])
        log(f"{name}: round {r + 1}/{rounds}")
    cpu = cpu_delta(cpu0, b.cpu(), perf() - t0)
    seq.close()
    out: dict[str, Any] = {
        "scenario": scenario.model,
        "concurrency": 1,
        "rounds": rounds,
        "cpu": cpu,
        "results": {},
    }
    for key, values in samples.items():
        request, response = legs.get(key, ([], []))
        out["results"][key] = {
            **summary(values, 1000),
            "request_leg": summary(request, 1000),
            "response_leg": summary(response, 1000),
            "failed": len(failed.get(key, [])),
            "errors": distinct_errors(failed.get(key, [])),
            "samples_ms": [ms(v) for v in values],
        }
    for key, streams in failed.items():
        if key not in out["results"]:
            out["results"][key] = {"n": 0, "failed": len(streams), "errors": distinct_errors(streams)}
    return out
