"""Real-size models: ResNet-50, a 12-layer nn.TransformerEncoder and GPT-2 (slow, still in CI)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from graphscope import ir, tracers
from graphscope.errors import GraphscopeError

from . import torch_models

pytestmark = [pytest.mark.torch, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


def shape_coverage(graph: ir.Graph) -> float:
    """The share of op nodes whose every output has a complete shape and a dtype."""
    ops = [n for n in graph.nodes() if n["kind"] == "op"]
    complete = [
        n
        for n in ops
        if n["outputs"]
        and all(o["dtype"] and o["shape"] is not None and None not in o["shape"] for o in n["outputs"])
    ]
    return len(complete) / len(ops)


@pytest.mark.parametrize("method", ["export", "fx"])
def test_resnet50_has_shapes_on_99_percent_of_ops(method: str) -> None:
    model, inputs = torch_models.resnet50()
    g = tracers.capture(model, inputs, fw="torch", method=method, name="resnet50")
    assert shape_coverage(g) >= 0.99
    convs = [n for n in g.nodes() if n["canonical_op"] == "conv2d"]
    assert len(convs) == 53
    assert g.node(g.outputs[0])["outputs"] == [{"shape": [1, 1000], "dtype": "float32"}]
    # Scopes follow the module hierarchy: the first conv of the first bottleneck of stage 1.
    assert ["layer1", "0", "conv1"] in [n["scope"] for n in convs]


def test_transformer_encoder_export_has_shapes_and_fx_says_use_export() -> None:
    model, inputs = torch_models.transformer_encoder()
    g = tracers.capture(model, inputs, fw="torch", method="export", name="encoder")
    assert shape_coverage(g) >= 0.99
    assert {n["scope"][:2] == ["layers", "11"] for n in g.nodes() if n["kind"] == "op"} >= {True}
    with pytest.raises(
        GraphscopeError,
        match=r"torch.fx.symbolic_trace cannot capture this model: .*; --method export captures it$",
    ):
        tracers.capture(model, inputs, fw="torch", method="fx")


@pytest.mark.parametrize("method", ["export", "dynamo"])
def test_gpt2_from_config(method: str) -> None:
    pytest.importorskip("transformers")
    model, inputs = torch_models.gpt2()
    g = tracers.capture(model, inputs, fw="torch", method=method, name="gpt2")
    body = g if method == "export" else g.subgraphs["graph_0"]
    ops = {n["canonical_op"] for n in body.nodes()}
    assert {"embedding", "layer_norm", "softmax"} & ops or "scaled_dot_product_attention" in ops
    assert shape_coverage(body) >= 0.95
    ir.loads(ir.dumps(g))


GPT2_FILE = """
import torch
from transformers import GPT2Config, GPT2Model

torch.manual_seed(0)
config = GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=64, vocab_size=100, use_cache=False,
                    return_dict=False)
model = GPT2Model(config).eval()
example_inputs = (torch.randint(0, 100, (2, 8)),)
"""


def test_gpt2_eager_ops_point_at_the_library_lines_that_ran_them(tmp_path: Path) -> None:
    """Through the console script (whose frame is on the stack under every op): each op of a
    library model points at the library's line that ran it, never at bin/graphscope or at
    graphscope's own code."""
    pytest.importorskip("transformers")
    model = tmp_path / "gpt2_model.py"
    model.write_text(GPT2_FILE)
    script = Path(sys.executable).parent / "graphscope"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "g.json"
    run = functools.partial(
        subprocess.run, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    traced = run([str(script), "trace", str(model), "--fw", "torch", "--method", "eager", "-o", str(out)])
    assert traced.returncode == 0, traced.stderr
    stepped = run([str(script), "step", str(model), "--fw", "torch", "--json"])
    assert stepped.returncode == 0, stepped.stderr
    graph = ir.load(out)
    ops = [n for n in graph.nodes() if n["kind"] == "op"]
    sources = [n["source"] for n in ops] + [
        r["source"]
        for r in json.loads(stepped.stdout)["steps"]
        if r["op"] != "placeholder" and r["node"] in graph.nx and graph.node(r["node"])["kind"] == "op"
    ]
    assert len(ops) > 80 and all(sources), [n["id"] for n in ops if not n["source"]]
    files = {Path(s["file"]).name for s in sources}
    assert "modeling_gpt2.py" in files
    for s in sources:
        path = Path(s["file"])
        assert path.name != "graphscope" and "graphscope" not in path.parts, s
        assert "site-packages" in path.parts and path.parts[path.parts.index("site-packages") + 1] in (
            "transformers",
            "torch",
        ), s


def test_gpt2_export_with_another_sequence_length_is_shape_specialised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """export bakes the sequence length into view shapes and arange ends: the same ops and
    edges, so not input-dependent; the sizes are listed."""
    pytest.importorskip("transformers")
    from graphscope.cli import main

    model = tmp_path / "gpt2_model.py"
    model.write_text(GPT2_FILE + "example_inputs_alt = (torch.randint(0, 100, (2, 12)),)\n")
    code = main(["trace", str(model), "--fw", "torch", "--method", "export", "--check-dynamic", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)["dynamic"]
    assert doc["verdict"] == "shape-specialised", doc
    assert doc["added"] == doc["removed"] == doc["changed"] == []
    assert {s["node"].rstrip("_0123456789") for s in doc["specialised"]} <= {
        "view",
        "arange",
        "expand",
        "reshape",
    }
    assert {"node": "arange", "attr": "arg0", "a": 8, "b": 12} in doc["specialised"]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_scripted_transformer_renders_with_its_if_bodies_collapsed(tmp_path: Path) -> None:
    """A scripted 2-layer nn.Transformer: 262 top-level nodes, 11,556 drawn with its prim::If
    bodies. The automatic collapse counts the bodies, so Graphviz gets under the budget."""
    import torch
    from torch import nn

    from graphscope.rendering import dot, svg

    torch.manual_seed(0)
    model = nn.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                           dim_feedforward=64, batch_first=True).eval()  # fmt: skip
    g = tracers.capture(
        model, (torch.randn(2, 5, 32), torch.randn(2, 4, 32)), fw="torch", method="jit-script"
    )
    layout = dot.to_dot(g)
    assert layout.drawn_nodes <= dot.NODE_BUDGET and layout.collapse is not None
    out = tmp_path / "t.svg"
    svg.render(g, out, quiet=True)
    assert out.read_text().startswith("<?xml")
