"""Repeated blocks: found by structure, folded in drawings, named in `info`, and a stack that
differs only in depth said in one line by `diff` (issue 20)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from graphscope import diffing, folding, ir
from graphscope.cli import main
from graphscope.rendering import dot

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
SVG = "{http://www.w3.org/2000/svg}"


class Block(torch.nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(16, width)
        self.fc2 = torch.nn.Linear(width, 16)
        self.norm = torch.nn.LayerNorm(16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.fc2(torch.relu(self.fc1(x))))


class Stack(torch.nn.Module):
    def __init__(self, widths: list[int]) -> None:
        super().__init__()
        self.embed = torch.nn.Linear(8, 16)
        self.layers = torch.nn.ModuleList(Block(w) for w in widths)
        self.head = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for layer in self.layers:
            h = layer(h)
        return self.head(h)


def stack(widths: list[int], name: str = "stack") -> ir.Graph:
    from graphscope import tracers

    return tracers.capture(Stack(widths), (torch.randn(2, 8),), fw="torch", method="export", name=name)


def test_identical_layers_are_one_run_found_by_structure() -> None:
    folds = folding.find_folds(stack([32] * 6))
    assert [(f.parent, f.members, f.differing) for f in folds] == [(("layers",), tuple("012345"), ())]
    assert folds[0].nodes == 11  # 6 weights and 5 ops per block


def test_a_block_that_differs_splits_the_run_and_is_named() -> None:
    folds = folding.find_folds(stack([32, 32, 32, 64, 32, 32, 32]))
    assert [f.members for f in folds] == [("0", "1", "2"), ("4", "5", "6")]
    assert all(f.differing == (("3", "the same ops on other shapes"),) for f in folds)


def test_the_drawing_shows_the_first_block_with_its_badge_and_one_box_for_the_rest(tmp_path: Path) -> None:
    graph = stack([32] * 6)
    folded = dot.to_dot(graph)
    full = dot.to_dot(graph, dot.DotOptions(fold=False))
    assert folded.drawn_nodes == full.drawn_nodes - 5 * 5 + 1  # 5 ops per block; weights are folded in
    assert "×6" in folded.source and "layers.1 … 5" in folded.source
    assert "×6" not in full.source
    assert any("folded 6 identical layers blocks" in note for note in folded.notes)

    saved = tmp_path / "g.json"
    ir.save(graph, saved)
    out = tmp_path / "g.svg"
    assert main(["--quiet", "render", str(saved), "-o", str(out)]) == 0
    texts = [t.text or "" for t in ET.fromstring(out.read_text()).iter(f"{SVG}text")]
    assert "×6" in texts
    assert main(["--quiet", "render", str(saved), "-o", str(out), "--no-fold"]) == 0
    assert "×6" not in [t.text for t in ET.fromstring(out.read_text()).iter(f"{SVG}text")]


def test_info_names_the_repeated_blocks_and_the_one_that_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "g.json"
    ir.save(stack([32, 32, 32, 64]), saved)
    assert main(["info", str(saved), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["repeated_blocks"] == [
        {
            "scope": "layers",
            "count": 3,
            "first": "layers.0",
            "last": "layers.2",
            "nodes_each": 11,
            "differing": [{"scope": "layers.3", "how": "the same ops on other shapes"}],
        }
    ]
    assert main(["info", str(saved)]) == 0
    text = " ".join(capsys.readouterr().out.split())  # the row wraps at the terminal's width
    assert (
        "repeated 3 × layers.N (identical, 11 nodes each): layers.0 … layers.2; "
        "layers.3 differs: the same ops on other shapes"
    ) in text


def test_a_diff_of_stacks_that_differ_only_in_depth_says_so_in_one_line() -> None:
    a, b = stack([32] * 3, "shallow"), stack([32] * 6, "deep")
    d = diffing.diff(a, b)
    assert [{k: v for k, v in c.items() if k != "nodes"} for c in d.depth_changes] == [
        {"scope": "layers", "a": 3, "b": 6}
    ]
    assert sorted(d.depth_changes[0]["nodes"]) == sorted(d.added) and len(d.added) == 33
    from rich.console import Console

    console = Console(width=120, record=True, color_system=None)
    console.print(d.renderable())
    text = console.export_text()
    assert "layers: 3 → 6 identical blocks (33 added nodes are the 3 new blocks)" in text
    assert "added:" not in text and "by scope" not in text
    assert d.as_dict()["depth_changes"] == [{"scope": "layers", "a": 3, "b": 6}]


def test_a_highlighted_or_non_finite_node_is_never_folded_away() -> None:
    graph = stack([32] * 6)
    culprit = next(n["id"] for n in graph.nodes() if n["scope"][:2] == ["layers", "4"] and n["kind"] == "op")
    assert "×6" not in dot.to_dot(graph, dot.DotOptions(highlight=[culprit])).source
    graph.node(culprit)["outputs"][0]["stats"] = {"min": 0.0, "max": 1.0, "mean": 0.5, "nan": 3}
    layout = dot.to_dot(graph)
    assert "×6" not in layout.source and not any("folded" in note for note in layout.notes)


def test_at_the_collapse_depth_each_block_is_its_own_box() -> None:
    graph = stack([32] * 6)
    layout = dot.to_dot(graph, dot.DotOptions(collapse=2))  # layers.0 ... layers.5: a box each
    assert layout.source.count("box3d") == 6 and "×6" not in layout.source
    layout = dot.to_dot(graph, dot.DotOptions(collapse=3))  # inside the blocks: the run folds
    assert "×6" in layout.source
