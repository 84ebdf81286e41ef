"""Make the README's TUI screenshots with the app itself (Textual's save_screenshot).

.venv/bin/python docs/tui_screenshots.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from graphscope import ir, loader, stepping
from graphscope.tui.app import GraphscopeApp

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
SIZE = (150, 36)


async def browse() -> None:
    graph = ir.load(ROOT / "tests" / "golden" / "torch" / "transformer_block.export.json")
    app = GraphscopeApp(graph)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash", *"linear", "enter", "down", "right", "right")
        await pilot.pause()
        app.save_screenshot(str(DOCS / "tui_browse.svg"))


async def small() -> None:
    """80x24: the table above the details; `>` on a node with two bodies asks which."""
    from graphscope.tui.widgets.node_table import NodeTable

    graph = ir.load(ROOT / "tests" / "golden" / "tf" / "control_flow_tf.tf-function.json")
    app = GraphscopeApp(graph)
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one(NodeTable).go_to("while")
        await pilot.press("greater_than_sign")
        await pilot.pause()
        app.save_screenshot(str(DOCS / "tui_small.svg"))


async def step() -> None:
    from graphscope.tui.widgets.node_table import NodeTable

    found = loader.load_target(ROOT / "examples" / "nan_torch.py", fw="torch")
    steps = stepping.step_target(found)
    app = GraphscopeApp(steps.graph, steps=steps)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(NodeTable).go_to("_softmax")
        await pilot.press("b")  # a breakpoint (●) after the NaN
        await pilot.press("c")  # on to the first NaN (▶)
        await pilot.pause()
        app.save_screenshot(str(DOCS / "tui_step.svg"))


async def diff_mode() -> None:
    from graphscope import diffing as diff
    from graphscope import tracers

    a, b = (
        tracers.capture_target(
            loader.load_target(ROOT / "examples" / f"edit_v{i}_torch.py", fw="torch"), method="export"
        )
        for i in (1, 2)
    )
    app = GraphscopeApp(b, diff=diff.diff(a, b))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("right_square_bracket", "right_square_bracket")
        await pilot.pause()
        app.save_screenshot(str(DOCS / "tui_diff.svg"))


async def train_step() -> None:
    """tui examples/sqrt_grad_torch.py --train, f: the gradient of sqrt, in the backward phase."""
    steps = stepping.step_train_target(
        loader.load_target(ROOT / "examples" / "sqrt_grad_torch.py", fw="torch")
    )
    app = GraphscopeApp(steps.graph, steps=steps)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f")
        await pilot.pause()
        app.save_screenshot(str(DOCS / "tui_train.svg"))


async def watch() -> None:
    """tui examples/diverge_torch.py --watch 100: the history above the replay of step 13."""
    from graphscope.stepping import torch_watch

    found = loader.load_target(ROOT / "examples" / "diverge_torch.py", fw="torch")
    watched = torch_watch.watch_target(found, steps=100)
    assert watched.replay is not None and watched.replay.first_nonfinite is not None
    watched.replay.position = watched.replay.first_nonfinite.index
    app = GraphscopeApp(
        watched.replay.graph,
        steps=watched.replay,
        history=watched.history,
        first_nonfinite_step=watched.first_nonfinite_step,
    )
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.save_screenshot(str(DOCS / "tui_watch.svg"))


if __name__ == "__main__":
    asyncio.run(browse())
    asyncio.run(small())
    asyncio.run(step())
    asyncio.run(diff_mode())
    asyncio.run(train_step())
    asyncio.run(watch())
