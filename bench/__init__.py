"""tokenwire's benchmark harness: ``make bench`` or ``python -m bench.run`` (see docs/benchmarks.md)."""
