"""What ``watch`` shares between frameworks: the result, the batches a run trains on, and how
the per-step numbers are written."""

from __future__ import annotations

import math
import time
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
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        replayed = self.replay.as_dict() if self.replay is not None else None
        return {
            "steps": len(self.history),
            "first_nonfinite_step": self.first_nonfinite_step,
            "first_nonfinite": replayed["first_nonfinite"] if replayed else None,
            "history": self.history,
            "notes": self.notes,
        }


def check(steps: int, optimizer: Any, where: str, kind: str) -> None:
    """What every watch needs: a step to take, and an optimizer (``kind`` says which) to take it."""
    if steps < 1:
        raise GraphscopeError(f"watch needs at least one step (--steps {steps})")
    if optimizer is None:
        raise GraphscopeError(f"{where}: watch trains the model, and the file defines no optimizer ({kind})")


# A step's state is kept once every few steps, not before each: copying a ResNet-50's weights
# and AdamW's moments (300 MB) took a fifth of a plain step's time. At a non-finite step the
# state kept last is put back and the steps since it are taken again, to reach the state before
# that step. How often: so that keeping costs at most this share of the steps' time.
KEEP_SHARE = 0.02
MAX_EVERY = 64  # at most this many steps taken again (and batches held) at a non-finite step


def run(
    pairs: Iterable[tuple[tuple[Any, ...], tuple[Any, ...]]],
    *,
    snapshot: Callable[[], Callable[[], None]],
    take_step: Callable[[tuple[Any, ...], tuple[Any, ...], int], dict[str, Any]],
    replay: Callable[[tuple[Any, ...], tuple[Any, ...]], Steps],
    every: int | None = None,
    state_nonfinite: Callable[[], int] | None = None,
) -> Watch:
    """The loop both frameworks run: ``snapshot()`` keeps the state (the model's, the
    optimizer's, the random generator's) and returns how to put it back; ``take_step`` trains
    on one batch and returns its numbers; at the first step with a non-finite value the state
    before that step is rebuilt and ``replay`` steps that batch in full.

    The state is kept every ``every`` steps (by default as often as :data:`KEEP_SHARE` of the
    time allows, measured as the run goes), with the batches taken since: the state before a
    step is the kept one with those steps taken again. Taken again, a step must give the loss it
    gave (the model is deterministic once its random generator is put back): a note says so
    when it does not.

    ``state_nonfinite``, when given, counts the non-finite values of the updated state (the
    parameters) now, and ``take_step`` leaves them out of its count: the state is then checked
    only before it is kept, after a step with a non-finite value and after the last step, not
    after every step. That is exact when a non-finite value of the state stays non-finite
    through the steps after it (the update reads it: torch.optim's optimizers): when a check
    finds one, the kept state is put back and the steps since taken again, each checked, to
    find the step that made it."""
    found = Watch()
    kept: Callable[[], None] | None = None
    since: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = []  # the batches taken since `kept`
    keep_time = step_time = 0.0
    check = state_nonfinite or (lambda: 0)  # without it, take_step counts the state's values
    for number, (inputs, targets) in enumerate(pairs, 1):
        if kept is None or len(since) >= (every or _every(keep_time, step_time)):
            if kept is not None and (in_state := check()):
                _search(found, kept, since, number - 1, in_state, take_step, check, replay)
                return found
            start = time.perf_counter()
            kept = snapshot()
            keep_time = time.perf_counter() - start
            since = []
        since.append((inputs, targets))
        start = time.perf_counter()
        stats = take_step(inputs, targets, number)
        step_time = time.perf_counter() - start
        stats["step"] = number
        found.history.append(stats)
        if stats["nonfinite"]:
            in_state = check()
            if in_state and len(since) > 1:  # made by this step or one before it
                _search(found, kept, since, number, in_state, take_step, check, replay)
            else:
                stats["nonfinite"] += in_state
                _replay(found, kept, since, number, take_step, replay)
            return found
    if kept is not None and (in_state := check()):
        _search(found, kept, since, len(found.history), in_state, take_step, check, replay)
    return found


def _replay(
    found: Watch,
    kept: Callable[[], None],
    since: list[tuple[tuple[Any, ...], tuple[Any, ...]]],
    number: int,
    take_step: Callable[[tuple[Any, ...], tuple[Any, ...], int], dict[str, Any]],
    replay: Callable[[tuple[Any, ...], tuple[Any, ...]], Steps],
) -> None:
    """Step ``number`` (the last of ``since``) is the first non-finite one: rebuild the state
    before it from ``kept`` and replay it in full."""
    found.first_nonfinite_step = number
    kept()
    inputs, targets = _retake(found, since, number, take_step)
    found.replay = replay(inputs, targets)
    found.replay.attach()


def _search(
    found: Watch,
    kept: Callable[[], None],
    since: list[tuple[tuple[Any, ...], tuple[Any, ...]]],
    last: int,
    in_state: int,
    take_step: Callable[[tuple[Any, ...], tuple[Any, ...], int], dict[str, Any]],
    state_nonfinite: Callable[[], int],
    replay: Callable[[tuple[Any, ...], tuple[Any, ...]], Steps],
) -> None:
    """The state after step ``last`` (the last of ``since``) holds ``in_state`` non-finite
    values: take the steps since the kept state again, the state checked after each, to find
    the first step with a non-finite value; its numbers replace the ones the run wrote, the
    history stops there, and that step is replayed. Taken again, when no step makes one (the
    model is not deterministic), step ``last`` is the one replayed, with a note."""
    first = last - len(since) + 1
    kept()
    for taken, (inputs, targets) in enumerate(since, 1):
        number = first + taken - 1
        stats = take_step(inputs, targets, number)
        stats["nonfinite"] += state_nonfinite()
        stats["step"] = number
        if stats["nonfinite"]:
            del found.history[number - 1 :]
            found.history.append(stats)
            _replay(found, kept, since[:taken], number, take_step, replay)
            return
    found.history[last - 1]["nonfinite"] += in_state
    notes = len(found.notes)
    _replay(found, kept, since, last, take_step, replay)
    if len(found.notes) == notes:
        found.notes.append(
            f"the parameters after step {last} hold non-finite values, and the steps from {first} "
            "taken again made none: the model is not deterministic, and the replayed step starts "
            "from a state the run may not have had"
        )


def _every(keep_time: float, step_time: float) -> int:
    """How many steps apart to keep the state, from the last keep's and the last step's time."""
    if step_time <= 0:
        return 1
    return max(1, min(MAX_EVERY, math.ceil(keep_time / (KEEP_SHARE * step_time))))


def _retake(
    found: Watch,
    since: list[tuple[tuple[Any, ...], tuple[Any, ...]]],
    number: int,
    take_step: Callable[[tuple[Any, ...], tuple[Any, ...], int], dict[str, Any]],
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Take again the steps between the state kept last and the non-finite step ``number``;
    returns that step's batch. A step that does not give its loss again is said in a note."""
    first = number - len(since) + 1
    for offset, (inputs, targets) in enumerate(since[:-1]):
        again = take_step(inputs, targets, first + offset)
        before = found.history[first + offset - 1]
        if again["loss"] != before["loss"] or again["nonfinite"]:
            found.notes.append(
                f"the state before step {number} was rebuilt from the one kept before step {first}, "
                f"and step {first + offset} taken again gave loss {again['loss']} where it gave "
                f"{before['loss']}: the model is not deterministic, and the replayed step starts "
                "from a state the run may not have had"
            )
            break
    return since[-1]


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
