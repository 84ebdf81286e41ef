"""TF2: a ``tf.function`` concrete function (Keras models and plain callables are wrapped in one).

The concrete function's graph is converted op by op; its function library (``If`` /
``StatelessIf`` branches, ``While`` cond and body, ``PartitionedCall`` targets) becomes IR
subgraphs named by function and linked from the calling node. Captured variables are
``param`` nodes named by the variable.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from graphscope import _gc, ir
from graphscope.errors import GraphscopeError
from graphscope.tracers import _tf_common as common
from graphscope.tracers._source import relative


def function_of(model: Any) -> Any:
    """The tf.function behind ``model``: itself, its ``__call__``, or a new wrapper."""
    tf = common.require_tf()
    if hasattr(model, "get_concrete_function"):
        return model
    if hasattr(inspect.getattr_static(model, "__call__", None), "get_concrete_function"):
        return model.__call__  # a tf.Module whose __call__ is already a tf.function
    return tf.function(model)


def concrete_function(
    model: Any, example_inputs: tuple[Any, ...] | None, signature: Any = None
) -> tuple[Any, Any]:
    """``(tf.function, concrete function)`` for ``model`` on these inputs or this signature."""
    tf = common.require_tf()
    if hasattr(model, "structured_input_signature") and hasattr(model, "graph"):
        return model, model  # already a concrete function (a SavedModel's signature)
    fn = function_of(model)
    if signature is not None:
        specs = list(signature)
    elif example_inputs is not None:
        specs = [
            tf.TensorSpec(x.shape, tf.as_dtype(x.dtype)) if hasattr(x, "shape") else x for x in example_inputs
        ]
    else:
        specs = None
    try:
        cf = fn.get_concrete_function(*specs) if specs is not None else fn.get_concrete_function()
    except Exception as exc:
        raise GraphscopeError(f"tf.function cannot trace this model: {_trace_error(exc)[:240]}") from None
    return fn, cf


def _trace_error(exc: BaseException) -> str:
    """The reason in one line. Autograph's ``in user code:`` report ends with the user's
    exception (``ValueError: ...``), after the file and line it came from."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0] != "in user code:" or len(lines) < 2:
        return lines[0]
    where = next((ln for ln in lines if ln.startswith("File ")), "")
    match = re.match(r'File "([^"]+)", line (\d+)', where)
    at = f" (at {relative(match.group(1))}:{match.group(2)})" if match else ""
    return f"{lines[-1]}{at}"


def capture(
    model: Any,
    example_inputs: tuple[Any, ...] | None,
    *,
    name: str,
    method: str = "tf-function",
    signature: Any = None,
) -> ir.Graph:
    with common.tf_state_restored():
        _, cf = concrete_function(model, example_inputs, signature)
    return convert(cf, model, name)[0]


def convert(cf: Any, model: Any, name: str) -> tuple[ir.Graph, dict[str, str]]:
    """The IR of concrete function ``cf``, and its op names -> IR node ids."""
    tf = common.require_tf()
    with common.tf_state_restored():
        graph_def = cf.graph.as_graph_def()
    library = {f.signature.name: f for f in graph_def.library.function}
    params = _variable_names(cf)
    layer_names = _keras_layer_names(model)
    g = ir.Graph(
        name,
        framework="tf",
        capture="tf-function",
        framework_version=tf.__version__,
        signature=[common.tensor_meta(t) for t in cf.graph.inputs if t.dtype.name != "resource"],
    )
    converter = common.GraphConverter(library, params=params, layer_names=layer_names)
    with _gc.paused():
        converter.convert(cf.graph, g, inputs=list(cf.graph.inputs), outputs=list(cf.graph.outputs))
    return g, converter.ids


def _keras_layer_names(model: Any) -> set[str]:
    """Names of a Keras model's layers (and its own), to read Keras 3's ``dense_1`` scopes as ``dense``."""
    try:
        import keras
    except ImportError:
        return set()
    if not isinstance(model, keras.Model):
        return set()
    return {layer.name for layer in model._flatten_layers(include_self=True)}


def _variable_names(cf: Any) -> dict[str, str]:
    """Placeholder op name (inside the function) -> the captured variable's name."""
    by_handle = {}
    for v in cf.graph.variables:
        handle = getattr(v, "handle", None)
        if handle is not None:
            by_handle[id(handle)] = getattr(v, "path", None) or v.name.removesuffix(":0")
    out = {}
    for external, internal in cf.graph.captures:
        name = by_handle.get(id(external))
        if name is not None:
            out[internal.op.name] = name
        elif internal.dtype.name == "resource":
            out[internal.op.name] = internal.op.name
    return out


def retraced(model: Any, first: tuple[Any, ...], second: tuple[Any, ...]) -> bool:
    """Does ``model``'s tf.function need a second concrete function (a retrace) for ``second``?

    A tf.function keeps one concrete function per input signature it has seen; an
    ``input_signature`` with ``None`` dims serves every batch size from one.
    """
    with common.tf_state_restored():
        fn, cf_first = concrete_function(model, first)
        _, cf_second = concrete_function(fn, second)
    return cf_first is not cf_second
