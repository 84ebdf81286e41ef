"""--check-dynamic's three verdicts on hand-built captures (no framework needed)."""

from __future__ import annotations

from typing import Any

import pytest

from graphscope import dynamic, ir


def capture(batch: int, *, attrs: dict[str, Any] | None = None, extra: bool = False) -> ir.Graph:
    """x -> reshape(attrs) -> swish (IdentityN with a per-trace gradient counter) -> output."""
    g = ir.Graph("m", framework="tf", capture="tf-function")
    g.add_node("x", op="Placeholder", kind="input", outputs=[{"shape": [batch, 4], "dtype": "float32"}],
               attrs={"shape": [batch, 4]})  # fmt: skip
    g.add_node("flat", op="Reshape", outputs=[{"shape": [batch * 4], "dtype": "float32"}],
               attrs=attrs if attrs is not None else {"T": "float32"})  # fmt: skip
    g.add_node("swish", op="IdentityN", outputs=[{"shape": [batch * 4], "dtype": "float32"}],
               attrs={"_gradient_op_type": f"CustomGradient-{batch * 1000 + 7}"})  # fmt: skip
    g.add_edge("x", "flat")
    g.add_edge("flat", "swish")
    last = "swish"
    if extra:
        g.add_node("relu", op="Relu", outputs=[{"shape": [batch * 4], "dtype": "float32"}])
        g.add_edge("swish", "relu")
        last = "relu"
    g.add_node("out", op="Identity", kind="output")
    g.add_edge(last, "out")
    g.inputs, g.outputs = ["x"], ["out"]
    return g


def test_per_trace_counters_and_shapes_leave_a_graph_static() -> None:
    report = dynamic.compare(capture(2), capture(3), method="tf-function")
    assert report.verdict == "static" and report.static
    assert report.changed == [] and report.specialised == []
    assert report.as_dict()["verdict"] == "static"
    assert "static: tf-function captured the same ops and edges" in str(report.renderable())


def test_sizes_baked_into_attributes_are_shape_specialised_and_listed() -> None:
    a = capture(2, attrs={"T": "float32", "new_shape": [2, 4], "axis": 1})
    b = capture(3, attrs={"T": "float32", "new_shape": [3, 4], "axis": 1})
    report = dynamic.compare(a, b, method="export")
    assert report.verdict == "shape-specialised" and not report.static
    assert report.specialised == [{"node": "flat", "attr": "new_shape", "a": [2, 4], "b": [3, 4]}]
    doc = report.as_dict()
    assert doc["verdict"] == "shape-specialised" and doc["changed"] == []
    text = " ".join(str(report.renderable()).split())
    assert text.startswith("shape-specialised: export captured the same ops and edges for both inputs")
    assert "1 attribute (flat.new_shape [2,4] -> [3,4])" in text
    assert any("(shape-specialised)" in n for n in report.notes)


def test_other_attributes_ops_or_edges_are_input_dependent() -> None:
    a = capture(2, attrs={"T": "float32", "mode": "then"})
    b = capture(2, attrs={"T": "float32", "mode": "else"})  # a branch recorded in a string
    report = dynamic.compare(a, b, method="jit-trace")
    assert report.verdict == "input-dependent"
    assert report.changed == [{"node": "flat", "fields": ["attrs"]}]
    report = dynamic.compare(capture(2), capture(3, extra=True), method="jit-trace")
    assert report.verdict == "input-dependent" and report.added == ["relu"]
    assert str(report.renderable()).startswith("input-dependent:")


def test_a_length_baked_into_a_float_constant_is_shape_specialised() -> None:
    """keras-hub's GPT-2 builds positions with tf.range over the length as a float32 Const
    (8.0 for 8 tokens): with 6 tokens that Const is 6.0, and nothing else changed. A float that
    is no whole number (a value, not a size) still makes the graph input-dependent."""
    a = capture(2, attrs={"dtype": "float32", "value": 8.0})
    b = capture(2, attrs={"dtype": "float32", "value": 6.0})
    report = dynamic.compare(a, b, method="tf-function")
    assert report.verdict == "shape-specialised"
    assert report.specialised == [{"node": "flat", "attr": "value", "a": 8.0, "b": 6.0}]
    c = capture(2, attrs={"dtype": "float32", "value": 0.125})
    assert dynamic.compare(a, c, method="tf-function").verdict == "input-dependent"


def with_constant(name: str, value: Any = None) -> ir.Graph:
    """capture(2) with a constant, named as a converter names the nodes it makes, read by flat."""
    g = capture(2)
    g.add_node(name, op="Constant", kind="const", outputs=[{"shape": [2], "dtype": "int64"}],
               attrs={} if value is None else {"value": value})  # fmt: skip
    g.add_edge(name, "flat")
    return g


def test_a_converters_counter_in_a_name_is_no_difference() -> None:
    """tf2onnx names what it makes from one counter (``const_fold_opt__10``); two conversions of
    a static model can take different numbers of names on the way (some rewrites depend on the
    batch size), so the same constant is ``const_fold_opt__9`` the second time. Another name
    read by the same node is the same constant too; another value is not."""
    report = dynamic.compare(
        with_constant("const_fold_opt__10"), with_constant("const_fold_opt__9"), method="onnx"
    )
    assert report.verdict == "static", report
    report = dynamic.compare(
        with_constant("shape_a", [4, 1]), with_constant("shape_b", [4, 1]), method="onnx"
    )
    assert report.verdict == "static", report
    report = dynamic.compare(
        with_constant("shape_a", "NHWC"), with_constant("shape_b", "NCHW"), method="onnx"
    )
    assert report.verdict == "input-dependent"


def tf2onnx_like(batch: int, shape_name: str, scale_name: str, second: str = "") -> ir.Graph:
    """What tf2onnx makes of a Keras CNN at a fixed batch: a Reshape whose target (an integer
    initializer) holds the batch, and one float initializer that its dedup of equal constants
    kept for two readers, under whichever of their names survived this conversion (``second``:
    the second reader reads a constant of its own)."""
    pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from graphscope.tracers import onnx_graph

    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", scale_name], ["a"], name="block_1/mul_1"),
            helper.make_node("Mul", ["a", second or scale_name], ["b"], name="block_2/mul_1"),
            helper.make_node("Reshape", ["b", shape_name], ["y"], name="flatten/Reshape"),
        ],
        "m",
        [helper.make_tensor_value_info("x", f32, [batch, 4, 1, 1])],
        [helper.make_tensor_value_info("y", f32, [batch, 4])],
        initializer=[
            numpy_helper.from_array(np.full([1, 4, 1, 1], 0.5, "float32"), scale_name),
            numpy_helper.from_array(np.array([batch, 4], "int64"), shape_name),
            *([numpy_helper.from_array(np.full([1, 4, 1, 1], 0.5, "float32"), second)] if second else []),
        ],
    )
    return onnx_graph.capture(helper.make_model(graph), name="m")


def test_tf2onnx_a_batch_in_a_reshape_target_and_a_deduplicated_constant() -> None:
    """MobileNetV2 through tf2onnx at batch 2 and 3: the Reshape targets hold the batch (so the
    graph is shape-specialised, which graphscope could not see: an initializer's value was not
    recorded), and which of several equal constants tf2onnx's dedup keeps, so which name their
    readers read, varies between conversions (no difference: it called the model input-dependent)."""
    a = tf2onnx_like(2, "new_shape__258", "block_9_BN/batchnorm/mul:0")
    b = tf2onnx_like(3, "new_shape__262", "block_1_BN/batchnorm/mul:0")
    report = dynamic.compare(a, b, method="onnx")
    assert report.verdict == "shape-specialised", report
    assert [(c["attr"], c["a"], c["b"]) for c in report.specialised] == [("value", [2, 4], [3, 4])]
    # Read by other nodes, a constant is another one.
    c = tf2onnx_like(3, "new_shape__262", "block_1_BN/batchnorm/mul:0", second="block_2_BN/batchnorm/mul:0")
    assert dynamic.compare(a, c, method="onnx").verdict == "input-dependent"


def test_a_length_baked_into_a_slice_is_shape_specialised() -> None:
    """Dynamo records BERT's ``position_ids[:, 0:seq_len]`` as getitem with a slice (the IR's
    ``{"slice": [start, stop, step]}``): the length baked in, as in a view's shape."""

    def sliced(stop: int, step: Any = None) -> ir.Graph:
        return capture(2, attrs={"arg1": [{"slice": [None, None, None]}, {"slice": [0, stop, step]}]})

    report = dynamic.compare(sliced(8), sliced(6), method="dynamo")
    assert report.verdict == "shape-specialised", report
    assert report.specialised[0]["attr"] == "arg1"
    assert dynamic.compare(sliced(8), sliced(8, "x"), method="dynamo").verdict == "input-dependent"


def reshape_conv(batch: int, reshape: str, conv: str) -> ir.Graph:
    """x -> Reshape -> Conv -> Relu, the Reshape and Conv under the ids tf2onnx's names gave."""
    g = ir.Graph("m", framework="onnx", capture="onnx")
    f32 = [{"shape": [batch, 8, 1, 1], "dtype": "float32"}]
    g.add_node("x", op="Input", kind="input", outputs=f32)
    g.add_node(reshape, op="Reshape", outputs=f32)
    g.add_node(conv, op="Conv", outputs=f32, attrs={"auto_pad": "NOTSET", "kernel_shape": [1, 1]})
    g.add_node("relu", op="Relu", outputs=f32)
    g.add_edge("x", reshape)
    g.add_edge(reshape, conv)
    g.add_edge(conv, "relu")
    g.inputs, g.outputs = ["x"], ["relu"]
    return g


def test_a_node_renamed_by_the_converter_in_the_same_place_is_the_same_node() -> None:
    """tf2onnx named ResNet-50's Reshape (made of a Transpose) ``Transpose__164`` in one
    conversion and ``conv5_block2_1_bn/mul_1__102`` in the next, the name of the Conv it feeds
    (which then became ``mul_1_2``): the same op between the same nodes is the same node."""
    a = reshape_conv(2, "Transpose", "bn/mul_1")
    b = reshape_conv(3, "bn/mul_1", "bn/mul_1_2")
    assert dynamic.compare(a, b, method="onnx").verdict == "static"
    other = reshape_conv(3, "bn/mul_1", "bn/mul_1_2")
    other.node("bn/mul_1_2")["attrs"]["auto_pad"] = "SAME_UPPER"
    assert dynamic.compare(a, other, method="onnx").verdict == "input-dependent"


def test_a_batch_in_a_summarised_constant_is_shape_specialised() -> None:
    """Keras' LSTM starts from a zeros constant of the batch's size, too big to record: its
    summary's shape ([3, 32], then [4, 32]) is a size baked in, as a Reshape target is."""
    a = capture(2, attrs={"value": {"dtype": "float32", "shape": [3, 32]}})
    b = capture(2, attrs={"value": {"dtype": "float32", "shape": [4, 32]}})
    assert dynamic.compare(a, b, method="tf-function").verdict == "shape-specialised"
    c = capture(2, attrs={"value": {"dtype": "int32", "shape": [3, 32]}})
    assert dynamic.compare(a, c, method="tf-function").verdict == "input-dependent"


def test_a_call_arguments_numbered_name_is_no_difference() -> None:
    """TensorFlow numbers the names it gives a call's arguments per trace (ConvNeXt's
    ``_user_specified_name``: 1804, then 3343)."""
    a = capture(2, attrs={"_user_specified_name": "1804"})
    b = capture(2, attrs={"_user_specified_name": "3343"})
    assert dynamic.compare(a, b, method="tf-function").verdict == "static"
