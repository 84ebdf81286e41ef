"""TensorFlow -> ONNX through ``tf2onnx``, then read like any ONNX model."""

from __future__ import annotations

from typing import Any

from graphscope import ir
from graphscope.errors import GraphscopeError, first_line
from graphscope.tracers import _tf_common as common

OPSET = 17


def convert(model: Any, example_inputs: tuple[Any, ...] | None, signature: Any = None) -> Any:
    """The ONNX ModelProto tf2onnx makes of a tf.function, Keras model or callable."""
    tf = common.require_tf()
    try:
        import tf2onnx
    except ImportError:
        raise GraphscopeError(
            "converting TensorFlow to ONNX needs tf2onnx: pip install 'graphscope[tf]'"
        ) from None
    from graphscope.tracers.tf_function import concrete_function

    with common.tf_state_restored():
        fn, cf = concrete_function(model, example_inputs, signature)
        # The function's own inputs: the graph's inputs less what it captured (variables, and
        # constants such as a Normalization layer's mean, which are no inputs of the model).
        own = list(cf.inputs)[: len(cf.inputs) - len(cf.captured_inputs)]
        specs = [
            tf.TensorSpec(t.shape, t.dtype, name=f"input_{i}")
            for i, t in enumerate(t for t in own if t.dtype.name != "resource")
        ]
        try:
            proto, _ = tf2onnx.convert.from_function(fn, input_signature=specs, opset=OPSET)
        except Exception as exc:
            raise GraphscopeError(f"tf2onnx cannot convert this model: {reason(exc)}") from None
        _freeze_captured_constants(proto, cf)
    return proto


def _freeze_captured_constants(proto: Any, cf: Any) -> None:
    """tf2onnx leaves the constants a function captured (not variables: those it freezes) as
    graph inputs without values: give them their values, as initializers."""
    from onnx import numpy_helper

    values = {
        inner.name: outer
        for outer, inner in zip(cf.captured_inputs, cf.graph.internal_captures)
        if outer.dtype.name != "resource"
    }
    for graph_input in list(proto.graph.input):
        value = values.get(graph_input.name)
        if value is None:
            continue
        proto.graph.initializer.append(numpy_helper.from_array(value.numpy(), name=graph_input.name))
        proto.graph.input.remove(graph_input)


def reason(exc: BaseException) -> str:
    """The error's sentence. TensorFlow's "in user code:" messages put the user's frames first
    and the reason last (``TypeError: ...``)."""
    text = first_line(exc)
    if text.rstrip().endswith("in user code:"):
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        if lines and lines[-1] != lines[0]:
            return lines[-1]
    return text


def capture(
    model: Any,
    example_inputs: tuple[Any, ...] | None,
    *,
    name: str,
    method: str = "onnx",
    signature: Any = None,
) -> ir.Graph:
    from graphscope.tracers import onnx_graph

    proto = convert(model, example_inputs, signature)
    g = onnx_graph.capture(proto, name=name)
    g.notes.append(f"converted from TensorFlow by tf2onnx (opset {OPSET})")
    return g
