"""bench/results/chart.png: the gateway against the direct baseline (matplotlib, Agg backend)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

COLORS = {"direct": "#444444", "ws": "#1f77b4", "sse": "#ff7f0e", "ws-1": "#1f77b4", "ws-8": "#2ca02c"}
LABELS = {
    "direct": "direct (baseline)",
    "ws": "gateway WebSocket",
    "sse": "gateway SSE",
    "ws-1": "gateway WS, 1 per socket",
    "ws-8": "gateway WS, 8 per socket",
}


def _cdf(ax: Any, values: list[float], key: str) -> None:
    if not values:
        return
    ordered = sorted(values)
    n = len(ordered)
    p50, p99 = ordered[int(0.5 * (n - 1))], ordered[int(0.99 * (n - 1))]
    label = f"{LABELS[key]}: p50 {p50:.2f}, p99 {p99:.2f} ms"
    ax.plot(ordered, [(i + 1) / n * 100 for i in range(n)], color=COLORS[key], label=label, lw=1.6)


def _log_ms_axis(ax: Any) -> None:
    """A log x axis in ms with plain tick labels (0.1, 0.2, 0.5, 1, 2 ...)."""
    ax.set_xscale("log")
    ticks = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]
    lo, hi = ax.get_xlim()
    ax.xaxis.set_major_locator(FixedLocator([t for t in ticks if lo <= t <= hi]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def render(results: dict[str, Any], path: Path) -> Path:
    r = results["results"]
    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    (a_ttft, a_gap, a_stall), (a_thr, a_mem, a_soak) = axes
    when = results["started"]
    m = results["machine"]
    fig.suptitle(
        f"tokenwire bench ({results['mode']}) {when} - {m['nproc']} x {m['cpu_model']} - "
        f"source {results['gateway_source_sha256']}",
        fontsize=12,
    )

    ttft = r.get("ttft")
    if ttft:
        for key in ("direct", "ws", "sse"):
            _cdf(a_ttft, ttft["results"].get(f"{key}/openai", {}).get("samples_ms", []), key)
        _log_ms_axis(a_ttft)
        a_ttft.set_xlabel("time to first token (ms, log scale)")
        a_ttft.set_ylabel("percentile")
        a_ttft.set_title("TTFT at concurrency 1 (CDF)")
        a_ttft.axhline(99, color="#bbbbbb", lw=0.8, ls=":")
        a_ttft.legend(loc="lower right", fontsize=8)
    else:
        a_ttft.set_visible(False)

    gap = r.get("gap")
    if gap:
        g = gap["results"]
        for key in ("direct", "ws", "sse"):
            _cdf(a_gap, g[key].get("delay_samples_ms", []), key)
        _log_ms_axis(a_gap)
        a_gap.set_xlabel("chunk delay: upstream write -> client read (ms, log scale)")
        a_gap.set_ylabel("percentile")
        a_gap.axhline(99, color="#bbbbbb", lw=0.8, ls=":")
        a_gap.set_title(
            "per-chunk delay at 20 ms pacing (CDF); gap p99 "
            + ", ".join(f"{k} {g[k]['p99']:.2f}" for k in ("direct", "ws", "sse"))
            + " ms",
            fontsize=10,
        )
        a_gap.legend(loc="lower right", fontsize=8)
    else:
        a_gap.set_visible(False)

    stall = r.get("stall")
    if stall:
        for layout, steps in stall["steps"].items():
            xs = [s["streams"] for s in steps if not math.isnan(s.get("gap_max_ms") or math.nan)]
            ys = [s["gap_max_ms"] for s in steps if not math.isnan(s.get("gap_max_ms") or math.nan)]
            a_stall.plot(xs, ys, marker="o", color=COLORS[layout], label=LABELS[layout], lw=1.6)
            for s in steps:
                if not s["passed"] and s.get("gap_max_ms") is not None and not math.isnan(s["gap_max_ms"]):
                    a_stall.plot([s["streams"]], [s["gap_max_ms"]], marker="x", color="red", ms=10, mew=2)
        a_stall.axhline(40, color="red", lw=1, ls="--", label="stall limit 40 ms")
        a_stall.axvline(512, color="#bbbbbb", lw=1, ls=":", label="target 512")
        a_stall.set_xscale("log", base=2)
        tried = stall.get("steps_tried", [])
        a_stall.xaxis.set_major_locator(FixedLocator(tried))
        a_stall.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        a_stall.xaxis.set_minor_formatter(NullFormatter())
        a_stall.set_ylim(0, max(a_stall.get_ylim()[1], 50))
        a_stall.set_xlabel("simultaneous streams (20 ms pacing); x = failed step")
        a_stall.set_ylabel("largest gap between chunk arrivals (ms)")
        best = stall["max_streams"]
        a_stall.set_title(
            "stall-free streams: " + ", ".join(f"{k} {v}" for k, v in best.items()), fontsize=10
        )
        a_stall.legend(fontsize=8, loc="upper left")
    else:
        a_stall.set_visible(False)

    thr = r.get("throughput")
    if thr:
        keys = ["direct", "ws", "sse"]
        values = [thr["results"][k]["chunks_per_s"] or 0 for k in keys]
        bars = a_thr.bar([LABELS[k] for k in keys], values, color=[COLORS[k] for k in keys])
        for bar, v in zip(bars, values, strict=True):
            pct = f" ({v / values[0]:.0%})" if values[0] else ""
            a_thr.annotate(f"{v:,.0f}{pct}", (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom")
        if values[0]:
            a_thr.axhline(values[0] / 2, color="red", lw=1, ls="--", label="target: 50% of direct")
            a_thr.legend(fontsize=8)
        a_thr.set_ylabel("upstream chunks delivered per second")
        a_thr.set_title(f"relay throughput, no pacing ({thr['streams']} streams)")
    else:
        a_thr.set_visible(False)

    mem = r.get("memory")
    if mem:
        labels = ["per idle WS connection", "per active stream"]
        values = [mem["per_idle_connection_kib"], mem["per_active_stream_kib"]]
        bars = a_mem.bar(labels, values, color=[COLORS["ws"], COLORS["ws-8"]])
        for bar, v in zip(bars, values, strict=True):
            a_mem.annotate(f"{v:.1f} KiB", (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom")
        a_mem.axhline(25, color="red", lw=1, ls="--", label="target: 25 KiB per idle connection")
        a_mem.legend(fontsize=8)
        a_mem.set_ylabel("gateway RSS (KiB)")
        a_mem.set_title(f"memory ({mem['connections']} connections, fresh gateway)")
    else:
        a_mem.set_visible(False)

    soak = r.get("soak")
    if soak:
        xs = [p[0] for p in soak["rss_kib"]]
        ys = [p[1] / 1024 for p in soak["rss_kib"]]
        a_soak.plot(xs, ys, color=COLORS["ws"], lw=1.6)
        a_soak.set_xlabel("seconds")
        a_soak.set_ylabel("gateway RSS (MiB)")
        a_soak.set_title(
            f"soak: {soak['streams_ok']} streams; growth {soak['growth_kib']} KiB (Q4 - Q2 median)",
            fontsize=10,
        )
        if ys:
            a_soak.set_ylim(min(ys) - 4, max(ys) + 4)
    else:
        a_soak.set_visible(False)

    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
