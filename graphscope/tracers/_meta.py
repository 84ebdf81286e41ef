"""Models on PyTorch's ``meta`` device: shapes without weights.

A model built under ``torch.device("meta")`` (or accelerate's ``init_empty_weights``) holds
no data, so a 70B-parameter model fits in memory. The captures that need only shapes
(``export``, ``dynamo``, ``fx``) take it with meta example inputs; those that need values
(``eager``, ``jit-trace``, ``jit-script``, and stepping) refuse it in one sentence. A model
half on meta and half real, or meta inputs to a real model (and the reverse), fail inside the
framework with a device error deep in an op: they are named here first.
"""

from __future__ import annotations

from typing import Any

from graphscope.errors import CaptureError, GraphscopeError

__all__ = ["SHAPE_ONLY_METHODS", "check_devices", "is_meta", "refuse_meta", "refuse_meta_step"]

SHAPE_ONLY_METHODS = ("export", "dynamo", "fx")


def _tensors(value: Any) -> list[Any]:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _weights(model: Any) -> list[Any]:
    import torch

    if not isinstance(model, torch.nn.Module):
        return []
    return [*model.parameters(), *model.buffers()]


def is_meta(model: Any, inputs: Any) -> bool:
    """Whether the model's weights or its example inputs are on the meta device."""
    return any(t.is_meta for t in _weights(model)) or any(t.is_meta for t in _tensors(inputs))


def check_devices(model: Any, inputs: Any) -> None:
    """One sentence for a model and inputs that mix the meta device with real tensors."""
    weights = _weights(model)
    on_meta = sum(t.is_meta for t in weights)
    if 0 < on_meta < len(weights):
        raise GraphscopeError(
            f"{on_meta} of the model's {len(weights)} weights and buffers are on PyTorch's meta device "
            "and the others hold data: build the whole model under torch.device('meta'), or none of it"
        )
    given = _tensors(inputs)
    meta_inputs = sum(t.is_meta for t in given)
    if weights and given and on_meta == len(weights) and meta_inputs < len(given):
        raise GraphscopeError(
            "the model's weights are on PyTorch's meta device but its example inputs hold data: "
            "make the inputs on the meta device too (torch.ones(..., device='meta'))"
        )
    if weights and meta_inputs and on_meta == 0:
        raise GraphscopeError(
            "the example inputs are on PyTorch's meta device but the model's weights hold data: "
            "give it real inputs, or build the model under torch.device('meta') too"
        )


def refuse_meta(model: Any, inputs: Any, what: str) -> None:
    """Refuse a meta model where ``what`` needs real values.

    A :class:`CaptureError`, so that the default capture goes on to a method that can, and an
    explicit ``--method`` is told which one does."""
    if is_meta(model, inputs):
        raise CaptureError(f"{what} needs real values, and this model is on PyTorch's meta device (no data)")


def refuse_meta_step(model: Any, inputs: Any) -> None:
    """Stepping runs the model: nothing to run on the meta device."""
    if is_meta(model, inputs):
        raise GraphscopeError(
            "step runs the model and needs real values, and this model is on PyTorch's meta device "
            f"(no data): `graphscope trace` with --method {', '.join(SHAPE_ONLY_METHODS[:-1])} or "
            f"{SHAPE_ONLY_METHODS[-1]} shows its graph with full shapes"
        )
