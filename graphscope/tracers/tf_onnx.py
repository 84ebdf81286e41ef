"""TensorFlow -> ONNX through ``tf2onnx``, then read like any ONNX model."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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
        # The caller's inputs only: the graph's inputs also hold what the function captured
        # (variables' handles, and constants such as a Normalization layer's mean).
        given = [s for s in tf.nest.flatten(cf.structured_input_signature) if isinstance(s, tf.TensorSpec)]
        specs = [tf.TensorSpec(s.shape, s.dtype, name=f"input_{i}") for i, s in enumerate(given)]
        args = cf.structured_input_signature[0]
        if len(tf.nest.flatten(args)) == len(given) and any(isinstance(a, (dict, list, tuple)) for a in args):
            # tf2onnx feeds the flat tensors positionally: a model taking a dict (keras-hub's
            # backbones) gets them packed back into its structure.
            nested = fn
            fn = tf.function(lambda *flat: nested(*tf.nest.pack_sequence_as(args, list(flat))))
        try:
            with _names_numbered_afresh():
                proto, _ = tf2onnx.convert.from_function(fn, input_signature=specs, opset=OPSET)
        except Exception as exc:
            raise GraphscopeError(f"tf2onnx cannot convert this model: {tf_reason(exc)}") from None
        _captured_constants_as_initializers(proto, cf, len(given))
    return proto


@contextlib.contextmanager
def _names_numbered_afresh() -> Iterator[None]:
    """tf2onnx names the nodes it adds from one counter per process (``new_shape__272``): a
    second conversion of the same model would name them anew (``new_shape__543``), and
    --check-dynamic would see other nodes. Each conversion counts from the start, as in a
    fresh process; the names only need to be unique within one graph. The numbers also decide
    which of several equal constants tf2onnx keeps (it sorts nodes by name), so the converter is
    imported first: importing it takes a number too."""
    from tf2onnx import convert, utils  # noqa: F401

    before = utils.INTERNAL_NAME
    utils.INTERNAL_NAME = 1
    try:
        yield
    finally:
        utils.INTERNAL_NAME = max(before, utils.INTERNAL_NAME)


def _captured_constants_as_initializers(proto: Any, cf: Any, n_given: int) -> None:
    """tf2onnx leaves the constants a function captured (a Normalization layer's mean and
    variance) as graph inputs with no value: they become initializers holding the value."""
    from onnx import numpy_helper

    values = {
        placeholder.name: captured
        for placeholder, captured in zip(cf.graph.inputs[n_given:], cf.captured_inputs)
        if captured.dtype.name != "resource"
    }
    for graph_input in list(proto.graph.input):
        value = values.get(graph_input.name)
        if value is not None:
            proto.graph.input.remove(graph_input)
            proto.graph.initializer.append(numpy_helper.from_array(value.numpy(), graph_input.name))


def tf_reason(exc: BaseException) -> str:
    """The line that says what went wrong: a TensorFlow error raised while tracing starts with
    ``in user code:`` and a stack, and ends with the error itself."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if lines and lines[0].startswith("in user code:"):
        errors = [ln for ln in lines if ln.split(":", 1)[0].endswith(("Error", "Exception"))]
        return (errors[-1] if errors else lines[-1])[:240]
    return first_line(exc)


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
