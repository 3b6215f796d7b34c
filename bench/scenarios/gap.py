"""The ``gap`` scenario: inter-chunk gaps of a few concurrent 20 ms-paced streams."""

from __future__ import annotations

from typing import Any

from bench.clients import StreamResult
from bench.harness import GAP_LIMIT, TRANSPORTS, Bench, Transport, distinct_errors, log, ms, rotate
from bench.scenario import Scenario
from bench.stats import summary
from bench.streams import close_kept, concurrent_round, kept_connections


async def scenario_gap(b: Bench) -> dict[str, Any]:
    """Inter-chunk gaps at 20 ms pacing: a few concurrent streams started 5 ms apart.

    Besides the gaps as the client sees them, the upstream's write times give each arrival's
    delay (upstream write -> client read) and each gap's stretch (client gap - upstream gap),
    which leave out the upstream's own timer jitter (about 1 ms: its loop clock has millisecond
    resolution).
    """
    s = b.settings
    scenario = Scenario(chunks=s.gap_chunks, size=8, pacing_ms=20)
    gaps: dict[str, list[float]] = {t: [] for t in TRANSPORTS}
    delays: dict[str, list[float]] = {t: [] for t in TRANSPORTS}
    stretch: dict[str, list[float]] = {t: [] for t in TRANSPORTS}
    failed: dict[str, list[StreamResult]] = {t: [] for t in TRANSPORTS}
    merged: dict[str, int] = {t: 0 for t in TRANSPORTS}
    arrivals: dict[str, int] = {t: 0 for t in TRANSPORTS}
    for r in range(s.gap_rounds):
        done: list[tuple[Transport, StreamResult]] = []
        # new connections each round: the gateway closes HTTP connections idle for 5 s (uvicorn)
        conns = await kept_connections(b, s.gap_streams)
        for transport in rotate(TRANSPORTS, r):
            streams = await concurrent_round(b, transport, scenario, s.gap_streams, 0.005, conns, keyed=True)
            for stream in streams:
                if not stream.ok:
                    failed[transport].append(stream)
                    continue
                done.append((transport, stream))
                gaps[transport].extend(stream.gaps())
                merged[transport] += sum(1 for c in stream.counts if c > 1)
                arrivals[transport] += len(stream.counts)
        sends = await b.sends()
        for transport, stream in done:
            written = sends.get(str(stream.scenario.key))
            if written is None or len(written) != scenario.chunks + 1:
                continue
            d = stream.delays(written[1:])
            delays[transport].extend(d)
            stretch[transport].extend(d[j] - d[j - 1] for j in range(1, len(d)))
        close_kept(conns)
        log(f"gap: round {r + 1}/{s.gap_rounds}")
    return {
        "scenario": scenario.model,
        "streams": s.gap_streams,
        "rounds": s.gap_rounds,
        "results": {
            t: {
                **summary(gaps[t], 1000),
                "over_40ms": sum(1 for g in gaps[t] if g > GAP_LIMIT),
                "stretch": summary(stretch[t], 1000),
                "delay": summary(delays[t], 1000),
                "merged_arrivals": merged[t],
                "arrivals": arrivals[t],
                "failed": len(failed[t]),
                "errors": distinct_errors(failed[t]),
                "samples_ms": [ms(g) for g in gaps[t]],
                "delay_samples_ms": [ms(g) for g in delays[t]],
            }
            for t in TRANSPORTS
        },
    }
