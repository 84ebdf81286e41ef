"""Text output a user reads in a terminal: the step table at 80 and 100 columns, the diff's
changed fields, the by-scope list, TF1 bookkeeping in a diff, and `info` on a graph of calls
(issue 15's "Text output")."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from graphscope import diffing, ir
from graphscope.cli import main
from graphscope.rendering.steps import steps_renderable

ROOT = Path(__file__).resolve().parents[1]


def printed(renderable: object, width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return [line.rstrip() for line in out.getvalue().splitlines()]


@pytest.mark.tf
@pytest.mark.parametrize("width", [80, 100])
def test_the_step_table_never_wraps_a_node_id_and_keeps_mean_from_90_columns(
    width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import graphscope

    monkeypatch.chdir(ROOT)
    steps = graphscope.step("examples/nan_tf.py", fw="tf")
    lines = printed(steps_renderable(steps, width=width), width)
    assert max(len(line) for line in lines) <= width
    header = next(line for line in lines if line.lstrip().startswith("#"))
    assert ("mean" in header) == (width >= 90)
    rows = [line for line in lines if line[:6].strip().isdigit()]
    assert len(rows) == len(steps)  # one line per step: nothing wrapped
    for rec, row in zip(steps, rows, strict=True):
        assert row.split()[1] == rec.node or "…" in row.split()[1]
    # At 100 columns every id up to the culprit is whole (the ops give way first: they are in
    # the ids); past it, `head/reduce_std/reduce_variance/.../reduction_indices` is cut in its middle.
    if width == 100:
        culprit = steps.first_nonfinite
        assert culprit is not None
        whole = [row.split()[1] == rec.node for rec, row in zip(steps, rows, strict=True)]
        assert all(whole[: culprit.index + 1]) and not all(whole)


def _two_versions() -> tuple[ir.Graph, ir.Graph]:
    a = ir.Graph("a", framework="torch", capture="export")
    b = ir.Graph("b", framework="torch", capture="export")
    for g, shape, dtype in ((a, None, None), (b, [2, 3], "float32")):
        g.add_node("x", op="placeholder", kind="input")
        g.add_node("r", op="relu", outputs=[{"shape": shape, "dtype": dtype}], attrs={"dim": 1})
        g.add_node("output", op="output", kind="output")
        g.add_edge("x", "r")
        g.add_edge("r", "output")
        g.inputs, g.outputs = ["x"], ["output"]
    b.node("r")["attrs"]["dim"] = 2
    return a, b


def test_changed_fields_read_as_shapes_and_dtypes_not_python_reprs() -> None:
    a, b = _two_versions()
    text = "\n".join(printed(diffing.diff(a, b).renderable(), 120))
    assert "r: shape ? -> [2,3]; dtype ? -> float32; attrs dim=1 -> dim=2" in text
    assert "[None]" not in text and "['float32']" not in text and "{'dim'" not in text


def test_the_by_scope_list_says_how_many_more_scopes_there_are() -> None:
    a = ir.Graph("a", framework="torch", capture="export")
    b = ir.Graph("b", framework="torch", capture="export")
    for g in (a, b):
        g.add_node("x", op="placeholder", kind="input")
    for i in range(20):  # 20 scopes with one added node each
        b.add_node(f"n{i}", op="relu", scope=[f"block{i:02d}"])
        b.add_edge("x", f"n{i}")
    text = "\n".join(printed(diffing.diff(a, b).renderable(), 120))
    assert "\n  ... 8 more scopes (--json lists all)" in text


@pytest.mark.tf
def test_tf1_initialisers_are_bookkeeping_not_removed_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    import os

    os.chdir(ROOT)
    code = main(
        [
            "diff",
            "examples/or_gate_tf1.py",
            "examples/or_gate_tf.py",
            "--fw-a",
            "tf1",
            "--fw-b",
            "tf",
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert not [n for n in doc["removed"] if "Initializer" in n or "/Assign" in n or "IsInitialized" in n]
    assert doc["removed"] == []
    assert doc["bookkeeping"]["a"] == 24 and doc["bookkeeping"]["b"] == 0


@pytest.mark.torch
def test_info_on_a_dynamo_capture_counts_the_ops_of_the_graphs_it_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "g.json"
    assert (
        main(
            [
                "trace",
                "examples/data_dependent_torch.py",
                "--fw",
                "torch",
                "--method",
                "dynamo",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ops"]["dynamo:graph"] == 2
    assert doc["subgraph_ops"]["call_function:linear"] == 1
    assert doc["subgraph_ops"]["call_function:tanh"] == 1
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "in subgraphs" in text
    assert any(line.split()[:1] == ["call_function:linear"] for line in text.splitlines())


def test_info_lists_twenty_inputs_and_says_how_many_more() -> None:
    """A file with 100,000 inputs: info printed every one of them (42 s)."""
    from graphscope.rendering import text

    g = ir.Graph("many")
    for i in range(1000):
        g.add_node(f"x{i}", op="placeholder", kind="input", outputs=[{"shape": [1], "dtype": "float32"}])
    g.inputs = [f"x{i}" for i in range(1000)]
    lines = printed(text.summary_renderable(g), 100)
    assert sum(1 for line in lines if line.lstrip().startswith("input ")) == 21
    assert any("... 980 more inputs (--json lists all)" in line for line in lines)
    assert len(text.info_document(g)["inputs"]) == 1000
