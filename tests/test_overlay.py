"""Static against executed: which branch ran, which static ops never ran, where Dynamo broke."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphscope import loader, overlay, tracers
from graphscope.cli import main

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize(
    ("which", "taken", "never"),
    [
        ("example_inputs", "if.else", ["if.then/relu", "if.then/mul"]),
        ("example_inputs_alt", "if.then", ["if.else/tanh"]),
    ],
)
def test_the_branch_each_input_took(which: str, taken: str, never: list[str]) -> None:
    found = loader.load_target(Path("examples/data_dependent_torch.py"), fw="torch")
    static = tracers.capture_target(found, method="jit-script")
    run = tracers.capture_target(found, method="eager", example_inputs=getattr(found, which))
    o = overlay.overlay(static, run)
    assert [(b["node"], b["taken"]) for b in o.branches] == [("if", taken)]
    assert o.never_ran == never


def test_flatten_prefixes_subgraph_nodes() -> None:
    found = loader.load_target(Path("examples/data_dependent_torch.py"), fw="torch")
    flat = overlay.flatten(tracers.capture_target(found, method="jit-script"))
    assert {"if", "if.then/relu", "if.else/tanh"} <= set(flat.nx)
    assert flat.nx.has_edge("if.then/relu", "if.then/mul")


def test_diff_eager_over_static_in_the_report_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["diff", "examples/data_dependent_torch.py", "--fw", "torch", "--method-a", "jit-script"]
    assert main([*args, "--method-b", "eager"]) == 0
    out = capsys.readouterr().out
    assert "executed on this input (eager run over the jit-script graph):" in out
    assert "if: took if.else" in out and "never ran: if.then/relu, if.then/mul" in out

    assert main(["diff", "examples/data_dependent_torch.py", "--fw", "torch", "--method-a", "dynamo",
                 "--method-b", "eager", "--json"]) == 0  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    (brk,) = doc["executed"]["graph_breaks"]
    assert brk["node"] == "break_0" and brk["source"] == {
        "file": "examples/data_dependent_torch.py",
        "line": 20,
    }
    assert doc["executed"]["never_ran"] == []


def test_no_overlay_without_control_flow(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "examples/or_gate_torch.py", "--fw", "torch", "--method-a", "export",
                 "--method-b", "eager", "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["executed"] is None


def test_a_loop_whose_body_the_run_lowered_differently_says_it_cannot_tell() -> None:
    found = loader.load_target(Path("examples/gru_torch.py"), fw="torch")
    o = overlay.overlay(
        tracers.capture_target(found, method="jit-script"), tracers.capture_target(found, method="eager")
    )
    assert o.loops == [{"node": "loop", "iterations": None}]  # aten::gru inside vs addmm/sigmoid outside
    assert "cannot be read from the run's ops" in str(o.renderable())


def test_diff_svg_greys_the_static_ops_that_never_ran() -> None:
    import re

    from graphscope import diffing
    from graphscope.rendering import diff_svg

    found = loader.load_target(Path("examples/data_dependent_torch.py"), fw="torch")
    static = tracers.capture_target(found, method="jit-script")
    run = tracers.capture_target(found, method="eager")
    source = diff_svg.diff_dot(diffing.diff(static, run), overlay.overlay(static, run)).source
    grey = diff_svg.COLORS["never ran"]
    greyed = {
        m.group(1) for line in source.splitlines() if grey in line and (m := re.search(r"<B>(\w+)</B>", line))
    }
    assert greyed == {"relu", "mul"} and "never ran: 2" in source
    # every edge ends at a node that exists (subgraph anchors carry the side's name prefix)
    names = set(re.findall(r"^\s*(\w+) \[", source, re.M))
    ends = re.findall(r"-> (\w+)", source)
    assert ends and set(ends) <= names
