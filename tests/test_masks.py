"""stepping.masks on hand-built records (no framework): which infinities are a mask's."""

from __future__ import annotations

from typing import Any

from graphscope import ir
from graphscope.stepping import Record, Steps
from graphscope.stepping.numerics import make


def value(neginf: int = 0, nan: int = 0) -> dict[str, Any]:
    return make([4], "float32", [0.0, 1.0, 0.5, 0.5], (nan, 0, neginf, 0))


def run(nodes: list[tuple[str, str, str, list[str], dict[str, Any], dict[str, Any]]]) -> Steps:
    """``(id, kind, op, inputs, attrs, summary)`` in execution order; the last one is the output."""
    g = ir.Graph("g", framework="torch", capture="eager")
    records: list[Record] = []
    for i, (node_id, kind, op, inputs, attrs, summary) in enumerate(nodes):
        g.add_node(node_id, op=op, kind=kind, attrs=attrs, outputs=[{"shape": [4], "dtype": "float32"}])
        for port, src in enumerate(inputs):
            g.add_edge(src, node_id, dst_port=port)
        by_id = {r.node: r for r in records}
        records.append(
            Record(i, node_id, op, [], None, [summary], [by_id[s].summary for s in inputs], list(inputs))
        )
    g.add_node("output", op="output", kind="output")
    g.add_edge(nodes[-1][0], "output")
    g.outputs = ["output"]
    return Steps(g, records)


def test_a_literal_minus_inf_absorbed_by_softmax_is_masked() -> None:
    steps = run(
        [
            ("x", "input", "placeholder", [], {}, value()),
            ("fill", "op", "aten.masked_fill.Scalar", ["x"], {"arg2": float("-inf")}, value(neginf=2)),
            ("softmax", "op", "aten._softmax.default", ["fill"], {}, value()),
        ]
    )
    assert steps.first_nonfinite is None and steps.masks.masked == {"fill": "fill"}


def test_an_infinity_from_a_weight_or_a_computation_is_never_a_mask() -> None:
    weight = run(
        [
            ("w", "param", "get_attr", [], {}, value(neginf=1)),
            ("softmax", "op", "aten._softmax.default", ["w"], {}, value()),
        ]
    )
    assert weight.first_nonfinite is not None and weight.first_nonfinite.node == "w"
    computed = run(
        [
            ("x", "input", "placeholder", [], {}, value()),
            ("log", "op", "aten.log.default", ["x"], {}, value(neginf=1)),
            ("softmax", "op", "aten._softmax.default", ["log"], {}, value()),
        ]
    )
    assert not computed.masks.masked  # not a mask: softmax drops it, and it is said so
    assert computed.first_nonfinite is None
    dropped = computed.dropped()
    assert dropped is not None and dropped["first"]["node"] == "log" and dropped["absorbed_by"] == ["softmax"]
    assert weight.dropped() is None  # a stored infinity is never dropped


def test_a_nan_made_from_a_mask_counts_with_the_mask_as_origin() -> None:
    steps = run(
        [
            ("x", "input", "placeholder", [], {}, value()),
            ("inf", "const", "Const", [], {}, value(neginf=1)),
            ("select", "op", "SelectV2", ["x", "inf"], {}, value(neginf=4)),
            ("softmax", "op", "Softmax", ["select"], {}, value(nan=4)),
            ("head", "op", "MatMul", ["softmax"], {}, value(nan=4)),
        ]
    )
    bad = steps.first_nonfinite
    assert bad is not None and bad.node == "softmax" and bad.born is False
    origin = steps.origin(bad)
    assert origin is not None and origin["node"] == "inf" and origin["chain"] == ["inf", "select"]
    assert steps.as_dict()["masked"]["nodes"] == 2
