"""The one timing helper the benchmark scripts share."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any], repeat: int, *, warm_up: bool = True) -> float:
    """Median wall time of ``repeat`` calls, after one untimed call when ``warm_up``
    (first-call caches — the dispatcher, Dynamo — are not what users see twice)."""
    if warm_up:
        fn()
    return statistics.median(_one_call(fn) for _ in range(repeat))


def timed_pair(
    a: Callable[[], Any],
    b: Callable[[], Any],
    repeat: int,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[float, float]:
    """Median wall times of ``a`` and ``b``, run alternately (a, b, a, b, ...) after one warm-up
    each, so that a busy spell on the machine lands on both rather than on one of them.
    ``clock=time.process_time``: the process's CPU time instead, which other processes on a
    shared machine disturb far less (run single-threaded to compare like with like)."""
    a()
    b()
    times_a, times_b = [], []
    for _ in range(repeat):
        times_a.append(_one_call(a, clock))
        times_b.append(_one_call(b, clock))
    return statistics.median(times_a), statistics.median(times_b)


def _one_call(fn: Callable[[], Any], clock: Callable[[], float] = time.perf_counter) -> float:
    """One timed call, on a collected heap: otherwise the garbage (or the garbage collector's
    pending work) one call leaves is paid for inside the next call's time. graphscope pauses
    the collector while it converts, so before this, its debt landed on the bare call that
    followed it and made the bare call look up to twice as slow."""
    gc.collect()
    start = clock()
    result = fn()
    elapsed = clock() - start
    del result  # freed outside the timing: what a capture returns is what the user keeps
    return elapsed
