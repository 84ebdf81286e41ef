"""The SVG reads on light and dark pages, and its legend explains what the drawing uses and
nothing else (issue 15's "SVG")."""

from __future__ import annotations

import html
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from graphscope import ir
from graphscope.cli import main
from graphscope.rendering import dot
from graphscope.rendering.diff_svg import diff_dot

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def legend_rows(source: str) -> list[str]:
    """The meanings the legend lists, in order (the right-hand cells of its table)."""
    line = next(ln for ln in source.splitlines() if 'tooltip="legend"' in ln)
    import re

    cells = re.findall(r'<TD ALIGN="LEFT"><FONT COLOR="[^"]+">([^<]*)</FONT></TD></TR>', line)
    return [html.unescape(c) for c in cells]


def test_the_legend_lists_only_what_is_drawn() -> None:
    graph = ir.load(GOLDEN / "torch" / "or_gate.export.json")
    rows = legend_rows(dot.to_dot(graph).source)
    assert rows == ["a model input", "an operation, and the shape of its (first) output", "a model output"]


def test_the_legend_explains_ports_back_edges_and_extra_outputs() -> None:
    graph = ir.load(GOLDEN / "tf" / "control_flow_tf1.tf1.json")
    rows = legend_rows(dot.to_dot(graph).source)
    assert "an edge from output 1 of its op, of shape [2,3]" in rows
    assert "a loop's back edge (NextIteration to Merge)" in rows
    assert "an op with more outputs than the first (here 2 more)" in rows
    assert "control flow: a branch, a loop, a call" in rows
    assert "a scope drawn as one box (--collapse)" not in rows


def test_a_stepped_culprit_is_explained_and_its_counts_are_not_red_on_red() -> None:
    graph = ir.load(GOLDEN / "torch" / "or_gate.export.json")
    node = graph.node("linear")
    node["outputs"][0]["stats"] = {"min": 0.0, "max": 1.0, "mean": 0.5, "nan": 27, "posinf": 0, "neginf": 0}
    source = dot.to_dot(graph, dot.DotOptions(highlight=["linear"], highlight_label="the culprit")).source
    rows = legend_rows(source)
    assert "the culprit" in rows and "red outline: the value held NaN or Inf values" in rows
    culprit = next(ln for ln in source.splitlines() if 'tooltip="linear ' in ln)
    assert dot.HIGHLIGHT["fillcolor"] in culprit
    assert f'COLOR="{dot.NONFINITE_COLOR}"' not in culprit  # red text on the red fill
    assert f'COLOR="{dot.TEXT_ON_HIGHLIGHT}"><B>27 nan</B>' in culprit


@needs_dot
@pytest.mark.torch
def test_step_svg_legend_names_the_culprit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "nan.svg"
    assert main(["step", "examples/nan_torch.py", "--fw", "torch", "--svg", str(out)]) == 0
    texts = [t.text for t in ET.fromstring(out.read_text()).iter(f"{SVG}text")]
    assert "the first non-finite value (the culprit)" in texts
    assert "red outline: the value held NaN or Inf values" in texts
    assert "a scope drawn as one box (--collapse)" not in texts


@needs_dot
def test_every_text_on_the_page_has_a_fill_colour(tmp_path: Path) -> None:
    """Text without a fill is black: invisible on a dark page (the title was)."""
    from graphscope.rendering import svg

    graph = ir.load(GOLDEN / "tf" / "control_flow_tf1.tf1.json")
    out = svg.render(graph, tmp_path / "g.svg", quiet=True)
    root = ET.fromstring(out.read_text())
    # Text inside a node's box sits on its light fill; everything else is on the page.
    in_boxes = {
        id(t)
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "node" and not _in_legend(g)
        for t in g.iter(f"{SVG}text")
    }
    on_page = [t for t in root.iter(f"{SVG}text") if id(t) not in in_boxes]
    assert len(on_page) > 5  # the title, cluster names, edge labels, the legend
    assert [t.text for t in on_page if not t.get("fill")] == []


def _in_legend(group: ET.Element) -> bool:
    return any(t.text == "legend" for t in group.iter(f"{SVG}text"))


def test_the_diff_drawing_has_a_transparent_background() -> None:
    from graphscope import diffing

    a = ir.load(GOLDEN / "torch" / "or_gate.export.json")
    b = ir.load(GOLDEN / "torch" / "or_gate.fx.json")
    source = diff_dot(diffing.diff(a, b)).source
    first = source.splitlines()[1]
    assert 'bgcolor="transparent"' in first


def test_a_graph_break_shows_its_whole_reason_in_a_box() -> None:
    graph = ir.Graph("g", framework="torch", capture="dynamo")
    reason = "the code branches on a tensor's value (generic_jump TensorVariable()) in forward"
    graph.add_node(
        "break_0",
        op="dynamo:graph_break",
        canonical_op="graph_break",
        kind="control",
        attrs={"reason": reason},
    )
    line = next(ln for ln in dot.to_dot(graph).source.splitlines() if 'tooltip="break_0' in ln)
    assert 'shape="hexagon"' not in line
    shown = " ".join(line.split("<BR/>")[1:]).replace("</FONT>", "").replace('<FONT POINT-SIZE="9">', "")
    assert " ".join(shown.split()).startswith("the code branches on a tensor&#x27;s value (generic_jump")
    assert "in forward" in shown and "…" not in shown
