"""Stepping: run a model node by node and keep a summary of every value it produced.

One stepper module per framework, registered under (framework, method) like the tracers.
Each exposes ``step(model, example_inputs, *, name, method, signature=None) -> Steps`` and
imports its framework inside that function.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from graphscope.errors import GraphscopeError
from graphscope.stepping.records import Record, Steps

if TYPE_CHECKING:
    from graphscope.loader import Target

__all__ = [
    "DEFAULT_METHOD",
    "KEEP_ALL",
    "REGISTRY",
    "Record",
    "Steps",
    "step",
    "step_target",
    "step_train_target",
    "watcher",
]


class _Everything:
    """``keep=KEEP_ALL``: keep every node's outputs (``diff --values`` compares them all)."""

    def __contains__(self, node_id: object) -> bool:
        return True

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "KEEP_ALL"


KEEP_ALL: Any = _Everything()

REGISTRY: dict[tuple[str, str], str] = {
    ("torch", "eager"): "torch_eager",
    ("torch", "fx"): "torch_fx",
    ("torch", "export"): "torch_fx",
    ("tf", "tf-function"): "tf_graph",
    ("tf1", "tf1"): "tf_graph",
    ("onnx", "onnx"): "onnx_runtime",
}

# eager runs every PyTorch model, including those no static capture handles.
DEFAULT_METHOD = {"torch": "eager", "tf": "tf-function", "tf1": "tf1", "onnx": "onnx"}


def methods(fw: str) -> list[str]:
    return [m for (f, m) in REGISTRY if f == fw]


def step(
    model: Any,
    example_inputs: Any,
    *,
    fw: str,
    method: str | None = None,
    name: str = "model",
    signature: Any = None,
    keep: Iterable[str] = (),
) -> Steps:
    """Run ``model`` on ``example_inputs`` with ``fw``'s stepper and return the records.

    ``keep`` names nodes whose whole output tensors are kept too (``Steps.values``).
    """
    method = method or DEFAULT_METHOD.get(fw, "")
    module_name = REGISTRY.get((fw, method))
    if module_name is None:
        known = ", ".join(methods(fw)) or "none in this version"
        raise GraphscopeError(f"--fw {fw} cannot step with method {method!r}; methods: {known}")
    if fw == "torch":
        from graphscope.tracers import _meta

        _meta.refuse_meta_step(model, example_inputs)
    module = importlib.import_module(f"graphscope.stepping.{module_name}")
    extra = {"keep": keep if keep is KEEP_ALL else frozenset(keep)} if keep else {}
    steps: Steps = module.step(model, example_inputs, name=name, method=method, signature=signature, **extra)
    steps.attach()
    return steps


def step_target(found: Target, *, method: str | None = None, keep: Iterable[str] = ()) -> Steps:
    """Step what the loader found (a model file; a saved graph has no values to step)."""
    if found.graph is not None:
        raise GraphscopeError(
            f"{found.path} is a saved graph, which holds no weights to run; step the model file instead"
        )
    if found.kind == "savedmodel":
        from graphscope import loader

        found = loader.load_saved_model_to_run(found)  # stepping runs it: its initialisers too
    if found.fw is None:
        raise GraphscopeError(f"{found.path}: say which framework it uses (--fw)")
    if found.model is None:
        raise GraphscopeError(f"{found.path} defines no model to run")
    return step(
        found.model,
        found.example_inputs,
        fw=found.fw,
        method=method or (found.method if (found.fw, found.method) in REGISTRY else None),
        name=found.name,
        signature=found.extras.get("input_signature"),
        keep=keep,
    )


def step_train_target(found: Target, *, method: str | None = None) -> Steps:
    """One training step of a model file (``step --train``): forward, loss, backward and the
    optimizer's update, every value summarised in the order the framework computed it
    (PyTorch, method eager; TensorFlow, method tf-function)."""
    if found.graph is not None or found.model is None:
        raise GraphscopeError(f"{found.path}: step --train needs a model file that defines a model")
    train_methods = {"torch": "eager", "tf": "tf-function"}
    if found.fw not in train_methods or method not in (None, train_methods[found.fw]):
        raise GraphscopeError(
            "step --train steps PyTorch models (--fw torch, method eager) and TensorFlow ones "
            "(--fw tf, method tf-function) in this version"
        )
    if found.fw == "tf":
        from graphscope.stepping import tf_train

        trainer: Any = tf_train
    else:
        from graphscope.stepping import torch_train
        from graphscope.tracers import _meta

        _meta.refuse_meta_step(found.model, found.example_inputs)
        trainer = torch_train
    steps: Steps = trainer.step_train(
        found.model,
        found.example_inputs,
        name=found.name,
        example_targets=found.example_targets,
        loss_fn=found.loss_fn,
        optimizer=found.optimizer,
        where=str(found.path),
    )
    steps.attach()
    return steps


def watcher(fw: str | None) -> Any:
    """The module that runs ``watch`` for ``fw``: ``torch_watch`` or ``tf_watch``."""
    if fw not in ("torch", "tf"):
        raise GraphscopeError(
            "watch trains PyTorch (--fw torch) and TensorFlow (--fw tf) models in this version"
        )
    return importlib.import_module(f"graphscope.stepping.{fw}_watch")
