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
