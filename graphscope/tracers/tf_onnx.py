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
        specs = [
            tf.TensorSpec(t.shape, t.dtype, name=f"input_{i}")
            for i, t in enumerate(t for t in cf.graph.inputs if t.dtype.name != "resource")
        ]
        try:
            proto, _ = tf2onnx.convert.from_function(fn, input_signature=specs, opset=OPSET)
        except Exception as exc:
            raise GraphscopeError(f"tf2onnx cannot convert this model: {first_line(exc)}") from None
    return proto


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
