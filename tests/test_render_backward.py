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
EXAMPLES = ["mlp_train.eager-backward", "sqrt_grad.eager-backward"]


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


def test_each_backward_node_is_linked_to_its_drawn_forward_node() -> None:
    g = load("mlp_train.eager-backward")
    source = dot.to_dot(g, dot.DotOptions(legend=False)).source
    links = re.findall(r"^\s*(n\d+) -> (n\d+) \[.*style=\"dotted\".*$", source, re.M)
    lines = node_lines(source)
    drawn_forward_ops = {n["grad_of"] for n in g.nodes() if n["op"].endswith("Backward0")}
    assert len(links) == len(drawn_forward_ops) == 6
    for a, b in links:
        assert "Backward0" not in lines[a] and "Backward0" in lines[b]
    assert 'arrowhead="none"' in source and 'constraint="false"' in source
    # an AccumulateGrad's parameter is folded away: its label names it instead
    assert re.search(r"AccumulateGrad.*∂ hidden\.weight", source)


def test_collapsed_scopes_draw_their_gradients_in_a_box_of_their_own() -> None:
    source = dot.to_dot(load("mlp_train.eager-backward"), dot.DotOptions(collapse=1, legend=False)).source
    titles = re.findall(r"<<B>([^<]+)</B>", source)
    assert {"hidden", "hidden ∇", "out", "out ∇", "loss"} <= set(titles)
    box = next(line for line in node_lines(source).values() if "<B>hidden ∇</B>" in line)
    assert "box3d" in box and 'style="filled,dashed"' in box


def test_legend_explains_gradients_only_in_a_training_step() -> None:
    words = ("a backward node: a gradient", "joins a gradient to the forward node")
    source = dot.to_dot(load("mlp_train.eager-backward")).source
    assert all(w in source for w in words)
    source = dot.to_dot(load("or_gate.eager")).source
    assert not any(w in source for w in words)


@needs_dot
@pytest.mark.parametrize("name", EXAMPLES)
def test_backward_svg_renders(name: str, tmp_path: Path) -> None:
    out = svg.render(load(name), tmp_path / "g.svg", quiet=True)
    assert "Backward0" in out.read_text()


def test_optimizer_nodes_have_a_style_of_their_own() -> None:
    g = ir.load(GOLDEN / "tf" / "mlp_train_tf1.tf1-backward.json")
    source = dot.to_dot(g).source
    updates = [line for line in node_lines(source).values() if "ResourceApplyGradientDescent" in line]
    assert len(updates) == 4
    assert all(dot.OPTIMIZER_STYLE["fillcolor"] in line for line in updates)
    assert "an optimizer node: a parameter update" in source and "a backward node: a gradient" in source
