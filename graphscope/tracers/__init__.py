"""Capture methods, one module each, registered under (framework, method).

Each module exposes ``capture(model, example_inputs, *, name) -> ir.Graph`` and imports its
framework inside that function, so listing or choosing a method never imports torch.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import TYPE_CHECKING, Any

from graphscope import _gc
from graphscope.errors import CaptureError, GraphscopeError

if TYPE_CHECKING:
    from graphscope.ir import Graph
    from graphscope.loader import Target

__all__ = [
    "BACKWARD_REGISTRY",
    "DEFAULT_METHOD",
    "REGISTRY",
    "capture",
    "capture_backward",
    "capture_target",
    "methods",
]

# (framework, method) -> module under graphscope.tracers
REGISTRY: dict[tuple[str, str], str] = {
    ("torch", "fx"): "torch_fx",
    ("torch", "export"): "torch_export",
    ("torch", "jit-trace"): "torch_jit",
    ("torch", "jit-script"): "torch_jit",
    ("torch", "dynamo"): "torch_dynamo",
    ("torch", "eager"): "torch_eager",
    ("tf", "tf-function"): "tf_function",
    ("tf", "onnx"): "tf_onnx",
    ("tf1", "tf1"): "tf1",
    ("onnx", "onnx"): "onnx_graph",
}

DEFAULT_METHOD = {"torch": "export", "tf": "tf-function", "tf1": "tf1", "onnx": "onnx"}

# --backward: (framework, method) -> the module that captures forward, loss and backward graph.
# Each exposes ``capture(model, example_inputs, *, name, method, example_targets, loss_fn, where)``.
BACKWARD_REGISTRY: dict[tuple[str, str], str] = {
    ("torch", "eager"): "torch_autograd",
    ("torch", "export"): "torch_joint",
    ("tf", "tf-function"): "tf_tape",
    ("tf1", "tf1"): "tf1_gradients",
}
BACKWARD_DEFAULT_METHOD = {"torch": "eager", "tf": "tf-function", "tf1": "tf1"}

# Methods that take an input signature from model.py instead of (or besides) example inputs.
TAKES_SIGNATURE = {("tf", "tf-function"), ("tf", "onnx")}


def methods(fw: str) -> list[str]:
    return [m for (f, m) in REGISTRY if f == fw]


def capture(
    model: Any,
    example_inputs: Any,
    *,
    fw: str,
    method: str | None = None,
    name: str = "model",
    signature: Any = None,
) -> Graph:
    """Capture ``model`` with ``fw``'s ``method`` (the framework's default when None).

    For PyTorch the default falls back to the next method that can capture the model, and a
    refusal names one that can (:mod:`graphscope.tracers.choice`)."""
    if fw == "torch" and (method is None or (fw, method) in REGISTRY):
        from graphscope.tracers import choice

        return choice.capture_with_fallback(
            lambda m: _capture_with(model, example_inputs, fw=fw, method=m, name=name, signature=signature),
            model,
            example_inputs,
            method=method,
        )
    return _capture_with(model, example_inputs, fw=fw, method=method, name=name, signature=signature)


def _capture_with(
    model: Any, example_inputs: Any, *, fw: str, method: str | None, name: str, signature: Any
) -> Graph:
    method = method or DEFAULT_METHOD.get(fw, "")
    module_name = REGISTRY.get((fw, method))
    if module_name is None:
        known = ", ".join(methods(fw)) or "none yet in this version"
        raise GraphscopeError(f"--fw {fw} has no capture method {method!r}; methods: {known}")
    module = importlib.import_module(f"graphscope.tracers.{module_name}")
    extra = {"signature": signature} if (fw, method) in TAKES_SIGNATURE and signature is not None else {}
    # PyTorch's tracers allocate many short-lived objects and run faster without collections;
    # tf2onnx's conversion, on the contrary, needs them (it grows to gigabytes without).
    pause = _gc.paused() if fw == "torch" else contextlib.nullcontext()
    with pause:
        graph: Graph = module.capture(model, example_inputs, name=name, method=method, **extra)
        # In the same pause: between two, the first allocation would collect every object
        # the conversion made (0.1 s for a scripted TransformerEncoder's 33k nodes).
        with _gc.paused():
            graph.validate()
    return graph


def capture_backward(
    model: Any,
    example_inputs: Any,
    *,
    fw: str,
    method: str | None = None,
    name: str = "model",
    example_targets: Any = None,
    loss_fn: Any = None,
    where: str = "the model",
) -> Graph:
    """Capture one training step's graph: forward, loss (``loss_fn(output, *example_targets)``,
    or the output itself when it is a scalar) and the backward graph the framework builds.
    ``where`` names the model file in the sentences about its training conventions."""
    method = method or BACKWARD_DEFAULT_METHOD.get(fw, "")
    module_name = BACKWARD_REGISTRY.get((fw, method))
    if module_name is None:
        known = " or ".join(f"--method {m}" for f, m in BACKWARD_REGISTRY if f == fw)
        which = known or "no method in this version"
        raise GraphscopeError(f"--backward with --fw {fw} --method {method} is not supported; use {which}")

    def with_method(m: str) -> Graph:
        other = importlib.import_module(f"graphscope.tracers.{BACKWARD_REGISTRY[(fw, m)]}")
        with _gc.paused():
            graph: Graph = other.capture(
                model,
                example_inputs,
                name=name,
                method=m,
                example_targets=example_targets,
                loss_fn=loss_fn,
                where=where,
            )
            graph.validate()
        return graph

    try:
        return with_method(method)
    except CaptureError as exc:
        refusal = exc  # the name bound by `except` is cleared when the block ends
    # A refusal names a method that does capture the model, as a forward capture's does.
    from graphscope.tracers import choice

    others = tuple(m for f, m in BACKWARD_REGISTRY if f == fw and m != method)
    raise choice.hint(refusal, with_method, others) from None


def capture_target(
    found: Target, *, method: str | None = None, example_inputs: Any = None, backward: bool = False
) -> Graph:
    """Capture what the loader found: a saved graph as it is, else the model with the method
    asked for (or the one the file implies). ``example_inputs`` replaces the file's own, for
    a second capture; the file's ``input_signature`` goes with the file's own inputs only.
    ``backward``: the training step's graph (:func:`capture_backward`)."""
    if found.graph is not None:
        if backward:
            raise GraphscopeError(f"{found.path} is a saved graph: --backward needs a model.py to run")
        return found.graph
    if found.fw is None:
        raise GraphscopeError(f"{found.path}: say which framework it uses (--fw)")
    if backward:
        if found.kind != "python":
            raise GraphscopeError(
                f"{found.path} is a saved graph: --backward needs a model.py with a loss to run"
            )
        return capture_backward(
            found.model,
            found.example_inputs if example_inputs is None else example_inputs,
            fw=found.fw,
            method=method or found.method,
            name=found.name,
            example_targets=found.example_targets,
            loss_fn=found.loss_fn,
            where=str(found.path),
        )
    if found.kind == "savedmodel":
        return _capture_saved_model(found, method)
    own = example_inputs is None
    return capture(
        found.model,
        found.example_inputs if own else example_inputs,
        fw=found.fw,
        method=method or found.method,
        name=found.name,
        signature=found.extras.get("input_signature") if own else None,
    )


def _capture_saved_model(found: Target, method: str | None) -> Graph:
    """A SavedModel is read as data (its saved_model.pb), never loaded: loading it would run its
    initialisers. It is not in REGISTRY since no model.py can be captured that way."""
    if method not in (None, "savedmodel"):
        raise GraphscopeError(
            f"{found.path} is a SavedModel, read as data with method savedmodel; --method {method} "
            "would load it, which runs its initialisers (graphscope step does, to run it)"
        )
    from graphscope.tracers import tf_savedmodel

    graph: Graph = tf_savedmodel.capture(found.model, None, name=found.name)
    with _gc.paused():
        graph.validate()
    return graph
