"""What the backward tracers and the training steppers share: a training step's inputs and
targets as tuples, and their names."""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["argument_names", "as_tuple"]


def argument_names(fn: Any, count: int, *, skip: int = 0, default: str = "input") -> list[str]:
    """Names for ``count`` positional arguments of ``fn`` after the first ``skip`` (a loss_fn's
    ``target`` after its ``output``); ``default`` (numbered from the second) where it has none."""
    try:
        params = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ][skip:]
    except (TypeError, ValueError):
        params = []
    names = []
    for i in range(count):
        name = params[i] if i < len(params) else (default if i == 0 else f"{default}_{i}")
        while name in names:
            name += "_"
        names.append(name)
    return names


def as_tuple(value: Any) -> tuple[Any, ...]:
    """``example_inputs`` or ``example_targets`` as a tuple: None is none, a list or one value too."""
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(value)
    return value if isinstance(value, tuple) else (value,)
