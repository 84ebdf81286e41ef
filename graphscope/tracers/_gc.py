"""Garbage collection paused while a captured graph is converted to the IR."""

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
