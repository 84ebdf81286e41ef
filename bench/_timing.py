"""The one timing helper the benchmark scripts share."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any], repeat: int, *, warm_up: bool = True) -> float:
    """Median wall time of ``repeat`` calls, after one untimed call when ``warm_up``
    (first-call caches — the dispatcher, Dynamo — are not what users see twice)."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed_pair(a: Callable[[], Any], b: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Median wall times of ``a`` and ``b``, run alternately (a, b, a, b, ...) after one warm-up
    each, so that a busy spell on the machine lands on both rather than on one of them."""
    a()
    b()
    times_a, times_b = [], []
    for _ in range(repeat):
        for fn, times in ((a, times_a), (b, times_b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(times_a), statistics.median(times_b)
