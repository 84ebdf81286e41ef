"""What ``watch`` shares between frameworks: the result, the batches a run trains on, and how
the per-step numbers are written."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from graphscope.errors import GraphscopeError
from graphscope.stepping.records import Steps
from graphscope.tracers._training import as_tuple

__all__ = ["Watch", "batches", "check", "file_arguments", "number", "read_number", "run"]


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


def check(steps: int, optimizer: Any, where: str, kind: str) -> None:
    """What every watch needs: a step to take, and an optimizer (``kind`` says which) to take it."""
    if steps < 1:
        raise GraphscopeError(f"watch needs at least one step (--steps {steps})")
    if optimizer is None:
        raise GraphscopeError(f"{where}: watch trains the model, and the file defines no optimizer ({kind})")


def run(
    pairs: Iterable[tuple[tuple[Any, ...], tuple[Any, ...]]],
    *,
    snapshot: Callable[[], Callable[[], None]],
    take_step: Callable[[tuple[Any, ...], tuple[Any, ...], int], dict[str, Any]],
    replay: Callable[[tuple[Any, ...], tuple[Any, ...]], Steps],
) -> Watch:
    """The loop both frameworks run: before each step ``snapshot()`` keeps the state (and returns
    how to put it back); ``take_step`` trains on one batch and returns its numbers; at the first
    step with a non-finite value the state is put back and ``replay`` steps that batch in full."""
    found = Watch()
    for number, (inputs, targets) in enumerate(pairs, 1):
        restore = snapshot()
        stats = take_step(inputs, targets, number)
        stats["step"] = number
        found.history.append(stats)
        if stats["nonfinite"]:
            found.first_nonfinite_step = number
            restore()
            found.replay = replay(inputs, targets)
            found.replay.attach()
            break
    return found


def file_arguments(found: Any) -> dict[str, Any]:
    """A watch's keyword arguments from what the loader found in a model file."""
    return {
        "name": found.name,
        "example_targets": found.example_targets,
        "loss_fn": found.loss_fn,
        "optimizer": found.optimizer,
        "batches": found.extras.get("batches"),
        "where": str(found.path),
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


def number(value: float) -> float | str:
    """JSON has no NaN or infinity: those are written as strings ("nan", "inf")."""
    return value if math.isfinite(value) else str(value)


def read_number(value: Any) -> float | None:
    """A number of the history back (a float, or "inf" / "nan" as :func:`number` wrote it); None
    where there is none."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
