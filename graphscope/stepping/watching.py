"""What ``watch`` shares between frameworks: the result, the batches a run trains on, and how
the per-step numbers are written."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from graphscope.errors import GraphscopeError
from graphscope.stepping.records import Steps

__all__ = ["Watch", "batches", "number"]


@dataclass
class Watch:
    """What ``watch`` found: the per-step history and, if any, the first non-finite step."""

    history: list[dict[str, Any]] = field(default_factory=list)
    first_nonfinite_step: int | None = None  # counted from 1
    replay: Steps | None = None  # that step, stepped in full

    def as_dict(self) -> dict[str, Any]:
        replayed = self.replay.as_dict() if self.replay is not None else None
        return {
            "steps": len(self.history),
            "first_nonfinite_step": self.first_nonfinite_step,
            "first_nonfinite": replayed["first_nonfinite"] if replayed else None,
            "history": self.history,
        }


def batches(
    example_inputs: Any, example_targets: Any, batches_fn: Callable[[], Any] | None, steps: int, where: str
) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """``steps`` pairs of (inputs, targets): from ``batches()`` when the file defines it (fewer
    when it runs out), else the example inputs and targets, repeated."""
    if batches_fn is None:
        inputs = as_tuple(example_inputs)
        targets = as_tuple(example_targets)
        for _ in range(steps):
            yield inputs, targets
        return
    try:
        source = iter(batches_fn())
    except Exception as exc:
        raise GraphscopeError(f"{where}: batches() raised {type(exc).__name__}: {exc}") from None
    for _ in range(steps):
        try:
            item = next(source)
        except StopIteration:
            return
        except Exception as exc:
            raise GraphscopeError(f"{where}: batches() raised {type(exc).__name__}: {exc}") from None
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise GraphscopeError(
                f"{where}: batches() must yield (inputs, targets) pairs, and yielded a {type(item).__name__}"
                + (f" of {len(item)}" if isinstance(item, (tuple, list)) else "")
            )
        yield as_tuple(item[0]), as_tuple(item[1])


def as_tuple(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def number(value: float) -> float | str:
    """JSON has no NaN or infinity: those are written as strings ("nan", "inf")."""
    return value if math.isfinite(value) else str(value)
