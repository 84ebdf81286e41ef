"""--check-dynamic's three verdicts on hand-built captures (no framework needed)."""

from __future__ import annotations

from typing import Any

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


def with_constant(name: str) -> ir.Graph:
    """capture(2) with a constant, named as a converter names the nodes it makes, read by flat."""
    g = capture(2)
    g.add_node(name, op="Constant", kind="const", outputs=[{"shape": [2], "dtype": "int64"}])
    g.add_edge(name, "flat")
    return g


def test_a_converters_counter_in_a_name_is_no_difference() -> None:
    """tf2onnx names what it makes from one counter (``const_fold_opt__10``); two conversions of
    a static model can take different numbers of names on the way (some rewrites depend on the
    batch size), so the same constant is ``const_fold_opt__9`` the second time. Another name is
    still another node."""
    report = dynamic.compare(
        with_constant("const_fold_opt__10"), with_constant("const_fold_opt__9"), method="onnx"
    )
    assert report.verdict == "static", report
    report = dynamic.compare(with_constant("shape_a"), with_constant("shape_b"), method="onnx")
    assert report.verdict == "input-dependent"
