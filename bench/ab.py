"""``python -m bench.ab --base DIR``: time to first token of this tree's gateway against another
checkout's, stream by stream.

Whole runs of ``bench.run`` one after the other drift with the machine: on a shared one, the same
tree's TTFT p50 moved by 50-150 µs between runs minutes apart, more than the differences worth
finding. Here both gateways run at once, pinned to the same core, and take turns stream by stream
(the order swapped every round) behind the one fake upstream, so both see the same machine. Each
stream starts ``--settle`` seconds after the one before ended: one gateway's work after a
stream (its logs, the response's end) would otherwise delay the other's next start. The
report is each tree's median, and the median of the per-round differences, for the whole time to
first token and its two legs (request written -> read by the upstream; first chunk written by the
upstream -> read by the client).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import gateway as procs
from bench.clients import Dialect, StreamResult
from bench.harness import DIALECTS, KEYS, Bench, Transport, log
from bench.machine import source_digest
from bench.scenario import Scenario
from bench.settings import FULL
from bench.stats import median
from bench.streams import Sequential

SCENARIO = Scenario(chunks=2, size=8, pacing_ms=2)  # the ttft scenario's
TREES = ("base", "this")
TRANSPORTS: tuple[Transport, ...] = ("ws", "sse")
LEGS = ("ttft", "request", "response")


@dataclass
class Samples:
    """Seconds, by tree, then leg; each round appends one value per tree, so index i pairs up."""

    values: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: {tree: {leg: [] for leg in LEGS} for tree in TREES}
    )


async def compare(base: Path, rounds: int, warmup: int, settle: float) -> dict[str, Any]:
    started = datetime.now(UTC).isoformat(timespec="seconds")
    bench = Bench(FULL, pin=True)
    try:
        await bench.start_upstream()
        procs.GATEWAY_TREE = base
        base_digest = source_digest()
        _, base_port = await bench.start_other_gateway("gateway-base")
        procs.GATEWAY_TREE = procs.REPO
        await bench.start_gateway()
        other = Bench(FULL, pin=True)  # the same processes, seen through the base gateway's port
        other.upstream_port, other.gateway_port = bench.upstream_port, base_port
        clients = {"this": Sequential(bench), "base": Sequential(other)}
        for client in clients.values():
            await client.open()
        samples: dict[str, Samples] = {}
        for r in range(warmup + rounds):
            order = TREES if r % 2 == 0 else TREES[::-1]
            for transport in TRANSPORTS:
                for dialect in DIALECTS:
                    await _round(bench, clients, order, transport, dialect, samples, r >= warmup, settle)
            if r % 100 == 99:
                log(f"ab: round {r + 1}/{warmup + rounds}")
        for client in clients.values():
            client.close()
        return {
            "started": started,
            "base": {"tree": str(base), "source_sha256": base_digest},
            "this": {"tree": str(procs.REPO), "source_sha256": source_digest()},
            "rounds": rounds,
            "settle_s": settle,
            "results": {key: _report(s) for key, s in samples.items()},
        }
    finally:
        bench.stop()


async def _round(
    bench: Bench,
    clients: dict[str, Sequential],
    order: tuple[str, ...],
    transport: Transport,
    dialect: Dialect,
    samples: dict[str, Samples],
    keep: bool,
    settle: float,
) -> None:
    streams: dict[str, StreamResult] = {}
    for tree in order:
        await asyncio.sleep(settle)
        streams[tree] = await clients[tree].run(transport, dialect, SCENARIO.keyed(next(KEYS)))
    sends = await bench.sends()
    if not keep or not all(s.ok and s.arrivals for s in streams.values()):
        return
    rows = samples.setdefault(f"{transport}/{dialect}", Samples()).values
    for tree, stream in streams.items():
        written = sends[str(stream.scenario.key)]
        rows[tree]["ttft"].append(stream.arrivals[0] - stream.t_sent)
        rows[tree]["request"].append(written[0] - stream.t_sent)
        rows[tree]["response"].append(stream.arrivals[0] - written[1])


def _report(samples: Samples) -> dict[str, dict[str, float]]:
    """µs: each tree's median, and the median of this - base over the rounds."""
    out: dict[str, dict[str, float]] = {}
    for leg in LEGS:
        base, this = samples.values["base"][leg], samples.values["this"][leg]
        out[leg] = {
            "base_p50_us": round(median(base) * 1e6, 1),
            "this_p50_us": round(median(this) * 1e6, 1),
            "paired_diff_p50_us": round(median([t - b for t, b in zip(this, base, strict=True)]) * 1e6, 1),
            "n": len(base),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout (e.g. a git worktree)")
    parser.add_argument("--rounds", type=int, default=1000, help="streams per tree and key (4 keys)")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--settle", type=float, default=0.002, help="seconds between streams")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    results = asyncio.run(compare(args.base.resolve(), args.rounds, args.warmup, args.settle))
    results["wall_s"] = round(time.monotonic() - t0, 1)
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = results["started"].replace(":", "").replace("-", "").replace("+0000", "Z")
    path = args.results / f"ab-{stamp}.json"
    path.write_text(json.dumps(results, indent=1))
    base = results["base"]["source_sha256"]
    print(f"\nthis tree against {args.base} ({base}), {args.rounds} rounds, {args.settle} s apart\n")
    print("| key | leg | base p50 (µs) | this p50 (µs) | this - base, median of the rounds' (µs) |")
    print("|---|---|---|---|---|")
    for key, legs in results["results"].items():
        for leg, row in legs.items():
            base, this, diff = row["base_p50_us"], row["this_p50_us"], row["paired_diff_p50_us"]
            print(f"| {key} | {leg} | {base} | {this} | {diff:+} |")
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
