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


def test_a_number_tensorflow_gives_a_function_per_trace_is_no_difference() -> None:
    """A call names the function it runs (``f``, and ``cond``, ``body``, ``then_branch`` ...)
    after a counter TensorFlow bumps with every trace: ``__inference__conv_xla_frozen_4982``,
    then ``_13046`` (ConvNeXt's depthwise convolution through tf2onnx). Another function is a
    difference."""
    a = capture(2, attrs={"f": "__inference__conv_xla_frozen_4982", "Tout": ["float32"]})
    b = capture(3, attrs={"f": "__inference__conv_xla_frozen_13046", "Tout": ["float32"]})
    assert dynamic.compare(a, b, method="onnx").verdict == "static"
    c = capture(3, attrs={"f": "__inference__pool_13046", "Tout": ["float32"]})
    assert dynamic.compare(a, c, method="onnx").verdict == "input-dependent"


def test_function_arguments_pair_by_position_not_by_name() -> None:
    """A while loop's condition takes the loop's variables, and those it does not read are
    arguments TensorFlow names after the function's per-trace number
    (``while_cond_162___redundant_placeholder0``, then ``while_cond_425_...``): the i-th
    argument of one trace is the i-th of the other. Another argument's dtype is a difference."""

    def cond(number: int, dtypes: tuple[str, ...] = ("variant", "resource")) -> ir.Graph:
        g = ir.Graph("while_cond", framework="tf", capture="tf-function")
        g.add_node("i", op="Placeholder", kind="input", outputs=[{"shape": [], "dtype": "int32"}])
        for k, dtype in enumerate(dtypes):
            g.add_node(f"while_cond_{number}___redundant_placeholder{k}", op="Placeholder", kind="input",
                       outputs=[{"shape": None, "dtype": dtype}])  # fmt: skip
        g.add_node(
            "n", op="Const", kind="const", outputs=[{"shape": [], "dtype": "int32"}], attrs={"value": 6}
        )
        g.add_node("less", op="Less", outputs=[{"shape": [], "dtype": "bool"}])
        g.add_edge("i", "less")
        g.add_edge("n", "less", dst_port=1)
        g.inputs = ["i", *(f"while_cond_{number}___redundant_placeholder{k}" for k in range(len(dtypes)))]
        g.outputs = ["less"]
        return g

    def looped(number: int, **kw: Any) -> ir.Graph:
        g = capture(2)
        g.subgraphs["while.cond"] = cond(number, **kw)
        return g

    assert dynamic.compare(looped(162), looped(425), method="tf-function").verdict == "static"
    other = looped(425, dtypes=("resource", "variant"))
    assert dynamic.compare(looped(162), other, method="tf-function").verdict == "input-dependent"


def onnx_cast(to: int) -> ir.Graph:
    """x -> Cast(to) -> Relu, an ONNX graph built by hand."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from graphscope.tracers import onnx_graph

    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["c"], to=to), helper.make_node("Relu", ["c"], ["y"])],
        "m",
        [helper.make_tensor_value_info("x", TensorProto.INT32, [2, 4])],
        [helper.make_tensor_value_info("y", to, [2, 4])],
    )
    return onnx_graph.capture(helper.make_model(graph), name="m")


def test_an_onnx_casts_target_is_a_dtype_not_a_size() -> None:
    """ONNX ``Cast``'s ``to`` is a dtype's code (1 float32, 7 int64): another one is another
    computation, not a size baked in."""
    from onnx import TensorProto

    a, b = onnx_cast(TensorProto.FLOAT), onnx_cast(TensorProto.DOUBLE)
    report = dynamic.compare(a, b, method="onnx")
    assert report.verdict == "input-dependent", report
    assert report.specialised == []


def test_a_constant_whose_shape_changed_is_a_size_baked_in() -> None:
    """Keras' LSTM starts from zeros of the batch's size: a small one is recorded whole (two
    rows of zeros, then three), and tf2onnx makes it an initializer whose value is not recorded
    but whose shape is the batch's. Either way the constant is the same node with a size baked
    in, not another op."""

    def zeros(batch: int, recorded: bool) -> ir.Graph:
        g = capture(batch)
        value = {"value": [[0.0] * 3] * batch} if recorded else {}
        g.add_node("zeros", op="Const", kind="const", outputs=[{"shape": [batch, 3], "dtype": "float32"}],
                   attrs=value)  # fmt: skip
        g.add_edge("zeros", "flat", dst_port=1)
        return g

    for recorded in (True, False):
        report = dynamic.compare(zeros(2, recorded), zeros(3, recorded), method="tf-function")
        assert report.verdict == "shape-specialised", report
        assert report.specialised == [{"node": "zeros", "attr": "shape", "a": [2, 3], "b": [3, 3]}]


def equal_constants(kept: tuple[str, str]) -> ir.Graph:
    """ConvNeXt's layer norms through tf2onnx: three blocks' ``mul`` read one scale and their
    ``add_1`` one offset (tf2onnx keeps one of several equal constants), named after whichever
    block's constant survived this conversion: ``kept``, the scale's block and the offset's."""
    g = ir.Graph("m", framework="onnx", capture="onnx")
    f32 = [{"shape": [2, 4], "dtype": "float32"}]
    g.add_node("x", op="Input", kind="input", outputs=f32)
    scale, offset = f"block_{kept[0]}/Reshape:0", f"block_{kept[1]}/Reshape_1:0"
    for name in (scale, offset):
        g.add_node(name, op="Initializer", kind="param", scope=[name.split("/")[0]],
                   outputs=[{"shape": [4], "dtype": "float32"}])  # fmt: skip
    last = "x"
    for k in range(3):
        g.add_node(f"block_{k}/mul", op="Mul", scope=[f"block_{k}"], outputs=f32)
        g.add_node(f"block_{k}/add_1", op="Add", scope=[f"block_{k}"], outputs=f32)
        g.add_edge(last, f"block_{k}/mul")
        g.add_edge(scale, f"block_{k}/mul", dst_port=1)
        g.add_edge(f"block_{k}/mul", f"block_{k}/add_1")
        g.add_edge(offset, f"block_{k}/add_1", dst_port=1)
        last = f"block_{k}/add_1"
    g.inputs, g.outputs = ["x"], [last]
    return g


def test_equal_constants_pair_by_their_readers_not_by_their_names() -> None:
    """Which name tf2onnx keeps for equal constants varies between conversions: in one, the
    scale is block 0's and the offset block 1's; in the next, block 2's and block 0's. The
    constant is the one its readers read, whatever its name."""
    a, b = equal_constants(("0", "1")), equal_constants(("2", "0"))
    report = dynamic.compare(a, b, method="onnx")
    assert report.verdict == "static", report


def test_a_node_whose_inputs_do_not_pair_is_a_difference() -> None:
    """The same ops under the same names, but a Sub reading its inputs the other way round:
    another computation, however alike the nodes."""

    def sub(first: str, second: str) -> ir.Graph:
        g = ir.Graph("m", framework="onnx", capture="onnx")
        f32 = [{"shape": [2], "dtype": "float32"}]
        for name in ("x", "y"):
            g.add_node(name, op="Input", kind="input", outputs=f32)
        g.add_node("sub", op="Sub", outputs=f32)
        g.add_edge(first, "sub")
        g.add_edge(second, "sub", dst_port=1)
        g.inputs, g.outputs = ["x", "y"], ["sub"]
        return g

    report = dynamic.compare(sub("x", "y"), sub("y", "x"), method="onnx")
    assert report.verdict == "input-dependent", report
    assert report.changed == [{"node": "sub", "fields": ["inputs"]}]


def masked_lstm() -> Any:
    """A tiny Keras LSTM behind a Masking layer, over sequences of any length."""
    import keras

    keras.utils.set_random_seed(0)
    # Named: Keras numbers default names per process (sequential_6 after six other models)
    layers = [
        keras.Input((None, 2)),
        keras.layers.Masking(0.0, name="mask"),
        keras.layers.LSTM(3, name="lstm"),
    ]
    return keras.Sequential(layers, name="masked")


@pytest.mark.tf
def test_a_keras_lstms_loop_over_another_length_or_batch_is_shape_specialised() -> None:
    """tf.function makes Keras' LSTM a While loop whose trip count is the sequence's length, a
    constant (5, then 4): the same graph with another size baked in, as its zeros of the
    batch's size are. Not input-dependent: which branch runs does not depend on the values."""
    import numpy as np

    import graphscope

    m, x = masked_lstm(), np.ones((2, 5, 2), "float32")

    def trace(inputs: Any) -> ir.Graph:
        return graphscope.trace(m, (inputs,), fw="tf", method="tf-function", name="m")

    first = trace(x)
    shorter = dynamic.compare(first, trace(x[:, :4]), method="tf-function")
    assert shorter.verdict == "shape-specialised", shorter
    assert {"node": "masked/lstm/while.cond/masked/lstm/while/Less/y", "attr": "value", "a": 5,
            "b": 4} in shorter.specialised  # fmt: skip
    wider = dynamic.compare(first, trace(np.ones((3, 5, 2), "float32")), method="tf-function")
    assert wider.verdict == "shape-specialised", wider
    assert {"node": "masked/lstm/zeros", "attr": "shape", "a": [2, 3], "b": [3, 3]} in wider.specialised


@pytest.mark.tf
@pytest.mark.onnx
def test_a_keras_lstm_through_tf2onnx_bakes_the_batch_into_its_initial_state() -> None:
    """tf2onnx converts at the example's batch and folds the LSTM's zero state into an
    initializer of that batch's size: the ONNX graph holds for that batch only."""
    pytest.importorskip("tf2onnx")
    import numpy as np

    import graphscope

    m = masked_lstm()
    a, b = (
        graphscope.trace(m, (np.ones((n, 5, 2), "float32"),), fw="tf", method="onnx", name="m")
        for n in (2, 3)
    )
    report = dynamic.compare(a, b, method="onnx")
    assert report.verdict == "shape-specialised", report
    assert any(c["attr"] == "shape" and c["a"][0] == 2 and c["b"][0] == 3 for c in report.specialised)


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.onnx
def test_keras_convnext_through_tf2onnx_at_two_batches_is_shape_specialised() -> None:
    """ConvNeXt through tf2onnx at batch 2, then 3: tf2onnx keeps one of each block's equal
    layer-norm constants under whichever name, leaves the depthwise convolutions as calls of
    functions numbered per trace, and bakes the batch into Reshape targets. It was reported
    input-dependent; the same graph with the batch baked in is shape-specialised."""
    pytest.importorskip("tf2onnx")
    import keras
    import numpy as np

    import graphscope

    keras.utils.set_random_seed(0)
    m = keras.applications.ConvNeXtTiny(weights=None, input_shape=(32, 32, 3), classes=10)
    a, b = (
        graphscope.trace(m, (np.zeros((n, 32, 32, 3), "float32"),), fw="tf", method="onnx", name="m")
        for n in (2, 3)
    )
    report = dynamic.compare(a, b, method="onnx")
    assert report.verdict == "shape-specialised", report.summary()
    assert report.added == report.removed == report.changed == []
    assert any(c["a"] == [2, 768] and c["b"] == [3, 768] for c in report.specialised)


@pytest.mark.torch
@pytest.mark.parametrize("method", ["jit-trace", "eager"])
def test_a_branch_between_two_layers_alike_is_input_dependent(method: str) -> None:
    """The input's sign picks layer a or layer b: the same ops and edges either way, another
    weight. Paired by place, the weights looked the same and jit-trace said static; a PyTorch
    parameter's name is its module path, the same in every capture, so another name is another
    weight."""
    torch = pytest.importorskip("torch")
    import graphscope

    class Pick(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Linear(4, 4)
            self.b = torch.nn.Linear(4, 4)

        def forward(self, x: Any) -> Any:
            return self.a(x) if x.sum() > 0 else self.b(x)

    model = Pick()
    one = graphscope.trace(model, (torch.ones(2, 4),), fw="torch", method=method)
    other = graphscope.trace(model, (-torch.ones(3, 4),), fw="torch", method=method)
    report = dynamic.compare(one, other, method=method)
    assert report.verdict == "input-dependent"
    same = graphscope.trace(model, (torch.ones(3, 4),), fw="torch", method=method)
    assert dynamic.compare(one, same, method=method).verdict == "static"
