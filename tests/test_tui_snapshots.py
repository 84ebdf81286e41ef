"""Snapshot tests of the TUI's screens (pytest-textual-snapshot; update with --snapshot-update
after looking at the new SVGs in tests/__snapshots__/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from graphscope import ir
from graphscope.tui.app import GraphscopeApp

ROOT = Path(__file__).resolve().parents[1]
SIZE = (140, 40)


def transformer() -> GraphscopeApp:
    return GraphscopeApp(ir.load(ROOT / "tests" / "golden" / "torch" / "transformer_block.export.json"))


def test_browse(snap_compare: Any) -> None:
    assert snap_compare(transformer(), press=["down", "down", "down", "right"], terminal_size=SIZE)


def test_browse_80x24(snap_compare: Any) -> None:
    # the table above a compact neighbourhood and the details; columns fitted, cut with …
    assert snap_compare(transformer(), press=["down", "right"], terminal_size=(80, 24))


def test_browse_200x60(snap_compare: Any) -> None:
    assert snap_compare(transformer(), press=["down", "right"], terminal_size=(200, 60))


def test_scope_tree_page_80x24(snap_compare: Any) -> None:
    assert snap_compare(transformer(), press=["t", "down"], terminal_size=(80, 24))


def test_body_chooser_80x24(snap_compare: Any) -> None:
    app = GraphscopeApp(ir.load(ROOT / "tests" / "golden" / "tf" / "control_flow_tf.tf-function.json"))

    async def ask(pilot: Any) -> None:
        from graphscope.tui.widgets.node_table import NodeTable

        pilot.app.query_one(NodeTable).go_to("while")
        await pilot.press("greater_than_sign")

    assert snap_compare(app, run_before=ask, terminal_size=(80, 24))


def test_search(snap_compare: Any) -> None:
    assert snap_compare(transformer(), press=["slash", *"op:linear"], terminal_size=SIZE)


def test_help(snap_compare: Any) -> None:
    assert snap_compare(transformer(), press=["question_mark"], terminal_size=SIZE)


def test_help_80x24(snap_compare: Any) -> None:
    assert snap_compare(transformer(), press=["question_mark"], terminal_size=(80, 24))


def test_subgraph(snap_compare: Any) -> None:
    app = GraphscopeApp(ir.load(ROOT / "tests" / "golden" / "torch" / "data_dependent.jit-script.json"))

    async def enter_if(pilot: Any) -> None:
        from graphscope.tui.widgets.node_table import NodeTable

        pilot.app.query_one(NodeTable).go_to("if")
        await pilot.press("greater_than_sign", "down", "enter")  # the else branch

    assert snap_compare(app, run_before=enter_if, terminal_size=SIZE)


@pytest.mark.torch
def test_step_mode_at_the_nan(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from graphscope import loader, stepping

    monkeypatch.chdir(ROOT)
    steps = stepping.step_target(loader.load_target(Path("examples/nan_torch.py"), fw="torch"))
    app = GraphscopeApp(steps.graph, steps=steps)

    async def breakpoint_then_continue(pilot: Any) -> None:
        from graphscope.tui.widgets.node_table import NodeTable

        pilot.app.query_one(NodeTable).go_to("t_2")
        await pilot.press("b", "c")  # ● on t_2; ▶ at the first NaN, before it

    assert snap_compare(app, run_before=breakpoint_then_continue, terminal_size=SIZE)


@pytest.mark.torch
def test_diff_mode(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from graphscope import diffing as diff
    from graphscope import loader, tracers

    monkeypatch.chdir(ROOT)
    a, b = (
        tracers.capture_target(
            loader.load_target(Path(f"examples/edit_v{i}_torch.py"), fw="torch"), method="export"
        )
        for i in (1, 2)
    )
    app = GraphscopeApp(b, diff=diff.diff(a, b))
    assert snap_compare(app, press=["right_square_bracket", "d"], terminal_size=SIZE)  # gelu, then A's relu_2


@pytest.mark.torch
def test_step_mode_training_at_the_inf(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # tui examples/sqrt_grad_torch.py --train, then f: the gradient of sqrt, in the backward phase
    from graphscope import loader, stepping

    monkeypatch.chdir(ROOT)
    steps = stepping.step_train_target(loader.load_target(Path("examples/sqrt_grad_torch.py"), fw="torch"))
    assert snap_compare(GraphscopeApp(steps.graph, steps=steps), press=["f"], terminal_size=SIZE)


@pytest.mark.torch
def test_watch_history(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # tui examples/diverge_torch.py --watch 100: the history above the replay of step 13
    from graphscope.stepping import torch_watch

    monkeypatch.chdir(ROOT)
    found = loader_target("examples/diverge_torch.py")
    watched = torch_watch.watch_target(found, steps=100)
    assert watched.replay is not None and watched.replay.first_nonfinite is not None
    watched.replay.position = watched.replay.first_nonfinite.index
    app = GraphscopeApp(
        watched.replay.graph,
        steps=watched.replay,
        history=watched.history,
        first_nonfinite_step=watched.first_nonfinite_step,
    )
    assert snap_compare(app, terminal_size=SIZE)


def loader_target(path: str) -> Any:
    from graphscope import loader

    return loader.load_target(Path(path), fw="torch")
