"""An optimizer's update taken a few parameters at a time and undone after each chunk, so that
``step --train`` holds copies of one chunk's parameters and optimizer state, not the model's.

The optimizers of ``torch.optim`` named in :data:`PER_PARAMETER` update each parameter from
its own gradient, its own state and its group's hyperparameters alone: the step of a chunk
gives, bit for bit, the values the whole step gives that chunk (``tests/test_step_update.py``
checks it against a real ``optimizer.step()`` on a copy, foreach and fused kernels included).
Each group's ``params`` is narrowed to the chunk's and put back; every other key of the group
is kept, so ``foreach``, ``fused`` and the hyperparameters are the user's.

Anything else keeps the whole-model undo of :class:`~graphscope.stepping.torch_train.TrainingState`:
a subclass (its ``step`` may look across parameters), LBFGS (its state is the first
parameter's, for all), an optimizer with step hooks (a pre-hook may clip the gradients by their
global norm).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["CHUNK_VALUES", "PER_PARAMETER", "per_parameter", "step_in_chunks"]

# The torch.optim classes whose update of a parameter reads only that parameter's gradient and
# state (and the group's hyperparameters). Exact classes only: a subclass may override step.
PER_PARAMETER = frozenset(
    {
        "SGD",
        "Adam",
        "AdamW",
        "RMSprop",
        "Adagrad",
        "Adadelta",
        "Adamax",
        "NAdam",
        "RAdam",
        "ASGD",
        "Rprop",
        "Adafactor",
    }
)
# Values (over the chunk's parameters) stepped at once: a few MB of copies per chunk, few
# enough ``step()`` calls that the Python overhead of each stays small. A larger parameter is
# a chunk of its own.
CHUNK_VALUES = 1 << 20


def per_parameter(torch: Any, optimizer: Any) -> bool:
    """Whether ``optimizer`` can be stepped a chunk at a time with the whole step's values."""
    from torch.optim import optimizer as base

    cls = type(optimizer)
    if cls.__name__ not in PER_PARAMETER or getattr(torch.optim, cls.__name__, None) is not cls:
        return False
    hooks = (
        base._global_optimizer_pre_hooks,
        base._global_optimizer_post_hooks,
        getattr(optimizer, "_optimizer_step_pre_hooks", {}),
        getattr(optimizer, "_optimizer_step_post_hooks", {}),
    )
    return not any(hooks)


def _chunks(params: list[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    values = 0
    for p in params:
        chunk.append(p)
        values += p.numel()
        if values >= size:
            yield chunk
            chunk, values = [], 0
    if chunk:
        yield chunk


def step_in_chunks(
    torch: Any,
    optimizer: Any,
    visit: Callable[[Any, Any], None],
    *,
    step: Callable[[], Any] | None = None,
    chunk_values: int | None = None,
) -> None:
    """``optimizer.step()`` a chunk of parameters at a time (in the order of its groups), calling
    ``visit(parameter, value_before)`` on each once its chunk is updated (``step``: what takes
    the step, ``optimizer.step`` by default; ``chunk_values``: :data:`CHUNK_VALUES` by default); the chunk's parameters
    and optimizer state are then written back (a state entry the step created is dropped) and
    its gradients released. Groups and state are as they were on return, also on an error."""
    groups = optimizer.param_groups
    kept = [dict(group) for group in groups]
    params = [p for group in kept for p in group["params"]]
    try:
        for chunk in _chunks(params, chunk_values or CHUNK_VALUES):
            _step_chunk(torch, optimizer, chunk, kept, visit, step or optimizer.step)
    finally:
        for group, saved in zip(groups, kept, strict=True):
            group.clear()
            group.update(saved)


def _step_chunk(
    torch: Any,
    optimizer: Any,
    chunk: list[Any],
    kept: list[dict[str, Any]],
    visit: Callable[[Any, Any], None],
    step: Callable[[], Any],
) -> None:
    members = {id(p) for p in chunk}
    state = optimizer.state
    # (parameter, its value, its state entry as it was or None, (state tensor, its value) pairs)
    saved = []
    with torch.no_grad():
        for p in chunk:
            entry = dict(state[p]) if p in state else None
            tensors = [(t, t.clone()) for t in (entry or {}).values() if isinstance(t, torch.Tensor)]
            saved.append((p, p.detach().clone(), entry, tensors))
    try:
        for group, whole in zip(optimizer.param_groups, kept, strict=True):
            group["params"] = [p for p in whole["params"] if id(p) in members]
        step()
        for p, before, _, _ in saved:
            visit(p, before)
    finally:
        with torch.no_grad():
            for p, before, entry, tensors in saved:
                p.copy_(before)
                for t, value in tensors:
                    t.copy_(value)
                if entry is None:
                    state.pop(p, None)
                else:
                    state[p] = entry
                p.grad = None  # this step's gradient, summarised; the user's come back at the end
