"""The TUI on a training step's graph: a node's details name its gradient, `g` jumps between them."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphscope import ir
from graphscope.tui.app import GraphscopeApp
from graphscope.tui.widgets.node_table import NodeTable
from graphscope.tui.widgets.panes import Details

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden" / "torch"
SIZE = (160, 45)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_g_jumps_from_a_node_to_its_gradient_and_back() -> None:
    app = GraphscopeApp(ir.load(GOLDEN / "mlp_train.eager-backward.json"))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(NodeTable)
        assert app.check_action("gradient", ())
        table.go_to("relu")
        await pilot.pause()
        assert "gradient relu_grad   (g jumps there)" in app.query_one(Details).plain_text()
        await pilot.press("g")
        assert table.current is not None and table.current.id == "relu_grad"
        text = app.query_one(Details).plain_text()
        assert "ReluBackward0 → grad:relu · op · backward" in text and "grad of  relu" in text
        await pilot.press("g")
        assert table.current.id == "relu"
        table.go_to("hidden_weight")  # a parameter: its gradient accumulation
        await pilot.press("g")
        assert table.current.id == "hidden_weight_grad"
        table.go_to("x")  # an input: no gradient, a bell
        await pilot.press("g")
        assert table.current.id == "x"
        await pilot.press("slash", *"backward", "enter")  # search finds the backward nodes by phase
        assert {r.id for r in table.rows} >= {"relu_grad", "grad_seed", "hidden_weight_grad"}


@pytest.mark.anyio
async def test_g_is_not_offered_on_a_graph_without_gradients() -> None:
    app = GraphscopeApp(ir.load(GOLDEN / "or_gate.eager.json"))
    async with app.run_test(size=SIZE):
        assert not app.check_action("gradient", ())
