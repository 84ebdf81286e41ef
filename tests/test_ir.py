"""The IR: schema, validation, order helper, JSON round trip and determinism."""

from __future__ import annotations

import json
import os
import string
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphscope import ir
from graphscope.errors import GraphscopeError

from .conftest import or_gate_graph

HOSTILE = ["<script>alert(1)</script>", 'a"b\\', "ünï/cødé", "line\nbreak", "{}[]", "&amp;", "\x00nul", "🙂"]

names = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(alphabet=string.ascii_letters + string.digits + "_./:-", min_size=1, max_size=12),
    st.text(min_size=1, max_size=8),
)
dims = st.one_of(st.integers(min_value=0, max_value=4096), st.sampled_from(["s0", "s1", "batch"]), st.none())
shapes = st.one_of(st.none(), st.lists(dims, max_size=5))
dtypes = st.one_of(st.none(), st.sampled_from(["float32", "float16", "int64", "bool"]))
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**40), 2**40),
        st.floats(allow_nan=False, allow_infinity=False),
        names,
    ),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(names, children, max_size=3)),
    max_leaves=6,
)


@st.composite
def graphs(draw: st.DrawFn, depth: int = 0) -> ir.Graph:
    g = ir.Graph(
        draw(names),
        framework=draw(st.sampled_from([None, "torch", "tf", "onnx"])),
        capture=draw(st.sampled_from([None, "fx", "export", "tf1"])),
        framework_version=draw(st.one_of(st.none(), st.just("2.13.0"))),
        signature=draw(
            st.one_of(
                st.none(), st.lists(st.fixed_dictionaries({"shape": shapes, "dtype": dtypes}), max_size=2)
            )
        ),
        notes=draw(st.lists(names, max_size=2)),
    )
    ids = draw(st.lists(names, min_size=1, max_size=12, unique=True))
    sub_names = draw(st.lists(names, max_size=2 if depth < 2 else 0, unique=True))
    for name in sub_names:
        g.subgraphs[name] = draw(graphs(depth + 1))
    for node_id in ids:
        g.add_node(
            node_id,
            name=draw(names),
            op=draw(names),
            kind=draw(st.sampled_from(sorted(ir.KINDS))),
            scope=draw(st.lists(names, max_size=3)),
            outputs=draw(st.lists(st.fixed_dictionaries({"shape": shapes, "dtype": dtypes}), max_size=2)),
            attrs=draw(st.dictionaries(names, json_values, max_size=3)),
            source=draw(
                st.one_of(st.none(), st.fixed_dictionaries({"file": names, "line": st.integers(1, 10_000)}))
            ),
            subgraphs=draw(st.lists(st.sampled_from(sub_names), max_size=2)) if sub_names else [],
        )
    # Any pair, including self-loops and back edges: cycles are allowed.
    for _ in range(draw(st.integers(0, 20))):
        g.add_edge(
            draw(st.sampled_from(ids)),
            draw(st.sampled_from(ids)),
            src_port=draw(st.integers(0, 3)),
            dst_port=draw(st.integers(0, 3)),
            control=draw(st.booleans()),
        )
    g.inputs = draw(st.lists(st.sampled_from(ids), max_size=2, unique=True))
    g.outputs = draw(st.lists(st.sampled_from(ids), max_size=2, unique=True))
    return g


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_json_round_trip_is_equal_and_byte_identical(g: ir.Graph) -> None:
    g.validate()
    text = ir.dumps(g)
    back = ir.loads(text)
    assert back == g
    assert ir.dumps(back) == text
    json.loads(text)  # strict JSON: no NaN, no Infinity


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_order_is_topological_once_back_edges_are_removed(g: ir.Graph) -> None:
    order = g.order()
    assert sorted(order) == sorted(g.nx.nodes)
    position = {n: i for i, n in enumerate(order)}
    back = {(u, v, k) for u, v, k in g.back_edges()}
    for u, v, k in g.nx.edges(keys=True):
        if (u, v, k) not in back:
            assert position[u] < position[v], (u, v)


@settings(max_examples=50)
@given(graphs())
def test_edge_insertion_order_does_not_change_bytes(g: ir.Graph) -> None:
    shuffled = ir.Graph.from_dict(g.to_dict())
    edges = list(shuffled.nx.edges(keys=True, data=True))
    shuffled.nx.remove_edges_from([(u, v, k) for u, v, k, _ in edges])
    for u, v, _, d in reversed(edges):
        shuffled.nx.add_edge(u, v, **d)
    assert ir.dumps(shuffled) == ir.dumps(g)


def _loop_graph() -> ir.Graph:
    """A TF1-style while loop: Enter -> Merge -> Switch -> body -> NextIteration -> Merge."""
    g = ir.Graph("loop", framework="tf", capture="tf1")
    for node_id, op, kind in [
        ("x", "Placeholder", "input"),
        ("enter", "Enter", "control"),
        ("merge", "Merge", "control"),
        ("switch", "Switch", "control"),
        ("body", "Add", "op"),
        ("next", "NextIteration", "control"),
        ("exit", "Exit", "control"),
    ]:
        g.add_node(node_id, op=op, kind=kind)
    for u, v in [
        ("x", "enter"),
        ("enter", "merge"),
        ("merge", "switch"),
        ("switch", "body"),
        ("body", "next"),
        ("next", "merge"),
        ("switch", "exit"),
    ]:
        g.add_edge(u, v)
    g.inputs, g.outputs = ["x"], ["exit"]
    return g


def test_back_edge_of_a_while_loop_is_next_iteration_to_merge() -> None:
    g = _loop_graph()
    assert [(u, v) for u, v, _ in g.back_edges()] == [("next", "merge")]
    assert g.order() == ["x", "enter", "merge", "switch", "body", "next", "exit"]


def test_every_node_has_every_key_and_unknown_is_null() -> None:
    g = ir.Graph()
    data = g.add_node("n", op="aten::relu")
    assert tuple(data) == ir.NODE_KEYS
    assert data["source"] is None and data["canonical_op"] == "relu" and data["kind"] == "op"


def test_attrs_are_made_json_safe() -> None:
    g = ir.Graph()
    g.add_node("n", op="Const", attrs={"value": list(range(1000)), "eps": float("nan"), "t": (1, 2)})
    attrs = g.node("n")["attrs"]
    assert attrs["value"] == {"len": 1000, "head": [0, 1, 2, 3, 4, 5, 6, 7]}
    assert attrs["eps"] == "nan" and attrs["t"] == [1, 2]


def test_save_is_atomic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    g = _loop_graph()
    out = tmp_path / "g.json"
    ir.save(g, out)
    assert ir.load(out) == g
    assert os.listdir(tmp_path) == ["g.json"]


def test_save_into_missing_folder_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(GraphscopeError, match=r"folder .* does not exist"):
        ir.save(_loop_graph(), tmp_path / "nope" / "g.json")


def _doc(**graph_changes: object) -> str:
    d = _loop_graph().to_dict()
    d.update(graph_changes)
    return json.dumps({"format": ir.FORMAT, "version": ir.VERSION, "graph": d})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json at all", "is not valid JSON"),
        ('{"format": "graphscope.ir", "version": 1, "graph": {"name": "x", "nodes": [', "ends early"),
        ('{"nodes": []}', 'lacks "format": "graphscope.ir"'),
        ('{"format": "onnx"}', "its \"format\" is 'onnx'"),
        (
            '{"format": "graphscope.ir", "version": 99, "graph": {}}',
            "version 99, but this graphscope reads versions 1 and 2",
        ),
        ('{"format": "graphscope.ir", "version": 1}', 'has no "graph" field'),
        ("[1, 2]", "not a graphscope graph"),
        (
            _doc(edges=[{"src": "x", "dst": "ghost", "src_port": 0, "dst_port": 0, "control": False}]),
            "refers to node 'ghost'",
        ),
        (_doc(nodes=[{"id": "x"}]), "has no 'name', 'op'"),
        (_doc(inputs=["ghost"]), "inputs lists 'ghost'"),
        (_doc(nodes="many"), "'nodes' must be a JSON array, not a string"),
        (_doc(nodes=[{**_loop_graph().node("x"), "kind": "weird"}]), "'kind' must be one of"),
        (
            _doc(nodes=[{**_loop_graph().node("x"), "outputs": [{"shape": [-1], "dtype": "f"}]}]),
            "'shape' must be null or a list",
        ),
    ],
    ids=[
        "garbage",
        "truncated",
        "no-format",
        "other-format",
        "version",
        "no-graph",
        "array",
        "dangling-edge",
        "missing-keys",
        "bad-input",
        "wrong-type",
        "bad-kind",
        "bad-shape",
    ],
)
def test_bad_documents_fail_with_one_sentence(text: str, message: str) -> None:
    with pytest.raises(GraphscopeError, match=message.replace("(", r"\(").replace("[", r"\[")) as info:
        ir.loads(text, source="g.json")
    assert str(info.value).startswith("g.json")
    assert "\n" not in str(info.value)


def _backward_graph() -> ir.Graph:
    """x -> mul (forward), its gradient node, and w's gradient accumulation."""
    g = ir.Graph("bw", framework="torch", capture="eager")
    g.add_node("x", op="placeholder", kind="input")
    g.add_node("w", op="get_attr", kind="param")
    g.add_node("mul", op="aten::mul.Tensor")
    g.add_edge("x", "mul")
    g.add_edge("w", "mul", dst_port=1)
    g.add_node("seed", op="grad_seed", kind="const", phase="backward")
    g.add_node("mul_grad", op="MulBackward0", phase="backward", grad_of="mul")
    g.add_node("w_accumulate", op="AccumulateGrad", phase=ir.Phase.BACKWARD, grad_of="w")
    g.add_edge("seed", "mul_grad")
    g.add_edge("mul_grad", "w_accumulate", src_port=1)
    g.inputs, g.outputs = ["x"], ["mul"]
    return g


def test_nodes_are_forward_unless_told_and_round_trip_phase_and_grad_of() -> None:
    g = _backward_graph()
    g.validate()
    assert g.node("x")["phase"] == "forward" and g.node("x")["grad_of"] is None
    assert (g.node("mul_grad")["phase"], g.node("mul_grad")["grad_of"]) == ("backward", "mul")
    assert g.node("w_accumulate")["phase"] == "backward"
    text = ir.dumps(g)
    assert text.startswith('{"format": "graphscope.ir", "version": 2, ')
    assert ir.loads(text) == g and ir.dumps(ir.loads(text)) == text


def test_version_1_files_load_as_forward_nodes() -> None:
    d = _loop_graph().to_dict()
    for node in d["nodes"]:
        del node["phase"], node["grad_of"]
    g = ir.loads(json.dumps({"format": ir.FORMAT, "version": 1, "graph": d}), source="old.json")
    assert {(n["phase"], n["grad_of"]) for n in g.nodes()} == {("forward", None)}
    assert g == _loop_graph()


def test_version_2_files_need_phase_and_grad_of() -> None:
    d = _loop_graph().to_dict()
    del d["nodes"][0]["phase"]
    with pytest.raises(GraphscopeError, match="has no 'phase' field"):
        ir.loads(json.dumps({"format": ir.FORMAT, "version": 2, "graph": d}), source="g.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"phase": "sideways"}, "'phase' must be one of forward, backward, optimizer"),
        ({"grad_of": 3}, "'grad_of' must be a node id or null"),
        ({"grad_of": "ghost"}, "'mul_grad' is the gradient of 'ghost', which is not a node of this graph"),
        ({"grad_of": "mul_grad"}, "'mul_grad' is the gradient of itself"),
        ({"phase": "forward"}, "a forward node differentiates nothing"),
    ],
    ids=["bad-phase", "grad-of-number", "grad-of-ghost", "grad-of-self", "forward-with-grad-of"],
)
def test_bad_phase_or_grad_of_is_one_sentence(change: dict[str, object], message: str) -> None:
    d = _backward_graph().to_dict()
    next(n for n in d["nodes"] if n["id"] == "mul_grad").update(change)
    with pytest.raises(GraphscopeError, match=message.replace("(", r"\(")) as info:
        ir.loads(json.dumps({"format": ir.FORMAT, "version": 2, "graph": d}), source="g.json")
    assert str(info.value).startswith("g.json") and "\n" not in str(info.value)


def test_validate_checks_grad_of_of_built_graphs() -> None:
    g = _backward_graph()
    g.node("mul_grad")["grad_of"] = "ghost"
    with pytest.raises(GraphscopeError, match="not a node of this graph"):
        g.validate()


def test_deep_subgraph_nesting_is_refused() -> None:
    inner: dict[str, object] = ir.Graph("leaf").to_dict()
    for i in range(200):
        outer = ir.Graph(f"g{i}").to_dict()
        outer["subgraphs"] = {"body": inner}
        inner = outer
    with pytest.raises(GraphscopeError, match="nest deeper than 64"):
        ir.loads(json.dumps({"format": ir.FORMAT, "version": 1, "graph": inner}), source="deep.json")


def test_duplicate_node_id_is_refused() -> None:
    g = ir.Graph()
    g.add_node("a", op="x")
    with pytest.raises(ValueError, match="already"):
        g.add_node("a", op="y")


def test_from_dict_does_not_share_the_callers_data() -> None:
    data = or_gate_graph().to_dict()
    g = ir.Graph.from_dict(data)
    g.node("fc0")["scope"].append("changed")
    g.node("fc0")["op"] = "changed"
    assert data["nodes"][1]["scope"] == ["fc0"] and data["nodes"][1]["op"] == "call_module:Linear"


def test_loaded_graph_counts_and_orders_like_networkx() -> None:
    g = ir.loads(ir.dumps(or_gate_graph()))
    assert g.number_of_edges() == g.nx.number_of_edges() == 8
    assert g.number_of_control_edges() == 1
    assert g.order() == list(nx.lexicographical_topological_sort(g.nx, key=list(g.nx).index))
    assert g.back_edges() == []


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.integers(0, 3)), max_size=20),
        )
    )
)
def test_graph_tables_match_what_networkx_builds(spec: tuple[int, list[tuple[int, int, int]]]) -> None:
    # add_node/add_edge (and the loader) write networkx's tables directly: they must hold what
    # networkx's own add_node/add_edge would, parallel edges and their keys included.
    n, edges = spec
    g, reference = ir.Graph("g"), nx.MultiDiGraph()
    for i in range(n):
        reference.add_node(f"n{i}", **g.add_node(f"n{i}", op="op"))
    for u, v, port in edges:
        g.add_edge(f"n{u}", f"n{v}", dst_port=port)
        reference.add_edge(f"n{u}", f"n{v}", src_port=0, dst_port=port, control=False)
    assert dict(g.nx.nodes(data=True)) == dict(reference.nodes(data=True))
    assert sorted(g.nx.edges(keys=True, data="dst_port")) == sorted(
        reference.edges(keys=True, data="dst_port")
    )
    assert {k: dict(v) for k, v in g.nx.pred.items()} == {k: dict(v) for k, v in reference.pred.items()}
    assert g.number_of_edges() == reference.number_of_edges()
    # A saved graph's edges come back in the file's order, so parallel edges' keys may differ.
    loaded = ir.loads(ir.dumps(g))
    assert dict(loaded.nx.nodes(data=True)) == dict(reference.nodes(data=True))
    assert sorted(loaded.nx.edges(data="dst_port")) == sorted(reference.edges(data="dst_port"))
    assert sorted(loaded.nx.in_edges(data="dst_port")) == sorted(reference.in_edges(data="dst_port"))


def test_source_paths_keep_a_symlinked_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from graphscope.tracers import _source

    real = tmp_path / "elsewhere"
    real.mkdir()
    (real / "model.py").write_text("")
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(real)
    monkeypatch.chdir(work)
    assert _source.relative(str(work / "examples" / "model.py")) == "examples/model.py"
    assert _source.relative(str(real / "model.py")) == str(real / "model.py")  # outside: as is


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(_json_values)
def test_compact_writes_what_json_dumps_writes(value: object) -> None:
    expected = json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    assert ir._compact(value) == expected
