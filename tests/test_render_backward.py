"""Drawing a training step: backward nodes in their own style, linked to their forward nodes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from graphscope import ir
from graphscope.rendering import dot, svg

from .conftest import assert_golden

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed (./setup.sh)"
)
EXAMPLES = ["mlp_train.eager-backward", "sqrt_grad.eager-backward", "mlp_train.export-backward"]


def load(name: str) -> ir.Graph:
    return ir.load(GOLDEN / "torch" / f"{name}.json")


def node_lines(source: str) -> dict[str, str]:
    """DOT name -> its line, for node statements only."""
    return {m.group(1): m.group(0) for m in re.finditer(r"^\s*(n\d+) \[.*$", source, re.M)}


@pytest.mark.parametrize("name", EXAMPLES)
def test_backward_dot_matches_golden(name: str) -> None:
    graph = load(name)
    assert_golden(GOLDEN / "dot" / f"{name}.dot", dot.to_dot(graph, dot.DotOptions(title=graph.name)).source)


def test_backward_nodes_are_dashed_pink_and_forward_nodes_are_not() -> None:
    source = dot.to_dot(load("mlp_train.eager-backward"), dot.DotOptions(legend=False)).source
    lines = node_lines(source)
    backward = [line for line in lines.values() if "Backward0" in line or "AccumulateGrad" in line]
    forward = [line for line in lines.values() if line not in backward]
    assert len(backward) == 10  # the grad_seed is folded into the loss's gradient, as a const
    for line in backward:
        assert 'style="rounded,filled,dashed"' in line and dot.BACKWARD_STYLE["fillcolor"] in line
    for line in forward:
        assert "dashed" not in line and dot.BACKWARD_STYLE["fillcolor"] not in line


def test_each_backward_node_is_beside_its_forward_node_or_linked_to_it() -> None:
    """Uncollapsed, a gradient is drawn in its forward node's box, beside it (no line: dot
    failed to route some of those, and the render with them). Collapsed, a scope's gradients
    have a box of their own in the ``∇`` tree, joined to the forward box by a dotted line."""
    g = load("mlp_train.eager-backward")
    source = dot.to_dot(g, dot.DotOptions(legend=False)).source
    lines, where = node_lines(source), clusters_of(source)
    by_label = {re.search(r'tooltip="([^ "]+)', line).group(1): name for name, line in lines.items()}  # type: ignore[union-attr]
    pairs = [(n["grad_of"], n["id"]) for n in g.nodes() if n["op"].endswith("Backward0")]
    assert len(pairs) == 6 and not re.search(r'style="dotted"', source)
    for forward, grad in pairs:
        assert where[by_label[forward]] == where[by_label[grad]], (forward, grad)
    source = dot.to_dot(g, dot.DotOptions(legend=False, collapse=1)).source
    links = re.findall(r"^\s*(n\d+) -> (n\d+) \[.*style=\"dotted\".*$", source, re.M)
    lines = node_lines(source)
    assert len(links) == 3 and all("∇" not in lines[a] and "∇" in lines[b] for a, b in links)
    assert 'arrowhead="none"' in source and 'constraint="false"' in source
    # an AccumulateGrad's parameter is folded away: its label names it instead
    uncollapsed = dot.to_dot(g, dot.DotOptions(legend=False)).source
    assert re.search(r"AccumulateGrad.*∂ hidden\.weight", uncollapsed)


def test_collapsed_scopes_draw_their_gradients_in_a_box_of_their_own() -> None:
    source = dot.to_dot(load("mlp_train.eager-backward"), dot.DotOptions(collapse=1, legend=False)).source
    titles = re.findall(r"<<B>([^<]+)</B>", source)
    assert {"hidden", "hidden ∇", "out", "out ∇", "loss"} <= set(titles)
    box = next(line for line in node_lines(source).values() if "<B>hidden ∇</B>" in line)
    assert "box3d" in box and 'style="filled,dashed"' in box


def clusters_of(source: str) -> dict[str, list[str]]:
    """DOT node name -> the labels of the clusters it is drawn in, outermost first."""
    stack: list[str] = []
    found: dict[str, list[str]] = {}
    for line in source.splitlines():
        text = line.strip()
        if text.startswith("subgraph cluster_"):
            stack.append("")
        elif text.startswith("label=<") and stack and not stack[-1]:
            stack[-1] = re.sub(r"<[^>]*>|&#160;.*", "", text.removeprefix("label=<").split(">")[0])
        elif text == "}" and stack:
            stack.pop()
        elif m := re.match(r"(n\d+) \[", text):
            found[m.group(1)] = list(stack)
    return found


def nested_training_step() -> ir.Graph:
    """Two layers under ``encoder.layer`` and their gradients, which flow the other way."""
    g = ir.Graph("nested", framework="torch", capture="export")
    shape = [{"shape": [4], "dtype": "float32"}]
    g.add_node("x", op="placeholder", kind="input", outputs=shape)
    g.add_node("seed", op="tangent", canonical_op="grad_seed", kind="input", phase="backward", outputs=shape)
    prev, grad_prev = "x", "seed"
    for i in ("0", "1"):
        scope = ["encoder", "layer", i]
        for op in ("mm", "relu"):
            g.add_node(f"{op}_{i}", op=f"aten.{op}.default", scope=scope, outputs=shape)
            g.add_edge(prev, f"{op}_{i}")
            prev = f"{op}_{i}"
    for i in ("1", "0"):
        scope = ["encoder", "layer", i]
        for op in ("relu", "mm"):
            node_id = f"{op}_{i}_grad"
            g.add_node(
                node_id,
                op="aten.mm.default",
                scope=scope,
                outputs=shape,
                phase="backward",
                grad_of=f"{op}_{i}",
            )
            g.add_edge(grad_prev, node_id)
            grad_prev = node_id
    g.inputs, g.outputs = ["x", "seed"], [prev]
    return g


def test_collapsed_gradients_are_drawn_in_a_tree_of_their_own_below_the_forward_one() -> None:
    """A scope's gradient box sits in ``encoder ∇``, not in the forward ``encoder`` box: the
    backward pass runs the other way, and in one box it stretched that box over the drawing."""
    source = dot.to_dot(nested_training_step(), dot.DotOptions(collapse=2, legend=False)).source
    lines, where = node_lines(source), clusters_of(source)
    box = next(name for name, line in lines.items() if "<B>encoder.layer ∇</B>" in line)
    forward = next(name for name, line in lines.items() if "<B>encoder.layer</B>" in line)
    assert where[box] == ["encoder ∇"] and where[forward] == ["encoder"]
    # uncollapsed, a gradient stays in its forward node's scope
    where = clusters_of(dot.to_dot(nested_training_step(), dot.DotOptions(legend=False)).source)
    assert sorted(map(tuple, where.values())) == sorted(
        [()] * 2 + [("encoder", "layer", "0")] * 4 + [("encoder", "layer", "1")] * 4
    )


def test_legend_explains_gradients_only_in_a_training_step() -> None:
    words = ("a backward node: a gradient", "joins a gradient to the forward node")
    source = dot.to_dot(load("mlp_train.eager-backward"), dot.DotOptions(collapse=1)).source
    assert all(w in source for w in words)
    source = dot.to_dot(load("or_gate.eager")).source
    assert not any(w in source for w in words)


@needs_dot
@pytest.mark.parametrize("name", EXAMPLES)
def test_backward_svg_renders(name: str, tmp_path: Path) -> None:
    out = svg.render(load(name), tmp_path / "g.svg", quiet=True)
    assert ("threshold_backward" if "export" in name else "Backward0") in out.read_text()


def test_optimizer_nodes_have_a_style_of_their_own() -> None:
    g = ir.load(GOLDEN / "tf" / "mlp_train_tf1.tf1-backward.json")
    source = dot.to_dot(g).source
    updates = [line for line in node_lines(source).values() if "ResourceApplyGradientDescent" in line]
    assert len(updates) == 4
    assert all(dot.OPTIMIZER_STYLE["fillcolor"] in line for line in updates)
    assert "an optimizer node: a parameter update" in source and "a backward node: a gradient" in source


def _width(graph: ir.Graph) -> float:
    text = svg.svg_text(dot.to_dot(graph, dot.DotOptions(legend=False)))
    found = re.search(r'<svg width="([\d.]+)pt"', text)
    assert found is not None
    return float(found.group(1))


@needs_dot
@pytest.mark.slow
@pytest.mark.torch
def test_a_resnets_training_step_is_drawn_as_a_ladder_not_a_diagonal() -> None:
    """ResNet-50's training step was 31,000 pt wide (21x its forward pass): each gradient ranked
    below the value it saved, and each AccumulateGrad above its conv's gradient, so every block's
    box took a rank of the next one and dot placed the blocks beside each other, stair by stair.
    A gradient now ranks beside its op and a stored gradient hangs below: 2.4x (3.8x with port
    shapes as xlabels, which spare dot doubling every rank) the forward pass's width, op and
    gradient side by side."""
    import sys

    import torch

    import graphscope

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import resnet50_torch as example
    finally:
        sys.path.remove(str(ROOT / "examples"))
    forward = graphscope.trace(example.model, example.example_inputs, fw="torch")
    step = graphscope.trace(
        example.model, example.example_inputs, fw="torch", backward=True,
        example_targets=(torch.zeros(1, 1000),), loss_fn=lambda out, t: ((out - t) ** 2).mean(),
    )  # fmt: skip
    assert _width(step) < 4 * _width(forward)


def test_batchnorms_counter_update_in_train_mode_is_not_drawn() -> None:
    """``num_batches_tracked += 1`` reads only a buffer and nothing reads it: drawn, it sat alone
    on the top rank of its block's box and stretched the box over the whole drawing."""
    g = ir.Graph("bn", framework="torch", capture="eager")
    g.add_node("x", op="placeholder", kind="input", outputs=[{"shape": [2, 4], "dtype": "float32"}])
    g.add_node("counter", op="buffer", kind="param", scope=["bn"], outputs=[{"shape": [], "dtype": "int64"}])
    g.add_node("add_", op="aten.add_.Tensor", scope=["bn"], outputs=[{"shape": [], "dtype": "int64"}])
    g.add_node(
        "norm",
        op="aten.native_batch_norm.default",
        scope=["bn"],
        outputs=[{"shape": [2, 4], "dtype": "float32"}],
    )
    g.add_node("out", op="output", kind="output")
    g.add_edge("counter", "add_")
    g.add_edge("x", "norm")
    g.add_edge("norm", "out")
    g.inputs, g.outputs = ["x"], ["out"]
    source = dot.to_dot(g, dot.DotOptions(legend=False)).source
    assert "aten.native_batch_norm.default" in source and "add_ (aten.add_.Tensor)" not in source
    assert "add_ (aten.add_.Tensor)" in dot.to_dot(g, dot.DotOptions(legend=False, show_params=True)).source
