"""Helpers shared by the CPU benchmarks (`bench/documents.py`, `bench/biometrics.py`)."""

from __future__ import annotations

import os


def pin(cpu: int | None) -> str:
    """Pin this process (and the children it starts) to one core, like `taskset -c CPU`: the
    requested one when allowed, else the first allowed. Returns what was done, for the report."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this platform)"
    allowed = sorted(os.sched_getaffinity(0))
    core = allowed[0] if cpu is None or cpu not in allowed else cpu
    os.sched_setaffinity(0, {core})
    return f"pinned to CPU {core}"


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank `q` quantile (0..1) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
