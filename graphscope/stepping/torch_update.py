"""An optimizer's update taken a few parameters at a time on stand-ins (clones of the
parameters and their optimizer state), so that ``step --train`` holds copies of one chunk's
parameters and state, not the model's, and can take the update during backward, each chunk as
soon as its gradients are final, freeing them as plain training's ``zero_grad`` would.

The optimizers of ``torch.optim`` named in :data:`PER_PARAMETER` update each parameter from
its own gradient, its own state and its group's hyperparameters alone: the step of a chunk
gives, bit for bit, the values the whole step gives that chunk (``tests/test_step_update.py``
checks it against a real ``optimizer.step()`` on a copy, foreach and fused kernels included).
Each group's ``params`` is narrowed to the chunk's stand-ins and put back; every other key of
the group is kept, so ``foreach``, ``fused`` and the hyperparameters are the user's.

Anything else keeps the whole-model undo of :class:`~graphscope.stepping.torch_train.TrainingState`:
a subclass (its ``step`` may look across parameters), LBFGS (its state is the first
parameter's, for all), an optimizer with step hooks (a pre-hook may clip the gradients by their
global norm).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["CHUNK_VALUES", "PER_PARAMETER", "ChunkedUpdate", "per_parameter", "step_in_chunks"]

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


class ChunkedUpdate:
    """``optimizer.step()`` taken a chunk of parameters at a time, on stand-ins: each parameter
    of a chunk is cloned with its optimizer state, the clone gets the parameter's gradient and
    takes its place in its group's ``params`` for one ``step()``, and ``visit(parameter,
    new_value)`` is called on each; then the clones are dropped and the parameter's gradient
    released. The user's parameters and state tensors are never written (not even their version
    counters move); their groups' ``params`` lists are put back after each step.

    :meth:`add` a parameter once its gradient is final (from a post-accumulate-grad hook during
    backward, so that the gradients already used are freed while backward goes on); a chunk is
    stepped when it holds ``chunk_values`` values. :meth:`finish` steps the rest, the parameters
    never added (no gradient) included. ``step`` takes the step (``optimizer.step`` by default).
    """

    def __init__(
        self,
        torch: Any,
        optimizer: Any,
        visit: Callable[[Any, Any], None],
        *,
        step: Callable[[], Any] | None = None,
        chunk_values: int | None = None,
    ) -> None:
        self.torch = torch
        self.optimizer = optimizer
        self.visit = visit
        self.step = step or optimizer.step
        self.size = chunk_values or CHUNK_VALUES
        self.pending: list[Any] = []
        self.values = 0
        self.done: set[int] = set()

    def add(self, p: Any) -> None:
        self.pending.append(p)
        self.values += p.numel()
        if self.values >= self.size:
            self._step_pending()

    def finish(self) -> None:
        if self.pending:
            self._step_pending()
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                if id(p) not in self.done:
                    self.add(p)
        if self.pending:
            self._step_pending()

    def _step_pending(self) -> None:
        chunk, self.pending, self.values = self.pending, [], 0
        self.done.update(id(p) for p in chunk)
        torch, optimizer = self.torch, self.optimizer
        members: dict[int, Any] = {}
        with torch.no_grad():
            for p in chunk:
                stand_in = p.detach().clone().requires_grad_(p.requires_grad)
                stand_in.grad = p.grad
                if p in optimizer.state:
                    optimizer.state[stand_in] = {
                        k: v.clone() if isinstance(v, torch.Tensor) else v
                        for k, v in optimizer.state[p].items()
                    }
                members[id(p)] = stand_in
        groups = [group["params"] for group in optimizer.param_groups]
        try:
            for group, params in zip(optimizer.param_groups, groups, strict=True):
                group["params"] = [members[id(p)] for p in params if id(p) in members]
            self.step()
        finally:
            for group, params in zip(optimizer.param_groups, groups, strict=True):
                group["params"] = params
            for stand_in in members.values():
                optimizer.state.pop(stand_in, None)
        try:
            for p in chunk:
                self.visit(p, members[id(p)].detach())
        finally:
            for p in chunk:
                members[id(p)].grad = None
                p.grad = None  # this step's gradient, summarised; the user's come back at the end


def step_in_chunks(
    torch: Any,
    optimizer: Any,
    visit: Callable[[Any, Any], None],
    *,
    step: Callable[[], Any] | None = None,
    chunk_values: int | None = None,
) -> None:
    """A :class:`ChunkedUpdate` of every parameter, in the order of the optimizer's groups."""
    ChunkedUpdate(torch, optimizer, visit, step=step, chunk_values=chunk_values).finish()
