"""graphscope export: Model Explorer's graph JSON, ONNX for Netron, Graphviz DOT; the CLI command."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphscope import interop, ir
from graphscope.cli import main
from graphscope.interop import model_explorer

from .conftest import or_gate_graph

GOLDEN = Path(__file__).parent / "golden"
ALL_GOLDEN = sorted(GOLDEN.glob("*/*.json"))


def golden(name: str) -> ir.Graph:
    return ir.load(GOLDEN / name)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# -- Model Explorer --------------------------------------------------------------------------------


def _graph_builder() -> ModuleType:
    """model_explorer.graph_builder, the dataclasses its JSON is parsed into. Loaded from its file
    because the package's __init__ starts up its server stack (flask, torch: 2 s)."""
    spec = importlib.util.find_spec("model_explorer")
    pytest.importorskip("dacite", reason="Model Explorer is not installed (pip install -e '.[dev]')")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("Model Explorer is not installed (pip install -e '.[dev]')")
    name = "_graphscope_test_me_graph_builder"
    if name not in sys.modules:
        path = Path(next(iter(spec.submodule_search_locations))) / "graph_builder.py"
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # dacite resolves the dataclasses' string annotations through it
        module_spec.loader.exec_module(module)
    return sys.modules[name]


def load_with_model_explorer(text: str) -> Any:
    """Parse exported JSON as Model Explorer does: its frontend takes an object with `label` and
    `graphs` as a GraphCollection; its Python side reads graphs with dacite into graph_builder's
    dataclasses. strict=True also rejects any key the schema does not have."""
    import dacite

    gb = _graph_builder()
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON a browser can parse"))
    assert doc.get("label") is not None and isinstance(doc.get("graphs"), list)
    return dacite.from_dict(gb.GraphCollection, doc, config=dacite.Config(strict=True))


def test_model_explorer_keeps_nodes_edges_namespaces_and_shapes() -> None:
    g = or_gate_graph()
    collection = load_with_model_explorer(model_explorer.dumps(g))
    assert collection.label == "or_gate"
    (graph,) = collection.graphs
    nodes = {n.id: n for n in graph.nodes}
    assert list(nodes) == [n["id"] for n in g.nodes()]
    assert {i: n.namespace for i, n in nodes.items()} == {n["id"]: "/".join(n["scope"]) for n in g.nodes()}
    assert (
        nodes["fc0"].label == "Linear" and nodes["sigmoid_0"].label == "sigmoid" and nodes["x"].label == "x"
    )
    edges = {
        (e.sourceNodeId, e.sourceNodeOutputId, dst.id, e.targetNodeInputId)
        for dst in graph.nodes
        for e in dst.incomingEdges
    }
    data = {(e.src, str(e.src_port), e.dst, str(e.dst_port)) for e in g.edges() if not e.control}
    assert edges == data | {("x", "0", "output", "control0")}
    (control,) = nodes["output"].inputsMetadata
    assert control.id == "control0" and control.attrs[0].key == "control"
    shapes = {
        i: [kv.value for item in n.outputsMetadata for kv in item.attrs if kv.key == "tensor_shape"]
        for i, n in nodes.items()
    }
    assert shapes["x"] == ["float32[4,2]"] and shapes["fc2"] == ["float32[4,1]"]
    attrs = {kv.key: kv.value for kv in nodes["fc0"].attrs}
    assert attrs["op"] == "call_module:Linear" and attrs["out_features"] == "4"
    assert graph.groupNodeAttributes[""]["framework"] == "torch"
    assert graph.groupNodeAttributes[""]["note 1"] == "a note"


def test_model_explorer_shows_a_gradient_s_phase_and_what_it_differentiates() -> None:
    g = golden("torch/mlp_train.eager-backward.json")
    (graph,) = load_with_model_explorer(model_explorer.dumps(g)).graphs
    attrs = {n.id: {kv.key: kv.value for kv in n.attrs} for n in graph.nodes}
    assert attrs["relu_grad"]["phase"] == "backward" and attrs["relu_grad"]["grad_of"] == "relu"
    assert "phase" not in attrs["relu"] and "grad_of" not in attrs["relu"]  # forward: as before


def test_model_explorer_subgraphs_are_graphs_the_node_links_to() -> None:
    g = golden("torch/data_dependent.jit-script.json")
    collection = load_with_model_explorer(model_explorer.dumps(g))
    graphs = {graph.id: graph for graph in collection.graphs}
    assert list(graphs) == ["data_dependent", "if.else", "if.then"]
    node_if = next(n for n in graphs["data_dependent"].nodes if n.id == "if")
    assert node_if.subgraphIds == ["if.then", "if.else"]
    for name, sub in g.subgraphs.items():
        assert [n.id for n in graphs[name].nodes] == [n["id"] for n in sub.nodes()]
    relu = next(n for n in graphs["if.then"].nodes if n.id == "relu")
    assert [(e.sourceNodeId, e.targetNodeInputId) for e in relu.incomingEdges] == [("captured", "0")]


def test_model_explorer_body_from_an_enclosing_graph_resolves_to_its_path() -> None:
    """TF keeps its function library at the top: a call inside a body names a root-level body."""
    g = ir.Graph("lib")
    g.add_node("x", op="Placeholder", kind="input")
    g.add_node("call", op="PartitionedCall", subgraphs=["f"])
    g.add_edge("x", "call")
    for name in ("f", "g"):
        g.subgraphs[name] = ir.Graph(name)
    g.subgraphs["f"].add_node("inner_call", op="PartitionedCall", subgraphs=["g"])
    g.subgraphs["f"].subgraphs["g"] = ir.Graph("g")  # a nested body named like the top-level one
    g.subgraphs["f"].subgraphs["g"].add_node("y", op="Relu")
    g.subgraphs["g"].add_node("z", op="Tanh")
    g.validate()
    collection = load_with_model_explorer(model_explorer.dumps(g))
    graphs = {graph.id: graph for graph in collection.graphs}
    assert set(graphs) == {"lib", "f", "f/g", "g"}
    assert graphs["f"].nodes[0].subgraphIds == ["f/g"]  # the innermost definition wins, as in the IR
    assert [n.id for n in graphs["f/g"].nodes] == ["y"]


def test_model_explorer_stats_with_nan_stay_valid_json() -> None:
    g = or_gate_graph()
    g.node("fc0")["outputs"][0]["stats"] = {"min": float("nan"), "max": float("inf"), "nan": 3}
    collection = load_with_model_explorer(model_explorer.dumps(g))
    fc0 = next(n for n in collection.graphs[0].nodes if n.id == "fc0")
    values = {kv.key: kv.value for kv in fc0.outputsMetadata[0].attrs}
    assert values["min"] == "nan" and values["max"] == "inf" and values["nan"] == "3"


def test_model_explorer_root_id_never_collides_with_a_subgraph_path() -> None:
    g = ir.Graph("body")
    g.add_node("loop", op="While", kind="control", subgraphs=["body"])
    g.subgraphs["body"] = ir.Graph("body")
    collection = load_with_model_explorer(model_explorer.dumps(g))
    ids = [graph.id for graph in collection.graphs]
    assert ids == ["body_", "body"]
    assert collection.graphs[0].nodes[0].subgraphIds == ["body"]


# -- ONNX ------------------------------------------------------------------------------------------


def to_onnx(g: ir.Graph) -> Any:
    from graphscope.interop import onnx_export

    return onnx_export.to_onnx(g)


def _value_shapes(model: Any) -> dict[str, tuple[int, list[Any]]]:
    out = {}
    for vi in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
        out[vi.name] = (t.elem_type, dims)
    return out


@pytest.mark.onnx
def test_onnx_mapped_graph_passes_the_full_check() -> None:
    import onnx

    result = to_onnx(golden("torch/or_gate.export.json"))
    model = result.model
    onnx.checker.check_model(model, full_check=True)  # strict shape inference agrees with every shape
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Sigmoid"] * 3 + ["Identity"]
    assert all(n.domain == "" for n in model.graph.node)
    gemm = model.graph.node[0]
    assert gemm.name == "hidden1/linear" and list(gemm.input) == ["x", "p_hidden1_weight", "p_hidden1_bias"]
    assert {a.name: a.i for a in gemm.attribute} == {"transB": 1}
    assert "aten.linear.default" in gemm.doc_string
    # Weights are graph inputs with their shapes, the declared input first.
    inputs = [vi.name for vi in model.graph.input]
    assert inputs[0] == "x" and len(inputs) == 7
    params = json.loads({p.key: p.value for p in model.metadata_props}["graphscope.params"])
    assert params == inputs[1:]
    shapes = _value_shapes(model)
    assert shapes["p_hidden1_weight"] == (onnx.TensorProto.FLOAT, [4, 2])
    assert shapes["sigmoid_1"] == (onnx.TensorProto.FLOAT, [4, 4])
    assert [o.name for o in model.graph.output] == ["output"] and shapes["output"][1] == [4, 1]
    assert result.notes()[0] == "7 of 7 nodes are standard ONNX ops"


@pytest.mark.onnx
def test_onnx_unmapped_ops_keep_their_name_in_the_graphscope_domain() -> None:
    import onnx

    result = to_onnx(or_gate_graph())
    model = result.model
    onnx.checker.check_model(model)
    nodes = {n.name: n for n in model.graph.node}
    fc0 = nodes["fc0/fc0"]
    assert (fc0.domain, fc0.op_type) == ("graphscope", "call_module:Linear")
    assert {a.name: onnx.helper.get_attribute_value(a) for a in fc0.attribute} == {
        "in_features": 2,
        "out_features": 4,
    }
    assert nodes["sigmoid_0"].op_type == "Sigmoid" and nodes["sigmoid_0"].domain == ""
    assert {o.domain: o.version for o in model.opset_import} == {"": 20, "graphscope": 1}
    # The control dependency x -> output has no ONNX form: left out, and counted.
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["graphscope.dropped_control_edges"] == "1"
    assert result.custom == {"call_module:Linear": 3}


@pytest.mark.onnx
def test_onnx_control_flow_bodies_are_graph_attributes_and_round_trip() -> None:
    import onnx

    g = golden("torch/data_dependent.jit-script.json")
    model = to_onnx(g).model
    onnx.checker.check_model(model, full_check=True)
    node_if = next(n for n in model.graph.node if n.op_type == "prim::If")
    bodies = {a.name: a.g for a in node_if.attribute if a.type == onnx.AttributeProto.GRAPH}
    assert set(bodies) == {"then", "else"}
    # The body's constant (the 2 of `relu(h) * 2`) is its own node; h is captured from outside.
    assert [n.op_type for n in bodies["then"].node] == ["Relu", "Constant", "Mul", "Identity"]
    assert [vi.name for vi in bodies["then"].input] == ["if.then/captured"]
    for graph, values in ((model.graph, [0]), (bodies["then"], [2])):
        constants = [n for n in graph.node if n.op_type == "Constant"]
        assert [onnx.numpy_helper.to_array(c.attribute[0].t).tolist() for c in constants] == values
    # The NoneType constant is no tensor: kept as the op it is.
    assert any(n.op_type == "prim::Constant" and n.domain == "graphscope" for n in model.graph.node)
    # Its output's rank is unknown, so it is not a graph output (ONNX requires a shape there).
    assert len(model.graph.output) == 0
    assert json.loads({p.key: p.value for p in model.metadata_props}["graphscope.unbound_outputs"]) == [
        "output"
    ]


@pytest.mark.onnx
@pytest.mark.parametrize("name", ["torch/data_dependent.jit-script.json", "torch/or_gate.export.json"])
def test_onnx_round_trips_through_graphscopes_onnx_loader(name: str, tmp_path: Path) -> None:
    import graphscope

    g = golden(name)
    path = tmp_path / "model.onnx"
    interop.write(g, "onnx", path)
    back = graphscope.trace(path)
    assert (len(back), back.number_of_edges()) == (len(g), g.number_of_edges())
    assert sorted(back.subgraphs) == sorted(g.subgraphs)
    for sub_name, sub in g.subgraphs.items():
        assert len(back.subgraphs[sub_name]) == len(sub)
    # Node ids come back as scope/id, the scope as the IR's.
    for n in g.nodes():
        if n["kind"] in ("op", "control"):
            node_id = "/".join([*n["scope"], n["id"]])
            assert back.node(node_id)["scope"] == n["scope"]
    shapes = {n["id"]: n["outputs"] for n in back.nodes() if n["kind"] == "input"}
    first = g.inputs[0]
    assert shapes[first] == g.node(first)["outputs"]


@pytest.mark.onnx
def test_onnx_capture_keeps_its_own_ops_attributes_and_opsets() -> None:
    import onnx

    g = golden("tf/or_gate_tf.onnx.json")
    model = to_onnx(g).model
    onnx.checker.check_model(model, full_check=True)
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    assert {a.name: a.i for a in gemm.attribute} == {"transA": 0, "transB": 0}
    assert {o.domain: o.version for o in model.opset_import} == {"": 17, "ai.onnx.ml": 2}


def _tiny(
    op: str, in_shape: list[int], out_shape: list[int], *, attrs: dict[str, Any] | None = None
) -> ir.Graph:
    g = ir.Graph("tiny", framework="torch", capture="export")
    g.add_node("x", op="placeholder", kind="input", outputs=[{"shape": in_shape, "dtype": "float32"}])
    g.add_node("y", op=op, outputs=[{"shape": out_shape, "dtype": "float32"}], attrs=attrs)
    g.add_node("out", op="output", kind="output", outputs=[{"shape": out_shape, "dtype": "float32"}])
    g.add_edge("x", "y")
    g.add_edge("y", "out")
    g.inputs, g.outputs = ["x"], ["out"]
    return g


@pytest.mark.onnx
@pytest.mark.parametrize(
    ("op", "in_shape", "out_shape", "attrs", "expected"),
    [
        ("aten.relu.default", [2, 3], [2, 3], None, "Relu"),
        ("aten.relu6.default", [2, 3], [2, 3], None, "aten.relu6.default"),  # canonical relu, not Relu
        ("aten.hardtanh.default", [2, 3], [2, 3], None, "aten.hardtanh.default"),
        ("aten.relu.default", [2, 3], [3, 2], None, "aten.relu.default"),  # ONNX infers another shape
        ("aten._softmax.default", [2, 3], [2, 3], {"arg1": 1, "arg2": False}, "Softmax"),
        ("aten.transpose.int", [2, 3, 4], [2, 4, 3], {"arg1": 1, "arg2": 2}, "Transpose"),
        ("aten.transpose.int", [2, 3, 4], [2, 4, 3], {"arg1": 0, "arg2": 2}, "aten.transpose.int"),
        ("aten.add.Tensor", [2, 3], [2, 3], {"alpha": 2}, "aten.add.Tensor"),  # one input and an alpha
    ],
)
def test_onnx_maps_an_op_only_when_onnx_agrees(
    op: str, in_shape: list[int], out_shape: list[int], attrs: dict[str, Any] | None, expected: str
) -> None:
    import onnx

    model = to_onnx(_tiny(op, in_shape, out_shape, attrs=attrs)).model
    onnx.checker.check_model(model)
    node = next(n for n in model.graph.node if n.name == "y")
    assert node.op_type == expected
    assert node.domain == ("" if expected[0].isupper() else "graphscope")


def _stem(conv_attrs: dict[str, Any]) -> ir.Graph:
    """ResNet's stem as torch.export records it: conv, inference batch norm, relu, max pool,
    global pooling, flatten."""
    f32 = "float32"
    g = ir.Graph("stem", framework="torch", capture="export")
    g.add_node("x", op="placeholder", kind="input", outputs=[{"shape": [2, 3, 32, 32], "dtype": f32}])
    params = {"w": [8, 3, 7, 7], "bn_w": [8], "bn_b": [8], "bn_mean": [8], "bn_var": [8]}
    for name, shape in params.items():
        g.add_node(name, op="placeholder", kind="param", outputs=[{"shape": shape, "dtype": f32}])
    chain = [
        ("conv", "aten.conv2d.default", [2, 8, 16, 16], conv_attrs, ["x", "w"]),
        (
            "bn",
            "aten.batch_norm.default",
            [2, 8, 16, 16],
            {"arg5": False, "arg6": 0.1, "arg7": 1e-5, "arg8": False},
            ["conv", "bn_w", "bn_b", "bn_mean", "bn_var"],
        ),
        ("relu", "aten.relu.default", [2, 8, 16, 16], {}, ["bn"]),
        (
            "pool",
            "aten.max_pool2d.default",
            [2, 8, 8, 8],
            {"arg1": [3, 3], "arg2": [2, 2], "arg3": [1, 1]},
            ["relu"],
        ),
        ("gap", "aten.adaptive_avg_pool2d.default", [2, 8, 1, 1], {"arg1": [1, 1]}, ["pool"]),
        ("flat", "aten.flatten.using_ints", [2, 8], {"arg1": 1}, ["gap"]),
    ]
    for node_id, op, shape, attrs, inputs in chain:
        g.add_node(node_id, op=op, outputs=[{"shape": shape, "dtype": f32}], attrs=attrs)
        for port, src in enumerate(inputs):
            g.add_edge(src, node_id, dst_port=port)
    g.inputs, g.outputs = ["x"], ["flat"]
    return g


@pytest.mark.onnx
def test_onnx_maps_a_resnet_stem_to_standard_ops() -> None:
    import onnx

    model = to_onnx(_stem({"arg2": None, "arg3": [2, 2], "arg4": [3, 3]})).model
    onnx.checker.check_model(model, full_check=True)
    ops = {n.name: n for n in model.graph.node}
    assert [n.op_type for n in model.graph.node] == [
        "Conv",
        "BatchNormalization",
        "Relu",
        "MaxPool",
        "GlobalAveragePool",
        "Flatten",
    ]
    conv = {a.name: onnx.helper.get_attribute_value(a) for a in ops["conv"].attribute}
    assert conv == {"strides": [2, 2], "pads": [3, 3, 3, 3], "dilations": [1, 1], "group": 1}
    # padding="same" is not spelled out as pads: kept as the op it is.
    model = to_onnx(_stem({"arg2": None, "arg3": [2, 2], "arg4": "same"})).model
    assert next(n for n in model.graph.node if n.name == "conv").op_type == "aten.conv2d.default"


@pytest.mark.onnx
def test_onnx_binary_op_with_mismatched_dtypes_stays_custom() -> None:
    import onnx

    g = ir.Graph("mixed", framework="torch", capture="jit-trace")
    g.add_node("a", op="prim::Param", kind="input", outputs=[{"shape": [2], "dtype": "float32"}])
    g.add_node("b", op="prim::Param", kind="input", outputs=[{"shape": [], "dtype": "int64"}])
    g.add_node("m", op="aten::mul", outputs=[{"shape": [2], "dtype": "float32"}])
    g.add_edge("a", "m")
    g.add_edge("b", "m", dst_port=1)
    g.inputs, g.outputs = ["a", "b"], ["m"]
    model = to_onnx(g).model
    onnx.checker.check_model(model, full_check=True)
    assert [(n.domain, n.op_type) for n in model.graph.node] == [("graphscope", "aten::mul")]
    assert [o.name for o in model.graph.output] == ["m"]


@pytest.mark.onnx
def test_onnx_tf1_while_loop_drops_back_edges_and_stays_valid() -> None:
    import onnx

    model = to_onnx(golden("tf/control_flow_tf1.tf1.json")).model
    onnx.checker.check_model(model, full_check=True)  # topologically sorted despite the cycle
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["graphscope.dropped_back_edges"] == "2"
    merges = {n.name: list(n.input) for n in model.graph.node if n.op_type == "Merge"}
    # A loop's Merge keeps its entry; its NextIteration input (the back edge) is gone.
    assert merges == {
        "cond/Merge": ["cond/Neg", "cond/mul"],
        "loop/Merge": ["loop/Enter"],
        "loop/Merge_1": ["loop/Enter_1"],
    }


@pytest.mark.onnx
@pytest.mark.parametrize("path", ALL_GOLDEN, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_onnx_every_golden_graph_exports_a_valid_model(path: Path) -> None:
    import onnx

    g = ir.load(path)
    result = to_onnx(g)
    onnx.checker.check_model(result.model, full_check=True)
    # Every node of the graph is in the model (inputs and weights as graph inputs, the rest as
    # nodes named scope/id), and the report counts what the model holds, bodies included.
    names = {n.name for n in result.model.graph.node}
    inputs = {vi.name for vi in result.model.graph.input}
    for n in g.nodes():
        scoped = (
            n["id"]
            if not n["scope"] or n["id"].startswith("/".join(n["scope"]) + "/")
            else "/".join([*n["scope"], n["id"]])
        )
        assert n["id"] in inputs or scoped in names, n["id"]
    written = sum(result.standard.values()) + sum(result.custom.values())
    assert written == _count_nodes(result.model.graph)


def _count_nodes(graph: Any) -> int:
    import onnx

    return sum(
        1 + sum(_count_nodes(a.g) for a in n.attribute if a.type == onnx.AttributeProto.GRAPH)
        for n in graph.node
    )


# -- DOT -------------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_dot_export_is_what_render_lays_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from graphscope.rendering import svg
    from graphscope.rendering.dot import Layout

    src = GOLDEN / "torch" / "data_dependent.jit-script.json"
    assert run(capsys, "-q", "render", str(src), "-o", str(tmp_path / "r.svg"))[0] == 0
    code, out, _ = run(capsys, "export", str(src), "--to", "dot", "-o", "-")
    assert code == 0 and out.startswith("digraph graphscope {")
    laid_out = svg.svg_text(Layout(out, drawn_nodes=0, collapse=None, notes=[]))
    assert laid_out == (tmp_path / "r.svg").read_text()


# -- CLI -------------------------------------------------------------------------------------------


def test_cli_export_model_explorer_writes_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_path = tmp_path / "g.me.json"
    code, out, err = run(
        capsys,
        "export",
        str(GOLDEN / "torch/or_gate.export.json"),
        "--to",
        "model-explorer",
        "-o",
        str(out_path),
    )
    assert code == 0 and out == ""
    assert err.strip() == f"wrote {out_path}"
    doc = json.loads(out_path.read_text())
    assert doc["label"] == "or_gate" and len(doc["graphs"][0]["nodes"]) == 14


def test_cli_export_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "export", str(GOLDEN / "torch/or_gate.export.json"), "--to", "model-explorer", "-o", "-"
    )
    assert code == 0 and err == ""
    assert json.loads(out)["graphs"][0]["id"] == "or_gate"


@pytest.mark.onnx
def test_cli_export_onnx_reports_what_it_decided(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = or_gate_graph()
    src = ir.save(g, tmp_path / "g.json")
    code, _, err = run(capsys, "export", str(src), "--to", "onnx", "-o", str(tmp_path / "g.onnx"))
    assert code == 0
    assert err.splitlines() == [
        "onnx: 4 of 7 nodes are standard ONNX ops",
        "onnx: kept as 'graphscope' ops (no exact ONNX op): call_module:Linear ×3",
        "onnx: left out (ONNX cannot express them): 1 control dependency",
        f"wrote {tmp_path / 'g.onnx'}",
    ]
    assert (tmp_path / "g.onnx").read_bytes()[:2] == b"\x08\x09"  # ir_version 9 (opset 20), the first field


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"format": "onnx", "graph": {}}', "is JSON but not a graphscope graph"),
        (b"\x00\x01binary", "is not valid JSON"),
        (b"", "is empty"),
    ],
)
def test_cli_export_bad_input_is_one_sentence_and_leaves_the_output_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    src = tmp_path / "bad.json"
    src.write_bytes(content)
    out_path = tmp_path / "out.json"
    out_path.write_text("old")
    code, out, err = run(capsys, "export", str(src), "--to", "model-explorer", "-o", str(out_path))
    assert code == 1 and out == ""
    assert err.startswith(f"graphscope: error: {src}") and message in err
    assert len(err.strip().splitlines()) == 1
    assert out_path.read_text() == "old"


def test_cli_export_failure_midway_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(graph: ir.Graph) -> str:
        raise MemoryError

    monkeypatch.setattr(model_explorer, "dumps", broken)
    out_path = tmp_path / "g.me.json"
    code, _, err = run(
        capsys,
        "export",
        str(GOLDEN / "torch/or_gate.export.json"),
        "--to",
        "model-explorer",
        "-o",
        str(out_path),
    )
    assert code == 1 and err.startswith("graphscope: error: ran out of memory")
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file


def test_cli_export_missing_folder_and_onnx_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = str(GOLDEN / "torch/or_gate.export.json")
    code, _, err = run(capsys, "export", src, "--to", "dot", "-o", str(tmp_path / "no" / "g.dot"))
    assert (
        code == 1
        and err.strip()
        == f"graphscope: error: cannot write {tmp_path}/no/g.dot: folder {tmp_path}/no does not exist"
    )
    code, out, err = run(capsys, "export", src, "--to", "onnx", "-o", "-")
    assert code == 1 and out == ""
    assert err.strip() == "graphscope: error: ONNX is a binary format: give a file name with -o, not -"


def test_cli_export_onnx_without_the_onnx_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    code, _, err = run(
        capsys,
        "export",
        str(GOLDEN / "torch/or_gate.export.json"),
        "--to",
        "onnx",
        "-o",
        str(tmp_path / "g.onnx"),
    )
    assert code == 1
    assert (
        err.strip()
        == "graphscope: error: exporting ONNX needs the onnx package: pip install 'graphscope[onnx]'"
    )
    assert not (tmp_path / "g.onnx").exists()


@pytest.mark.torch
@pytest.mark.onnx
def test_a_live_jit_script_capture_exports_to_both_viewers(tmp_path: Path) -> None:
    import onnx

    import graphscope

    example = Path(__file__).resolve().parents[1] / "examples" / "data_dependent_torch.py"
    g = graphscope.trace(example, fw="torch", method="jit-script")
    collection = load_with_model_explorer(model_explorer.dumps(g))
    assert [graph.id for graph in collection.graphs] == [g.name, "if.else", "if.then"]
    interop.write(g, "onnx", tmp_path / "g.onnx")
    model = onnx.load(str(tmp_path / "g.onnx"))
    onnx.checker.check_model(model, full_check=True)
    node_if = next(n for n in model.graph.node if n.op_type == "prim::If")
    assert sorted(a.name for a in node_if.attribute if a.type == onnx.AttributeProto.GRAPH) == [
        "else",
        "then",
    ]


# -- generated graphs ------------------------------------------------------------------------------

_OPS = [
    "aten.relu.default",
    "aten.add.Tensor",
    "aten.linear.default",
    "aten.conv2d.default",
    "aten._softmax.default",
    "MatMul",
    "AddV2",
    "Identity",
    "prim::Constant",
    "Const",
    "prim::If",
    "call_module:Linear",
    'we<ird> "op"',
    "",
]
_DTYPES = ["float32", "int64", "bool", "float16", None, "NoneType", "List[int]", "resource"]
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.integers(-5, 5), max_size=4),
    st.lists(st.lists(st.floats(-2, 2), max_size=3), max_size=3),  # ragged or not
    st.fixed_dictionaries({"len": st.integers(0, 9), "head": st.lists(st.integers(), max_size=2)}),
)


@st.composite
def graphs(draw: Any, depth: int = 0) -> ir.Graph:
    """Small graphs of any shape the IR allows: kinds, ports, control and back edges, unknown
    shapes and dtypes, attribute values of every JSON type, and bodies."""
    g = ir.Graph(
        draw(st.sampled_from(["g", "body", "m o d"])),
        framework=draw(st.sampled_from(["torch", "tf", "onnx"])),
    )
    count = draw(st.integers(1, 8))
    for i in range(count):
        kind = draw(st.sampled_from(["input", "param", "const", "op", "op", "control", "output"]))
        outputs = [
            {
                "shape": draw(
                    st.one_of(
                        st.none(), st.lists(st.one_of(st.integers(0, 5), st.none(), st.just("s")), max_size=4)
                    )
                ),
                "dtype": draw(st.sampled_from(_DTYPES)),
            }
            for _ in range(draw(st.integers(0, 2)))
        ]
        attrs = draw(
            st.dictionaries(st.sampled_from(["value", "arg1", "dim", "T", "alpha", "x"]), _VALUES, max_size=3)
        )
        subgraphs = []
        if depth < 1 and draw(st.booleans()) and kind in ("op", "control"):
            name = f"n{i}.body"
            g.subgraphs[name] = draw(graphs(depth=depth + 1))
            subgraphs.append(name)
        g.add_node(
            f"n{i}",
            op=draw(st.sampled_from(_OPS)),
            kind=kind,
            outputs=outputs,
            attrs=attrs,
            scope=draw(st.lists(st.sampled_from(["a", "b/c", ""]), max_size=2)),
            subgraphs=subgraphs,
        )
    for _ in range(draw(st.integers(0, 2 * count))):
        u, v = draw(st.integers(0, count - 1)), draw(st.integers(0, count - 1))
        g.add_edge(
            f"n{u}",
            f"n{v}",
            src_port=draw(st.integers(0, 2)),
            dst_port=draw(st.integers(0, 3)),
            control=draw(st.booleans()),
        )
    g.inputs = [n["id"] for n in g.nodes() if n["kind"] == "input"]
    g.outputs = [n["id"] for n in g.nodes() if n["kind"] == "output"] or [f"n{count - 1}"]
    return g


_GENERATED = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@_GENERATED
@given(graphs())
def test_any_graph_exports_a_model_explorer_collection_it_reads(g: ir.Graph) -> None:
    collection = load_with_model_explorer(model_explorer.dumps(g))
    assert len(collection.graphs) == 1 + len(list(g.walk_subgraphs()))
    assert [n.id for n in collection.graphs[0].nodes] == [n["id"] for n in g.nodes()]


@pytest.mark.onnx
@_GENERATED
@given(graphs())
def test_any_graph_exports_an_onnx_model_the_checker_accepts(g: ir.Graph) -> None:
    import onnx

    result = to_onnx(g)  # runs onnx.checker.check_model itself, and raises if it fails
    onnx.checker.check_model(result.model, full_check=True)


@pytest.mark.onnx
def test_onnx_odd_but_valid_graphs_found_by_generation() -> None:
    """An input read at port 1, an output node read by another node, an attribute past int64."""
    import onnx

    g = ir.Graph("odd")
    g.add_node("x", op="Input", kind="input", outputs=[{"shape": [2], "dtype": "float32"}] * 2)
    g.add_node("out", op="output", kind="output", outputs=[{"shape": [2], "dtype": "float32"}])
    g.add_node("after", op="Use", attrs={"big": 2**70, "ok": 7})
    g.add_edge("x", "out", src_port=1)
    g.add_edge("out", "after", src_port=1)
    g.inputs, g.outputs = ["x"], ["out"]
    model = to_onnx(g).model
    onnx.checker.check_model(model, full_check=True)
    assert [vi.name for vi in model.graph.input] == ["x:0", "x:1"]
    assert [(n.op_type, list(n.input)) for n in model.graph.node] == [("output", ["x:1"]), ("Use", ["out:1"])]
    big = {a.name: onnx.helper.get_attribute_value(a) for a in model.graph.node[1].attribute}
    assert big == {"big": b"1180591620717411303424", "ok": 7}
