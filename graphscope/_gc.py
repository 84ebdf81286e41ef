"""Garbage collection paused while many long-lived objects are made: a captured graph converted
to the IR, a saved graph parsed, the TUI's rows. None of them is garbage, and the collector's full
passes over them cost more than making them."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Building thousands of small dicts next to a framework's large object graph triggers
    full collections that cost more than the conversion itself. Only the conversion is
    wrapped: the framework's own capture (tf2onnx, export) needs its collections."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
