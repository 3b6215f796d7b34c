"""``python -m bench.run --gc-probe``: loaded into the gateway process through PYTHONPATH.

Logs each of the gateway's garbage collections that is a full (generation 2) one or takes over
1 ms, with its start on ``time.perf_counter()`` (CLOCK_MONOTONIC, the clock the bench's client
uses), so stalls the client sees can be matched with collections. The gateway's code is not
changed; the callback costs about a microsecond per collection.

What-if (not a default): ``BENCH_GC_FREEZE_AFTER=<seconds>`` calls ``gc.freeze()`` that long
after start-up, moving everything allocated by then (modules, app, warm-up) out of the
collector's reach, as a gateway could do once it is ready.

Leak hunt (not a default, slows the gateway): ``BENCH_TRACEMALLOC=<seconds>`` starts tracemalloc,
takes a baseline snapshot that long after start-up and then logs, every 30 s, the 15 source lines
whose live allocations grew most since the baseline.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from typing import Any

_started = [0.0]


def _callback(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    took = (time.perf_counter() - _started[0]) * 1000
    generation = info["generation"]
    if generation == 2 or took > 1:
        sys.stderr.write(
            f"tokenwire-bench-gc start={_started[0]:.6f} gen={generation} ms={took:.3f} "
            f"collected={info['collected']} tracked={len(gc.get_objects(generation=2))}\n"
        )


def _freeze() -> None:
    gc.collect()
    gc.freeze()
    sys.stderr.write(f"tokenwire-bench-gc-frozen objects={gc.get_freeze_count()}\n")


def _tracemalloc(after: float) -> None:
    import tracemalloc

    time.sleep(after)
    baseline = tracemalloc.take_snapshot()
    while True:
        time.sleep(30)
        snapshot = tracemalloc.take_snapshot()
        lines = [f"tokenwire-bench-tracemalloc t={time.perf_counter():.1f}"]
        for stat in snapshot.compare_to(baseline, "lineno")[:15]:
            lines.append(f"  {stat}")
        sys.stderr.write("\n".join(lines) + "\n")


gc.callbacks.append(_callback)
if os.environ.get("BENCH_TRACEMALLOC"):
    import tracemalloc

    tracemalloc.start(1)
    threading.Thread(target=_tracemalloc, args=(float(os.environ["BENCH_TRACEMALLOC"]),), daemon=True).start()
if os.environ.get("BENCH_GC_FREEZE_AFTER"):
    _timer = threading.Timer(float(os.environ["BENCH_GC_FREEZE_AFTER"]), _freeze)
    _timer.daemon = True
    _timer.start()
