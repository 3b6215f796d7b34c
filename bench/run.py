"""The benchmark: ``python -m bench.run [--quick] [--only SCENARIO ...] [--no-pin]``.

Starts the fake upstream and the gateway (each its own process), measures the same streams read
directly from the upstream and through the gateway over WebSocket and SSE, interleaved round by
round, prints a table, and writes ``bench/results/<UTC timestamp>.json``, ``latest.json`` and
``chart.png``. The method and what limits each figure: docs/benchmarks.md.

Exit status: 0 when the harness ran (whether or not a target was met), 1 when it could not.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import gateway as procs
from bench.clients import perf
from bench.harness import Bench, log
from bench.machine import cpu_accounts, cpu_report, machine, source_digest
from bench.report import build_table, format_table
from bench.scenarios.ai_sdk import scenario_ai_sdk
from bench.scenarios.gap import scenario_gap
from bench.scenarios.memory import scenario_memory
from bench.scenarios.parts import scenario_reasoning, scenario_tool_call
from bench.scenarios.resume import scenario_resume
from bench.scenarios.soak import scenario_soak
from bench.scenarios.stall import scenario_stall
from bench.scenarios.throughput import scenario_throughput
from bench.scenarios.ttft import scenario_ttft
from bench.settings import FULL, QUICK, Settings

RESULTS = Path(__file__).resolve().parent / "results"
# On the main gateway (``ai_sdk`` reads POST /v1/ui/chat from it):
GATEWAY_SCENARIOS = ("ttft", "gap", "throughput", "stall", "tool_call", "reasoning", "ai_sdk")


# ---- main -------------------------------------------------------------------------------------------

# In the order they run. The parts' scenarios run after stall, on its gateway: the text scenarios
# run as they always did.
RUNNERS: dict[str, Callable[[Bench], Awaitable[dict[str, Any]]]] = {
    "ttft": scenario_ttft,
    "gap": scenario_gap,
    "throughput": scenario_throughput,
    "stall": scenario_stall,
    "tool_call": scenario_tool_call,
    "reasoning": scenario_reasoning,
    "memory": scenario_memory,
    "soak": scenario_soak,
    "resume": scenario_resume,
    "ai_sdk": scenario_ai_sdk,
}
SCENARIOS = tuple(RUNNERS)  # in the order they run


async def run(
    settings: Settings, only: Sequence[str], pin: bool, quick: bool, gc_probe: bool = False
) -> dict[str, Any]:
    bench = Bench(settings, pin, gc_probe)
    started = datetime.now(UTC)
    out: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "machine": machine(),
        "gateway_source_sha256": source_digest(),
        "pinning": {
            "enabled": bench.pinned,
            "gateway_cpus": sorted(bench.gateway_cpus or []),
            "client_and_upstream_cpus": sorted(bench.load_cpus or []),
        },
        "settings": asdict(settings),
        "gc_probe": gc_probe,
        "results": {},
    }
    gc.collect()
    gc.freeze()  # the client's own collections would show up as gaps
    cpu_start = cpu_accounts()
    try:
        await bench.start_upstream()
        for name in only:
            if name in GATEWAY_SCENARIOS and bench.gateway is None:
                await bench.start_gateway()
            log(f"{name} ...")
            t0 = perf()
            out["results"][name] = await RUNNERS[name](bench)
            out["results"][name]["wall_s"] = round(perf() - t0, 1)
            gc.collect()
    finally:
        bench.stop()
    out["cpu_accounting"] = cpu_report(cpu_start, cpu_accounts())
    out["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    out["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    out["workdir"] = str(bench.workdir)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds per scenario")
    parser.add_argument(
        "--only",
        action="append",
        choices=SCENARIOS,
        metavar="SCENARIO",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin the gateway to a CPU of its own")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write JSON and the chart")
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument("--stall-steps", help="comma-separated stream counts, e.g. 256,512")
    parser.add_argument("--stall-layouts", help="comma-separated: direct, ws-1, ws-8, sse")
    parser.add_argument("--stall-steady", type=float, help="seconds all streams of a step run at once")
    parser.add_argument("--soak-seconds", type=float)
    parser.add_argument(
        "--gc-probe",
        action="store_true",
        help="log the gateway's garbage collections (bench/gcprobe) and match them with stalls",
    )
    parser.add_argument(
        "--gateway-tree",
        type=Path,
        help="run the gateway from this checkout (python -m from its root), e.g. a worktree of main",
    )
    args = parser.parse_args(argv)
    if args.gateway_tree:
        procs.GATEWAY_TREE = args.gateway_tree.resolve()
    only = [s for s in SCENARIOS if s in (args.only or SCENARIOS)]
    settings = QUICK if args.quick else FULL
    if args.stall_steps:
        settings = replace(settings, stall_steps=tuple(int(n) for n in args.stall_steps.split(",")))
    if args.stall_layouts:
        settings = replace(settings, stall_layouts=tuple(args.stall_layouts.split(",")))
    if args.stall_steady:
        settings = replace(settings, stall_steady=args.stall_steady)
    if args.soak_seconds:
        settings = replace(settings, soak_seconds=args.soak_seconds)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    t0 = time.monotonic()
    try:
        results = asyncio.run(run(settings, only, not args.no_pin, args.quick, args.gc_probe))
    except Exception as exc:  # a harness failure, not a missed target
        log(f"harness failure: {exc!r}")
        return 1
    rows = build_table(results["results"])
    results["table"] = [asdict(r) for r in rows]
    results["wall_s"] = round(time.monotonic() - t0, 1)
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = results["started"].replace(":", "").replace("-", "").replace("+0000", "Z")
    for name in (f"{stamp}.json", "latest.json"):
        (args.results / name).write_text(json.dumps(_clean(results), indent=1, allow_nan=False))
    chart = None
    if not args.no_chart:
        try:
            from bench.chart import render

            chart = render(results, args.results / "chart.png")
        except ImportError as exc:
            log(f"no chart: {exc}")
    m, pinning, acct = results["machine"], results["pinning"], results["cpu_accounting"]
    pinned = f"pinned to CPU {pinning['gateway_cpus']}" if pinning["enabled"] else "not pinned"
    print(
        f"\ntokenwire bench ({results['mode']}), {results['started']}, {m['nproc']} x {m['cpu_model']}, "
        f"gateway {pinned}, load {m['loadavg_before']}, source {results['gateway_source_sha256']}, "
        f"{results['wall_s']} s; CPU used by other processes meanwhile: {acct['other_processes_cpu_s']} s, "
        f"steal {acct['steal_s']} s\n"
    )
    print(format_table(rows))
    print(f"\nresults: {args.results / 'latest.json'}" + (f", chart: {chart}" if chart else ""))
    return 0


def _clean(value: Any) -> Any:
    """NaN and infinity become null (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
