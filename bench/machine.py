"""The machine the bench ran on, the CPU used meanwhile, and the gateway source measured."""

from __future__ import annotations

import hashlib
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from bench import gateway as procs


def machine() -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    packages = (
        "uvicorn",
        "starlette",
        "websockets",
        "aiohttp",
        "msgspec",
        "uvloop",
        "httptools",
        "redis",
        "hiredis",
    )
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model or platform.processor(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }


def cpu_accounts() -> dict[str, float]:
    """CPU seconds: the machine busy (all CPUs), hypervisor steal, and this run's own processes
    (the bench and its children once they are waited for)."""
    import resource

    machine_times = psutil.cpu_times()
    ours = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        ours += usage.ru_utime + usage.ru_stime
    busy = sum(
        getattr(machine_times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "guest")
    )
    return {
        "wall": time.monotonic(),
        "busy": busy,
        "steal": getattr(machine_times, "steal", 0.0),
        "ours": ours,
    }


def cpu_report(start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
    """Other processes' CPU during the run shows a machine that was not quiet."""
    delta = {k: end[k] - start[k] for k in start}
    return {
        "wall_s": round(delta["wall"], 1),
        "bench_processes_cpu_s": round(delta["ours"], 1),
        "other_processes_cpu_s": round(max(0.0, delta["busy"] - delta["ours"]), 1),
        "steal_s": round(delta["steal"], 1),
    }


def source_digest() -> str:
    """The gateway's source as measured (server/, providers/, protocol/): sha256 of the .py files."""
    digest = hashlib.sha256()
    for directory in ("server", "providers", "protocol"):
        for path in sorted((procs.GATEWAY_TREE / directory).rglob("*.py")):
            digest.update(str(path.relative_to(procs.GATEWAY_TREE)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
