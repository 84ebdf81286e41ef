"""Graph diff: matching, the exact diff of the edited example, robustness to edits, the command."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphscope import diffing as diff
from graphscope import ir, loader, tracers
from graphscope.cli import main

from .conftest import or_gate_graph

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def chain(n: int, *, ops: list[str] | None = None, prefix: str = "n", scope: str = "") -> ir.Graph:
    """x -> op_0 -> ... -> op_{n-1} -> output, every node in ``scope``."""
    g = ir.Graph("chain", framework="torch", capture="export")
    g.add_node("x", op="placeholder", kind="input")
    prev = "x"
    for i in range(n):
        node_id = f"{prefix}{i}"
        g.add_node(node_id, op=(ops or ["relu"])[i % len(ops or ["relu"])], scope=[scope] if scope else [])
        g.add_edge(prev, node_id)
        prev = node_id
    g.add_node("output", op="output", kind="output")
    g.add_edge(prev, "output")
    g.inputs, g.outputs = ["x"], ["output"]
    return g


def test_identical_graphs_match_completely() -> None:
    g = or_gate_graph()
    d = diff.diff(g, ir.loads(ir.dumps(g)))
    assert d.identical
    assert sorted(d.matched) == sorted((n, n) for n in g.nx)


def test_renamed_nodes_match_by_structure() -> None:
    a = chain(30, ops=["linear", "relu", "tanh"])
    b = chain(30, ops=["linear", "relu", "tanh"], prefix="renamed_")
    d = diff.diff(a, b)
    assert d.identical
    assert dict(d.matched)["n17"] == "renamed_17"


def test_insertion_in_a_repeated_chain_is_one_added_node() -> None:
    a = chain(40, ops=["linear", "relu"])
    b = chain(40, ops=["linear", "relu"])
    # insert a tanh between n20 and n21 of b
    b.nx.remove_edge("n20", "n21")
    b.add_node("inserted", op="tanh")
    b.add_edge("n20", "inserted")
    b.add_edge("inserted", "n21")
    d = diff.diff(a, b)
    assert d.added == ["inserted"] and d.removed == [] and d.changed == []
    assert d.removed_edges == [("n20", "n21")]
    assert all(x == y for x, y in d.matched)


def test_swapped_op_between_matched_neighbours_is_a_change() -> None:
    a = chain(10, ops=["linear", "relu"])
    b = chain(10, ops=["linear", "relu"])
    b.node("n5")["op"] = "gelu"
    b.node("n5")["canonical_op"] = "gelu"
    d = diff.diff(a, b)
    assert d.added == [] and d.removed == []
    assert d.changed == [{"a": "n5", "b": "n5", "fields": {"canonical_op": ["relu", "gelu"]}}]


def test_ignored_layout_ops_are_contracted() -> None:
    a = chain(6, ops=["linear", "relu"])
    b = chain(6, ops=["linear", "relu"])
    b.nx.remove_edge("n2", "n3")
    b.add_node("perm", op="aten.permute.default")
    b.add_edge("n2", "perm")
    b.add_edge("perm", "n3")
    assert b.node("perm")["canonical_op"] == "transpose"
    assert diff.diff(a, b).added == ["perm"]
    d = diff.diff(a, b, ignore=diff.LAYOUT_OPS)
    assert d.identical and d.ignored == (0, 1)


def capture(path: str, method: str = "export") -> ir.Graph:
    return tracers.capture_target(loader.load_target(Path(path), fw="torch"), method=method)


@pytest.mark.torch
@pytest.mark.parametrize("method", ["export", "fx", "eager"])
def test_edited_model_gives_the_exact_diff(method: str) -> None:
    d = diff.diff(capture("examples/edit_v1_torch.py", method), capture("examples/edit_v2_torch.py", method))
    b = d.b
    added_ops = sorted(b.node(n)["canonical_op"] for n in d.added)
    params = 0 if method == "fx" else 2  # fx keeps a module's weights inside its call_module node
    assert added_ops == sorted(["layer_norm"] + ["variable"] * params)
    assert d.removed == []
    swapped = [c for c in d.changed if "canonical_op" in c["fields"]]
    assert [c["fields"]["canonical_op"] for c in swapped] == [["relu", "gelu"]]
    renamed = [c for c in d.changed if "scope" in c["fields"]]
    assert {tuple(c["fields"]["scope"]) for c in renamed} == {("classifier", "head")}
    assert len(d.changed) == 1 + len(renamed)
    rollup = dict(d.rollup())
    assert rollup["norm"] == {"added": 1 + params}
    assert rollup["block2.act"] == {"changed": 1}


@pytest.mark.torch
def test_diff_command_report_json_and_fail_on_change(capsys: pytest.CaptureFixture[str]) -> None:
    v1, v2 = "examples/edit_v1_torch.py", "examples/edit_v2_torch.py"
    assert main(["diff", v1, v2, "--fw", "torch"]) == 0
    out = capsys.readouterr().out
    assert "19 matched, 3 added, 0 removed, 4 changed" in out
    assert "relu_2 -> gelu: canonical_op relu -> gelu" in out
    assert "norm: 3 added" in out

    assert main(["diff", v1, v2, "--fw", "torch", "--json", "--fail-on-change"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) >= {"matched", "added", "removed", "changed", "first_divergence"}
    assert doc["first_divergence"] is None and doc["identical"] is False
    assert ["relu_2", "gelu"] in doc["matched"]

    assert main(["diff", v1, v1, "--fw", "torch", "--fail-on-change"]) == 0
    assert "same structure" in capsys.readouterr().out


@pytest.mark.torch
def test_saved_golden_against_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    golden = tmp_path / "golden.json"
    ir.save(capture("examples/edit_v1_torch.py"), golden)
    assert main(["diff", str(golden), "examples/edit_v1_torch.py", "--fw", "torch", "--fail-on-change"]) == 0
    assert main(["diff", str(golden), "examples/edit_v2_torch.py", "--fw", "torch", "--fail-on-change"]) == 1
    capsys.readouterr()


def test_diff_command_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["diff", str(bad), "tests/golden/torch/or_gate.fx.json"]) == 1
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["diff", "tests/golden/torch/or_gate.fx.json"]) == 2
    assert "give two methods" in capsys.readouterr().err


def test_random_edits_are_recovered() -> None:
    """A small version of bench/bench_diff.py: precision and recall of the matching."""
    rng = random.Random(0)
    a = ir.load(ROOT / "tests/golden/torch/transformer_block.export.json")
    b = ir.loads(ir.dumps(a))
    mapping = {n: f"r_{n}" for n in b.nx}  # every id renamed
    import networkx as nx

    b.nx = nx.relabel_nodes(b.nx, mapping)
    for node_id in b.nx:
        b.nx.nodes[node_id]["id"] = node_id
    b.inputs = [mapping[i] for i in b.inputs]
    b.outputs = [mapping[i] for i in b.outputs]
    d = diff.diff(a, b)
    truth = {x: mapping[x] for x in a.nx}
    correct = sum(1 for x, y in d.matched if truth[x] == y)
    assert correct / len(d.matched) >= 0.95 and correct / len(truth) >= 0.95
    rng.random()


def encoder(
    layers: int, *, deleted: tuple[int, ...] = (), prefix: str = "", reverse: bool = False
) -> ir.Graph:
    """An eager TransformerEncoder's shape: one fused op per layer fed by the previous layer and
    four weights (a [24, 8] and a [24] in ``attn``, two [8] in ``norm``). The ``deleted``
    layers' ops are left out (their weights stay, used by nothing); ``reverse`` lists each
    layer's weights in the other order."""
    g = ir.Graph("enc", framework="torch", capture="eager")
    act = [{"shape": [2, 8], "dtype": "float32"}]
    g.add_node(f"{prefix}x", op="placeholder", kind="input", outputs=act)
    prev = f"{prefix}x"
    for i in range(layers):
        weights = [("attn", "w", [24, 8]), ("attn", "b", [24]), ("norm", "w", [8]), ("norm", "b", [8])]
        for sub, leaf, shape in reversed(weights) if reverse else weights:
            g.add_node(f"{prefix}{i}_{sub}_{leaf}", op="get_attr", kind="param", scope=["layers", str(i), sub],
                       outputs=[{"shape": shape, "dtype": "float32"}])  # fmt: skip
        if i in deleted:
            continue
        op = f"{prefix}layer{i}"
        g.add_node(
            op, op="aten._transformer_encoder_layer_fwd.default", scope=["layers", str(i)], outputs=act
        )
        g.add_edge(prev, op)
        for port, (sub, leaf, _) in enumerate(weights, start=1):
            g.add_edge(f"{prefix}{i}_{sub}_{leaf}", op, dst_port=port)
        prev = op
    g.add_node(f"{prefix}output", op="output", kind="output")
    g.add_edge(prev, f"{prefix}output")
    g.inputs, g.outputs = [f"{prefix}x"], [f"{prefix}output"]
    return g


def test_deleted_layer_of_repeated_blocks_does_not_shift_the_match() -> None:
    """Layer 0's op deleted: layer 1 now reads the input, as layer 0 did, and used to be taken
    for it (then every layer for the one before, by propagation). A node whose scope is on
    both sides is matched within it; the orphaned weights by scope, shape and port order."""
    a = encoder(6)
    d = diff.diff(a, encoder(6, deleted=(0, 3), prefix="r_"))
    assert d.removed == ["layer0", "layer3"] and d.added == [] and d.changed == []
    assert dict(d.matched) == {x: f"r_{x}" for x in a.nx if x not in ("layer0", "layer3")}
    # weights listed in another order: the alike ones of a deleted layer are interchangeable,
    # but stay in their layer
    d = diff.diff(a, encoder(6, deleted=(0, 3), prefix="r_", reverse=True))
    ab = dict(d.matched)
    assert d.removed == ["layer0", "layer3"] and d.added == [] and d.changed == []
    assert all(ab[x] == f"r_{x}" for x in a.nx if not x.startswith(("0_norm", "3_norm", "layer0", "layer3")))
    assert {ab["0_norm_w"], ab["0_norm_b"]} == {"r_0_norm_w", "r_0_norm_b"}


def test_ops_inserted_on_alike_weights_edges_are_looked_through() -> None:
    """A dropout inserted after each of layer 2's two [8] norm weights: the weights no longer
    feed the layer directly, but each still reaches it on its own port."""
    a = encoder(4)
    b = encoder(4, prefix="r_", reverse=True)
    for leaf, port in (("w", 3), ("b", 4)):
        w, inserted = f"r_2_norm_{leaf}", f"drop_{leaf}"
        b.nx.remove_edge(w, "r_layer2")
        b.add_node(inserted, op="aten.dropout.default", scope=["layers", "2", "norm"])
        b.add_edge(w, inserted)
        b.add_edge(inserted, "r_layer2", dst_port=port)
    d = diff.diff(a, b)
    assert sorted(d.added) == ["drop_b", "drop_w"] and d.removed == []
    assert dict(d.matched) == {x: f"r_{x}" for x in a.nx}


@pytest.mark.torch
def test_values_diverge_first_at_the_swapped_activation(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diff", "examples/edit_v1_torch.py", "examples/edit_v2_torch.py", "--fw", "torch",
                 "--values", "--json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    fd = doc["first_divergence"]
    assert (fd["a"], fd["b"], fd["op"]) == ("relu_2", "gelu", "gelu")
    assert fd["source"] == {"file": "examples/edit_v2_torch.py", "line": 18}


@pytest.mark.torch
def test_two_methods_of_one_model_agree_in_value(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diff", "examples/nan_torch.py", "--fw", "torch", "--method-a", "eager", "--method-b", "fx",
                 "--values"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "The matched nodes' values agree." in out  # NaN where the other has NaN is agreement
    assert "values: 8 matched nodes compared" in out


QKV_MODEL = """
import torch
from torch import nn


class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(8, 24)

    def forward(self, x):
        q, k, v = self.qkv(x).split(8, dim=-1)
        k = k.view(2, 4, 2, 4)
        v = v.view(2, 4, 2, 4)
        q = q.view(2, 4, 2, 4)
        return (q * k + v).sum(-1)


torch.manual_seed(0)
model = M()
example_inputs = (torch.randn(2, 4, 8),)
"""


@pytest.mark.torch
def test_export_and_eager_of_a_split_qkv_agree_in_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """export's getitem k of the split is eager's output port k: the views of q, k and v are
    matched through it (not by their ids, which are counters that differ between captures)."""
    model = tmp_path / "qkv.py"
    model.write_text(QKV_MODEL)
    code = main(["diff", str(model), "--fw", "torch", "--method-a", "export", "--method-b", "eager",
                 "--values", "--json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["first_divergence"] is None
    matched = dict(doc["matched"])
    # export: view is k, view_1 v, view_2 q; eager: view_2 is k, view_3 v, view_4 q
    assert (matched["view"], matched["view_1"], matched["view_2"]) == ("view_2", "view_3", "view_4")
    # linear [2, 4, 24] against addmm [8, 24]: the same size, but nothing in the arrays says which
    # element is which; eager's own view of the addmm to [2, 4, 24] does, and is what is compared
    assert doc["values_not_compared"] == []
    assert "values: 9 matched nodes compared" in doc["notes"]


def _attention_model(name: str, edited: bool) -> tuple[Any, tuple[Any, ...]]:
    """A 2-layer transformers model from its config (random weights), with one weight of layer 1
    changed when ``edited``."""
    import torch
    import transformers

    torch.manual_seed(0)
    common = {"vocab_size": 100, "use_cache": False, "return_dict": False}
    if name == "gpt2":
        config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=64, **common)
        model = transformers.GPT2Model(config).eval()
        weight = model.h[1].mlp.c_fc.weight
    else:
        config = transformers.BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4,
                                         intermediate_size=64, max_position_embeddings=64, **common)  # fmt: skip
        model = transformers.BertModel(config).eval()
        weight = model.encoder.layer[1].attention.self.key.weight
    if edited:
        with torch.no_grad():
            weight[0, 0] += 1.0
    return model, (torch.randint(0, 100, (2, 8)),)


@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "diverges_in"),
    [("gpt2", ("h.1.mlp.c_fc", "linear")), ("bert", ("encoder.layer.1.attention.self.key", "linear"))],
)
def test_attention_model_export_and_eager_agree_and_an_edited_weight_is_found(
    name: str, diverges_in: tuple[str, str]
) -> None:
    """No false divergence between two captures of one attention model, and no missed one:
    a weight changed on either side is found where it is first used."""
    pytest.importorskip("transformers")
    from graphscope import stepping

    def run(edited: bool, method: str) -> stepping.Steps:
        model, inputs = _attention_model(name, edited)
        return stepping.step(model, inputs, fw="torch", method=method, keep=stepping.KEEP_ALL)

    export, eager = run(False, "export"), run(False, "eager")
    same = diff.diff(export.graph, eager.graph)
    same.compare_values(export, eager)
    assert same.first_divergence is None
    assert not any(n.startswith("values: 0 ") for n in same.notes)
    for a, b in ((run(True, "export"), eager), (export, run(True, "eager"))):
        d = diff.diff(a.graph, b.graph)
        d.compare_values(a, b)
        assert d.first_divergence is not None
        assert (d.first_divergence["scope"], d.first_divergence["op"]) == diverges_in


def _seq2seq_or_llama(name: str) -> tuple[Any, tuple[Any, ...]]:
    """A tiny BART, T5 or Llama from its config (random weights), taking token ids."""
    import torch
    import transformers

    torch.manual_seed(0)
    common = {"vocab_size": 100, "use_cache": False}
    ids = torch.randint(1, 100, (2, 8), generator=torch.Generator().manual_seed(0))
    if name == "llama":
        config = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                          num_attention_heads=4, num_key_value_heads=2, **common)  # fmt: skip
        return transformers.LlamaModel(config).eval(), (ids,)
    if name == "t5":
        config = transformers.T5Config(d_model=32, d_ff=64, num_layers=2, num_heads=2, d_kv=16, **common)
        model = transformers.T5Model(config).eval()
    else:
        config = transformers.BartConfig(d_model=32, encoder_layers=2, decoder_layers=2, encoder_ffn_dim=64,
                                         decoder_ffn_dim=64, encoder_attention_heads=2,
                                         decoder_attention_heads=2, max_position_embeddings=64, **common)  # fmt: skip
        model = transformers.BartModel(config).eval()

    class Seq2Seq(torch.nn.Module):  # decoder ids as a second positional input
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: Any, y: Any) -> Any:
            return self.model(input_ids=x, decoder_input_ids=y, return_dict=False)[0]

    return Seq2Seq().eval(), (ids, ids[:, :5])


def _mispaired(a: Any, b: Any, ab: dict[str, str]) -> list[str]:
    """Matched ops of A one of whose matched op inputs is matched to a node that is not above
    the op's match in B (within 4 edges: eager decomposes a linear into view, t, addmm, view)."""
    ins_a: dict[str, set[str]] = {}
    ins_b: dict[str, set[str]] = {}
    for g, ins in ((a, ins_a), (b, ins_b)):
        for e in g.edges():
            if not e.control:
                ins.setdefault(e.dst, set()).add(e.src)
    kind_a = {n["id"]: n["kind"] for n in a.nodes()}
    wrong = []
    for x, y in ab.items():
        if kind_a[x] != "op":
            continue
        above, frontier = set(), {y}
        for _ in range(4):
            frontier = {s for f in frontier for s in ins_b.get(f, ())} - above
            above |= frontier
        wrong += [f"{x}->{y} (input {u}->{ab[u]})" for u in ins_a.get(x, ()) if u in ab and
                  kind_a[u] == "op" and ab[u] not in above]  # fmt: skip
    return wrong


@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize("name", ["bart", "t5", "llama"])
def test_export_and_eager_pair_q_with_q_and_k_with_k(name: str) -> None:
    """Attention reads q, k and v at its inputs 0, 1, 2: alike in op and shape, they were left to
    the execution-order alignment, which paired export's view of q_proj with eager's view of
    k_proj (BART), and export's bias-free linear with eager's transpose of its weight (T5,
    Llama). Every matched op's matched inputs are now matched to inputs of its match."""
    pytest.importorskip("transformers")
    import graphscope

    model, inputs = _seq2seq_or_llama(name)
    export = graphscope.trace(model, inputs, fw="torch", method="export")
    eager = graphscope.trace(model, inputs, fw="torch", method="eager")
    ab = diff.diff(export, eager).ab_map()
    assert _mispaired(export, eager, ab) == []
    if name == "bart":  # the view of q_proj's output is the view of q_proj's output
        scope_b = {n["id"]: ".".join(n["scope"]) for n in eager.nodes()}
        q_view = next(e.dst for e in export.edges() if e.src == "linear" and not e.control)
        above = [e.src for e in eager.edges() if e.dst == ab[q_view] and not e.control]
        assert [scope_b[u] for u in above] == ["model.encoder.layers.0.self_attn.q_proj"]


def test_arrays_of_one_size_but_other_shapes_are_not_compared() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 8, 4, 8))
    assert diff._compare_arrays(a, rng.normal(size=(16, 32)), rtol=1e-5, atol=0) is None
    assert diff._compare_arrays(a, a.reshape(16, 32), rtol=1e-5, atol=0) is None  # even if equal
    assert diff._compare_arrays(a, a.reshape(1, 2, 8, 4, 8), rtol=1e-5, atol=0) == ""  # a size-1 dim
    # within one framework, no layout permutation is assumed
    assert diff._compare_arrays(a, a.transpose(0, 3, 1, 2), rtol=1e-5, atol=0) is None


def test_compare_arrays_through_a_layout_permutation() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    nhwc = rng.normal(size=(2, 5, 4, 3)).astype(np.float32)
    nchw = nhwc.transpose(0, 3, 1, 2).copy()
    assert diff._compare_arrays(nhwc, nchw, rtol=1e-5, atol=0, layouts=True) == ""
    wrong = nhwc.transpose(0, 3, 2, 1).reshape(-1)  # a wrong transpose, then a flatten
    verdict = diff._compare_arrays(nhwc.reshape(-1), wrong, rtol=1e-5, atol=0)
    assert verdict and verdict.startswith("max abs difference")
    assert diff._compare_arrays(nhwc, nhwc[:1], rtol=1e-5, atol=0) is None


@pytest.mark.torch
def test_diff_svg_colours_both_graphs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from graphscope.rendering import diff_svg

    d = diff.diff(capture("examples/edit_v1_torch.py"), capture("examples/edit_v2_torch.py"))
    source = diff_svg.diff_dot(d).source
    assert "subgraph cluster_a {" in source and "subgraph cluster_b {" in source
    import re

    node_line = re.compile(r"^\s*(\w+) \[.*<B>")
    line_of = {m.group(1): line for line in source.splitlines() if (m := node_line.match(line))}
    assert sum(diff_svg.COLORS["changed"] in line for line in line_of.values()) == 4  # 2 linear, 2 act
    assert any("layer_norm" in line and diff_svg.COLORS["added"] in line for line in line_of.values())
    assert {name[0] for name in line_of} == {"a", "b"}  # two graphs, no name clash
    out = tmp_path / "d.svg"
    assert main(["diff", "examples/edit_v1_torch.py", "examples/edit_v2_torch.py", "--fw", "torch",
                 "--svg", str(out)]) == 0  # fmt: skip
    assert out.read_text().startswith("<?xml") and "added: 3" in out.read_text()
    capsys.readouterr()


CROSS = ["--fw-a", "tf", "--fw-b", "torch", "--values", "--ignore", "layout", "--json"]


@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.slow
def test_or_gate_in_tf_and_torch_is_the_same_network(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diff", "examples/or_gate_tf.py", "examples/or_gate_torch.py", *CROSS])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    matched = dict(doc["matched"])
    # TF's MatMul + bias add is torch's addmm; TF's variable reads are torch's parameters.
    assert matched["hidden1/MatMul"] == "addmm" and matched["out/Sigmoid"] == "sigmoid_2"
    assert matched["hidden1/MatMul/ReadVariableOp"] == "hidden1_weight"
    assert doc["changed"] == [] and doc["first_divergence"] is None
    assert "values: 7 matched nodes compared" in doc["notes"]


@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.slow
def test_ported_conv_net_wrong_transpose_is_found(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["diff", "examples/conv_port_tf.py", "examples/conv_port_torch.py", *CROSS])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    fd = doc["first_divergence"]
    assert (fd["a"], fd["b"], fd["op"]) == ("head/MatMul", "addmm", "linear")
    first = fd["suspects"][0]
    assert (first["node"], first["op"], first["side"]) == ("permute", "transpose", "b")
    assert first["source"] == {"file": "examples/conv_port_torch.py", "line": 47}
    # the convolutions before it agree, NHWC against NCHW
    assert ["conv2/Relu", "relu_1"] in doc["matched"]


def test_public_api_diff_takes_graphs_or_files(tmp_path: Path) -> None:
    import graphscope

    g = or_gate_graph()
    ir.save(g, tmp_path / "a.json")
    d = graphscope.diff(tmp_path / "a.json", g)
    assert d.identical and len(d.matched) == len(g)
    import graphscope.diffing  # importing the module does not replace the function

    assert callable(graphscope.diff) and graphscope.diff is not graphscope.diffing


def test_the_same_infinity_on_both_sides_agrees_and_a_large_one_does_not_hide_a_difference() -> None:
    import numpy as np

    masked = np.array([[0.5, -np.inf], [1.0, np.inf]])
    # -inf against -inf (an attention mask in both captures) is the same value: inf - inf is NaN,
    # which read as 'NaN on one side only' and reported a divergence of inf
    assert diff._compare_arrays(masked, masked.copy(), rtol=1e-5, atol=0) == ""
    # an infinity must not make the tolerance infinite: 1.0 against 2.0 still differs
    other = masked.copy()
    other[1, 0] = 2.0
    verdict = diff._compare_arrays(masked, other, rtol=1e-5, atol=0)
    assert verdict == "max abs difference 1 (values up to 1)"
    flipped = masked.copy()
    flipped[0, 1] = np.inf  # -inf against +inf
    assert (
        diff._compare_arrays(masked, flipped, rtol=1e-5, atol=0) == "max abs difference inf (values up to 1)"
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=12))
def test_an_array_agrees_with_itself_whatever_it_holds(values: list[float]) -> None:
    import numpy as np

    a = np.array(values, dtype=np.float32)
    assert diff._compare_arrays(a, a.copy(), rtol=1e-5, atol=0) == ""
