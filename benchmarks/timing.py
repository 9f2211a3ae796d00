"""Median wall times, measured with ``time.perf_counter``, side by side."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fn: Callable[[], object], repeats: int = 7, warmup: int = 1) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    return paired_medians(fn, repeats=repeats, warmup=warmup)[0]


def paired_medians(*fns: Callable[[], object], repeats: int = 7, warmup: int = 1) -> list[float]:
    """Median seconds of each function, calls interleaved so that load on the machine hits all alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) for bucket in times]
