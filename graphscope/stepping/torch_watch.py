"""``graphscope watch``: many PyTorch training steps kept cheap, and the first one that went
non-finite stepped in full.

Each step runs as plain training does (forward, ``loss_fn``, ``loss.backward()``, the
optimizer's ``step()``), on the model and optimizer themselves, keeping a few numbers per
step: the loss, the global and per-module gradient norms, and how many values of the loss, the
gradients and the updated parameters are NaN or infinite. Every few steps the state and the
random generator's are kept in memory (:func:`watching.run`); at the first step in which any
of those values is non-finite, the state before it is rebuilt and the step replayed with
``step --train`` (:mod:`graphscope.stepping.torch_train`) to name where the value was born.
The first state kept is the one the run started from, and it is written back at the end
(however the run ends): the user's model and optimizer are left as they were. Training them
in place rather than copies saves a deep copy of the model and optimizer (a third of a second
and 300 MB on a ResNet-50 with AdamW); later keeps go to a second set of copies, made when
first needed.

What watch adds to a plain step is kept off the per-parameter path: the state is written into
copies made once (:class:`~graphscope.stepping.torch_train.TrainingState`, one
``torch._foreach_copy_``), the norms come from one ``torch._foreach_norm`` over the gradients,
read by the host at once; values are counted one by one
only when a norm is not finite (an infinity or a NaN makes the norm so; a norm that overflowed
float32 is recomputed in float64). The updated parameters are checked only before the state is
kept, after a non-finite step and after the last one (``watching.run``'s ``state_nonfinite``;
torch.optim's optimizers keep a non-finite parameter non-finite), where a check finds one the
steps since the kept state are taken again, each checked; another optimizer's parameters are
checked after every step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from graphscope.errors import GraphscopeError
from graphscope.stepping import torch_eager, watching
from graphscope.stepping.watching import Watch

__all__ = ["Watch", "watch", "watch_target"]


def watch(
    model: Any,
    example_inputs: Any,
    *,
    steps: int,
    name: str,
    example_targets: Any = None,
    loss_fn: Any = None,
    optimizer: Any = None,
    batches: Callable[[], Any] | None = None,
    where: str = "the model",
) -> Watch:
    import torch

    from graphscope.stepping import torch_train

    watching.check(steps, optimizer, where, "a torch.optim optimizer over the model's parameters")
    torch_train.check_optimizer(torch, model, optimizer, where)
    started = torch_train.TrainingState(torch, model, optimizer)  # written back at the end
    put_back_grads = _set_aside_grads(torch, started.params)
    later: list[torch_train.TrainingState] = []  # the keeps after the first, made when needed
    named = list(model.named_parameters())
    # torch.optim's updates read every parameter they write (a non-finite one stays so): the
    # parameters are checked only when watching.run asks, not after every step
    lazy = type(optimizer).__module__.startswith("torch.optim.")

    def params_nonfinite() -> int:
        with torch.no_grad():
            params = [p.detach() for _, p in named]
            return _nonfinite(torch, params, _norms(torch, params))

    def snapshot() -> Callable[[], None]:
        if not started.holds_weights:
            state = started
        else:
            if not later:
                later.append(torch_train.TrainingState(torch, model, optimizer))
            state = later[0]
        state.save(grads=False)  # each step starts from none: see _set_aside_grads
        rng = torch.get_rng_state()  # dropout's masks: a step taken again takes the same ones

        def restore() -> None:
            state.restore()
            torch.set_rng_state(rng)

        return restore

    try:
        return watching.run(
            watching.batches(example_inputs, example_targets, batches, steps, where),
            snapshot=snapshot,
            take_step=lambda inputs, targets, _: _one_step(
                torch,
                model,
                named,
                optimizer,
                inputs,
                targets,
                loss_fn,
                where,
                None if lazy else params_nonfinite,
            ),
            replay=lambda inputs, targets: torch_train.step_train(
                model,
                inputs,
                name=name,
                example_targets=targets,
                loss_fn=loss_fn,
                optimizer=optimizer,
                where=where,
            ),
            state_nonfinite=params_nonfinite if lazy else None,
        )
    finally:
        if started.holds_weights:  # the run kept it (it does before its first step)
            started.restore()
        put_back_grads()


def watch_target(found: Any, *, steps: int) -> Watch:
    """:func:`watch` on what the loader found in a model file (its optimizer, batches, ...)."""
    return watch(found.model, found.example_inputs, steps=steps, **watching.file_arguments(found))


def _set_aside_grads(torch: Any, params: list[Any]) -> Callable[[], None]:
    """Copy the parameters' gradients (the user's, from before the run), clear them, and return
    how to put copies back. Holding the tensors themselves through the run doubled its page
    faults: beside them, the gradients each step makes and frees are handed back to the system
    by the C library and faulted in again on the next step (a ResNet-50 under AdamW: 33,000
    faults a step against 12,000, about a sixth of the step's time)."""
    from graphscope.stepping import torch_train

    with_grad = [p for p in params if p.grad is not None]
    values = torch_train.copy_tensors(torch, [p.grad for p in with_grad])
    for p in params:
        p.grad = None

    def put_back() -> None:
        for p, value in zip(with_grad, values, strict=True):
            p.grad = value.clone()  # not the view: it would keep every copy alive

    return put_back


def _one_step(
    torch: Any,
    model: Any,
    named: list[tuple[str, Any]],
    optimizer: Any,
    inputs: tuple[Any, ...],
    targets: tuple[Any, ...],
    loss_fn: Any,
    where: str,
    params_nonfinite: Callable[[], int] | None,
) -> dict[str, Any]:
    """One plain training step and its cheap numbers; the updated parameters' non-finite
    values counted too when ``params_nonfinite`` is given (else ``watching.run`` counts them
    when it checks the state)."""
    optimizer.zero_grad(set_to_none=True)
    try:
        output = model(*inputs)
        loss = loss_fn(output, *targets) if loss_fn is not None else output
        if not (isinstance(loss, torch.Tensor) and loss.numel() == 1):
            raise GraphscopeError(f"{where}: the loss must be a scalar tensor")
        loss.backward()
    except GraphscopeError:
        raise
    except Exception as exc:
        raise torch_eager.run_error(exc) from None
    with torch.no_grad():
        with_grad = [(name, _dense_values(p.grad.detach())) for name, p in named if p.grad is not None]
        grads = [g for _, g in with_grad]
        grad_norms = _norms(torch, grads)
        loss_value = float(loss)
        bad = 0 if math.isfinite(loss_value) else 1
        bad += _nonfinite(torch, grads, grad_norms)
        modules: dict[str, float] = {}
        total = 0.0
        for (name, _), norm in zip(with_grad, grad_norms, strict=True):
            square = norm * norm
            total += square
            module = name.rpartition(".")[0] or "(top level)"
            modules[module] = modules.get(module, 0.0) + square
        try:
            optimizer.step()
        except Exception as exc:
            raise torch_eager.run_error(exc) from None
    if params_nonfinite is not None:
        bad += params_nonfinite()
    return {
        "loss": loss_value if math.isfinite(loss_value) else str(loss_value),
        "grad_norm": watching.number(math.sqrt(total)),
        "module_grad_norms": {k: watching.number(math.sqrt(v)) for k, v in modules.items()},
        "nonfinite": bad,
    }


def _dense_values(grad: Any) -> Any:
    """A sparse gradient's values with repeated rows summed (its norm is theirs); a dense one as is."""
    return grad.coalesce().values() if grad.is_sparse else grad


def _norms(torch: Any, tensors: list[Any]) -> list[float]:
    """The 2-norm of each tensor, read by the host at once; a float32 norm that overflowed
    while every value is finite is recomputed in float64 (as an infinity or a NaN would be)."""
    if not tensors:
        return []
    norms: list[float] = torch.stack(torch._foreach_norm(tensors)).tolist()
    for i, norm in enumerate(norms):
        if not math.isfinite(norm):
            norms[i] = float(torch.linalg.vector_norm(tensors[i].double()))
    return norms


def _nonfinite(torch: Any, tensors: list[Any], norms: list[float]) -> int:
    """How many values of ``tensors`` are NaN or infinite: counted only in those whose norm
    (from :func:`_norms`, float64 where float32 overflowed) is not finite."""
    return sum(
        int((~torch.isfinite(t)).sum())
        for t, norm in zip(tensors, norms, strict=True)
        if not math.isfinite(norm)
    )
